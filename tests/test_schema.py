"""The published JSON Schema is the one the code defines, and real results validate against it."""

from __future__ import annotations

import json

import jsonschema
import pytest

from runner.cli.schema import rendered
from runner.contract.schema import DocRecord, RunResult
from runner.paths import SCHEMA_FILE


def test_published_schema_matches_code():
    assert SCHEMA_FILE.read_text() == rendered(), "run `runner schema` and commit schema/result.schema.json"


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))


def test_schema_rejects_a_result_missing_its_status(finished_run):
    data = json.loads((finished_run / "result.json").read_text())
    jsonschema.validate(data, json.loads(SCHEMA_FILE.read_text()))
    del data["status"]
    with pytest.raises(jsonschema.ValidationError, match="status"):
        jsonschema.validate(data, json.loads(SCHEMA_FILE.read_text()))


def test_result_and_records_round_trip(finished_run):
    result = RunResult.model_validate_json((finished_run / "result.json").read_text())
    assert RunResult.model_validate_json(result.model_dump_json()) == result
    for line in (finished_run / "docs.jsonl").read_text().splitlines():
        DocRecord.model_validate_json(line)
