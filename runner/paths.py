"""Files that ship with sumbench."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATASET = REPO_ROOT / "data" / "howto-sample.jsonl"
SCHEMA_FILE = REPO_ROOT / "schema" / "result.schema.json"
