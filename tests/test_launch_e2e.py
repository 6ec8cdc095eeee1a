"""End to end: `runner launch` on the tiny model and the bundled sample, asserted on result.json."""

from __future__ import annotations

import json

import jsonschema
from conftest import run_cli

from runner.contract import rundir
from runner.contract.datasets import load_dataset
from runner.contract.weights import RANDOM_WEIGHTS_KEY
from runner.executors import ExitInfo
from runner.launching import finish_dead_run
from runner.paths import SAMPLE_DATASET, SCHEMA_FILE


def test_result_is_schema_valid_and_complete(finished_run):
    result = json.loads((finished_run / "result.json").read_text())
    jsonschema.validate(result, json.loads(SCHEMA_FILE.read_text()))
    assert result["status"] == "completed"
    assert result["error"] is None
    assert result["config"]["image"] == "cpu" and result["config"]["gpu"] == "cpu"
    assert result["config"]["launch"]["executor"] == "process"


def test_documents_and_tokens_are_counted(finished_run):
    result = json.loads((finished_run / "result.json").read_text())
    m = result["metrics"]
    docs = [json.loads(line) for line in (finished_run / "docs.jsonl").read_text().splitlines()]
    assert m["documents"] == len(docs) == 6
    assert sorted(d["id"] for d in docs) == sorted(d.id for d in load_dataset(SAMPLE_DATASET, limit=6).documents)
    assert all(d["input_tokens"] > 100 for d in docs), "each how-to prompt is hundreds of tokens"
    assert all(1 <= d["output_tokens"] <= 12 for d in docs)
    assert m["total_output_tokens"] == sum(d["output_tokens"] for d in docs)
    assert m["avg_input_tokens"] == sum(d["input_tokens"] for d in docs) / 6
    # Three batches of two: docs/s is documents over the summed batch seconds, warmup excluded.
    assert [b["size"] for b in m["batches"]] == [2, 2, 2]
    assert abs(m["docs_per_second"] - 6 / sum(b["seconds"] for b in m["batches"])) < 1e-9
    assert m["latency_p50_s"] <= m["latency_p90_s"] <= m["latency_p99_s"]
    assert m["model_load_seconds"] > 0 and m["warmup_seconds"] > 0
    assert m["peak_memory_bytes"] > 0


def test_rouge_in_range_and_lead3_beside_it(finished_run):
    result = json.loads((finished_run / "result.json").read_text())
    m = result["metrics"]
    for scores in (m["rouge"], m["lead3_rouge"]):
        assert set(scores) == {"rouge1", "rouge2", "rougeL"}
        assert all(0.0 <= v <= 1.0 for v in scores.values())
    # Lead-3 copies real sentences of a how-to article, so it overlaps its reference summary.
    assert m["lead3_rouge"]["rouge1"] > 0.15
    # The tiny model's weights are random (its config.json says so): its own ROUGE is noise, lead-3's is not.
    assert result["quality_meaningful"] is False


def test_provenance_is_recorded(finished_run):
    result = json.loads((finished_run / "result.json").read_text())
    env = result["environment"]
    assert env["packages"]["torch"] and env["packages"]["transformers"]
    assert env["device"]["kind"] == "cpu"
    assert result["dataset"]["sha256"] == load_dataset(SAMPLE_DATASET, limit=6).sha256
    assert result["backend"]["attention"] == "sdpa" and result["backend"]["dtype"] == "float32"
    assert result["config"]["max_new_tokens"] == 12


def test_logs_written(finished_run):
    log = (finished_run / "worker.log").read_text()
    assert "loaded" in log and "dataset" in log
    assert not (finished_run / "error.log").exists()


def test_a_tiny_checkpoint_says_its_rouge_is_not_meaningful(tiny_model, small_dataset, make_run_dir, tmp_path):
    """`runner model tiny` writes random weights that load like a trained checkpoint; its config.json marks
    them, so the worker's result, the host's result for a dead worker and the summary on the console all
    say ROUGE is not meaningful, and why."""
    assert json.loads((tiny_model / "config.json").read_text())[RANDOM_WEIGHTS_KEY] is True

    proc = run_cli(
        ["launch", "--model", str(tiny_model), "--data", str(small_dataset), "--limit", "4", "--batch-size", "2",
         "--max-new-tokens", "8", "--results", str(tmp_path / "results"), "--run-id", "tiny"]
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "results" / "tiny" / "result.json").read_text())
    assert result["quality_meaningful"] is False and result["metrics"]["rouge"] is not None
    (note,) = [n for n in result["notes"] if n.startswith("random weights:")]
    assert "sumbench_random_weights in its config.json" in note and "ROUGE is not meaningful" in note
    rouge_line = next(line for line in proc.stdout.splitlines() if "ROUGE-1/2/L" in line)
    assert "(not meaningful: a random checkpoint from `runner model tiny/synthetic`" in rouge_line

    dead = make_run_dir()
    by_host = finish_dead_run(dead, rundir.read_config(dead), ExitInfo(exit_code=-9))
    assert by_host.quality_meaningful is False and note in by_host.notes, "host and worker say the same"
