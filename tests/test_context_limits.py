"""Prompts against the model's context: what launch refuses before anything starts, what the worker skips
and counts, and the --max-skipped-fraction flag that says how many skips fail a run."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import read_result, run_cli, short_records, write_jsonl

from runner.context import fewest_tokens, longest_token_chars
from runner.launching import LaunchRequest, build_config


def one_line_exit_2(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def test_documents_certainly_over_the_limit_are_refused_with_no_folder(tiny_model, tmp_path):
    records = short_records(4)
    records[0]["document"] = "lantern " * 2000  # 16,000 characters: over 64 tokens whatever the tokenizer
    data = write_jsonl(tmp_path / "long.jsonl", records)
    results = tmp_path / "results"

    line = one_line_exit_2(
        run_cli(["launch", "--model", str(tiny_model), "--data", str(data), "--max-input-tokens", "64",
                 "--results", str(results)])
    )  # fmt: skip

    assert "1 of 4 documents in" in line and "longer than 64 tokens whatever the tokenizer does" in line
    assert "'doc-00'" in line and "--max-skipped-fraction 0.1" in line
    assert not results.exists()
    # Allowed when the user says so: 1 of 4 is within a quarter.
    config, _ = build_config(
        LaunchRequest(model=str(tiny_model), data=str(data), max_input_tokens=64, max_skipped_fraction=0.25)
    )
    assert config.max_skipped_fraction == 0.25


def test_no_room_for_the_new_tokens_is_refused(tiny_model, tmp_path):
    line = one_line_exit_2(
        run_cli(["launch", "--model", str(tiny_model), "--max-new-tokens", "8192", "--results", str(tmp_path)])
    )
    assert "--max-new-tokens 8192 leaves no room for a prompt" in line and "8192 positions" in line


def test_the_lower_bound_never_passes_the_real_token_count(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    longest = longest_token_chars(str(tiny_model))
    for text in [
        "lantern " * 300,
        "a" * 5000,
        "é" * 100 + "e\u0301" * 100,
        " ".join(r["document"] for r in short_records()),
    ]:
        assert fewest_tokens(text, longest) <= len(tokenizer(text)["input_ids"])


@pytest.fixture
def short_context_model(tiny_model, tmp_path):
    model = shutil.copytree(tiny_model, tmp_path / "short-context")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 160}))
    return model


def test_prompts_that_leave_no_room_in_the_context_are_skipped_and_counted(
    short_context_model, make_run_dir, run_worker, tmp_path
):
    records = short_records(12)
    records[0]["document"] = " ".join(f"lantern {i} by the harbor wall" for i in range(60))  # far past 152 tokens
    data = write_jsonl(tmp_path / "mixed.jsonl", records)
    _, notes = build_config(LaunchRequest(model=str(short_context_model), data=str(data), max_new_tokens=8))
    assert any("prompts over 152 tokens are skipped" in n and "context is 160 positions" in n for n in notes)

    run_dir = make_run_dir(model=str(short_context_model), data=str(data), prompt_template="{document}")
    assert run_worker(run_dir) == 0
    result = read_result(run_dir)
    assert result["metrics"]["skipped_too_long"] == 1 and result["metrics"]["documents"] == 11
    assert any("skipped 1 documents over 152 prompt tokens: doc-00" in n for n in result["notes"])


def test_the_skip_limit_is_a_flag_documented_where_it_bites():
    proc = run_cli(["launch", "--help"], env={"COLUMNS": "400"})
    text = " ".join(proc.stdout.split())
    assert "--max-skipped-fraction" in text and "More than --max-skipped-fraction of them skipped fails the run" in text
