"""The run folder: ``config.json``, ``docs.jsonl``, ``result.json``, ``worker.log``, ``error.log``.

Shared by the worker (which writes it) and the host (which reads it, resumes it, and finishes it when
a worker died without a word). Records are appended and flushed one batch at a time, and JSON files are
replaced atomically, so a crash at any moment leaves every finished document readable.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from runner.errors import UserError
from runner.schema import DocRecord, RunConfig, RunResult

CONFIG = "config.json"
DOCS = "docs.jsonl"
RESULT = "result.json"
WORKER_LOG = "worker.log"
ERROR_LOG = "error.log"


def new_run_id(image: str, gpu: str, scenario: str, batch_size: object) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{image}-{gpu}-{scenario}-bs{batch_size}").strip("-")
    return f"{stamp}-{slug}"


def write_json_atomic(path: Path, data: dict | str) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    text = data if isinstance(data, str) else json.dumps(data, indent=2, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_config(run_dir: Path, config: RunConfig) -> None:
    write_json_atomic(run_dir / CONFIG, config.model_dump_json(indent=2))


def read_config(run_dir: Path) -> RunConfig:
    path = run_dir / CONFIG
    try:
        return RunConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{run_dir} is not a sumbench run folder (no {CONFIG})") from None
    except ValidationError as exc:
        raise UserError(f"{path}: invalid run config ({exc.error_count()} errors)") from None


def write_result(run_dir: Path, result: RunResult) -> None:
    write_json_atomic(run_dir / RESULT, result.model_dump_json(indent=2))


def read_result(run_dir: Path) -> RunResult:
    path = run_dir / RESULT
    try:
        return RunResult.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{run_dir} has no {RESULT}: the run never finished or was not a sumbench run") from None
    except ValidationError as exc:
        raise UserError(f"{path}: not a valid sumbench result ({exc.errors()[0]['msg']})") from None


def repair_docs(run_dir: Path) -> int:
    """Cut a torn final line (a crash mid-write) off ``docs.jsonl``; returns the bytes removed."""
    path = run_dir / DOCS
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep = len(data) if data.endswith(b"\n") or not data else data.rfind(b"\n") + 1
    # A complete last line that does not parse is torn too (e.g. a crash mid-fsync on some filesystems).
    lines = data[:keep].splitlines(keepends=True)
    while lines:
        try:
            DocRecord.model_validate_json(lines[-1])
            break
        except ValidationError:
            keep -= len(lines.pop())
    if keep == len(data):
        return 0
    with path.open("r+b") as f:
        f.truncate(keep)
    return len(data) - keep


def read_docs(run_dir: Path) -> list[DocRecord]:
    """Every per-document record; a torn last line is ignored (``repair_docs`` removes it)."""
    path = run_dir / DOCS
    if not path.exists():
        return []
    records = []
    lines = path.read_bytes().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(DocRecord.model_validate_json(line))
        except ValidationError:
            if number == len(lines):
                break
            raise UserError(f"{path}:{number}: corrupt record in the middle of the file") from None
    return records


class DocWriter:
    """Appends records and makes each batch durable before the next one starts."""

    def __init__(self, run_dir: Path) -> None:
        self._file = (run_dir / DOCS).open("a", encoding="utf-8")

    def write_batch(self, records: Iterable[DocRecord]) -> None:
        for record in records:
            self._file.write(record.model_dump_json() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
