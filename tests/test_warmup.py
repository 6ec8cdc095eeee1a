"""First-use costs stay out of docs/s: an untimed warm-up at the run's real shape, and the worker's rate
held against a bare ``generate()`` loop (benchmarks/yardstick.py) on the same model and shape."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest
from conftest import read_result

from runner.paths import REPO_ROOT, SAMPLE_DATASET

BATCH, NEW_TOKENS, DOCS = 4, 32, 16


def _calls(result: dict) -> list[float]:
    return [b["seconds"] for b in result["metrics"]["batches"]]


@pytest.mark.parametrize("mode", ["full", "short", "none"])
def test_the_warmup_mode_decides_what_the_untimed_call_costs(make_run_dir, run_worker, mode):
    run_dir = make_run_dir(batch_size=BATCH, max_new_tokens=NEW_TOKENS, limit=12, warmup=mode)
    assert run_worker(run_dir) == 0
    result = read_result(run_dir)
    m = result["metrics"]
    assert result["config"]["warmup"] == mode
    median_call = statistics.median(_calls(result))
    if mode == "none":
        assert m["warmup_seconds"] is None
    elif mode == "full":  # a whole batch at the full output length: about one timed call, never a fraction
        assert m["warmup_seconds"] > 0.5 * median_call, (m["warmup_seconds"], _calls(result))
    else:  # 4 of 32 new tokens
        assert 0 < m["warmup_seconds"] < 0.6 * median_call, (m["warmup_seconds"], _calls(result))
    parts = m["model_load_seconds"] + (m["warmup_seconds"] or 0.0) + m["generate_seconds"]
    assert m["end_to_end_seconds"] == pytest.approx(parts)
    assert m["end_to_end_seconds"] < m["wall_seconds"]


def test_launch_help_says_what_the_warmup_costs():
    from click.testing import CliRunner

    from runner.cli import cli

    out = CliRunner().invoke(cli, ["launch", "--help"]).output
    assert "--warmup [full|short|none]" in out and "1/N longer" in " ".join(out.split())


def _yardstick(model, out) -> dict:
    """The bare loop in its own process, as the GPU check runs it: the worker's warm-up, then 4 timed calls."""
    cmd = [
        sys.executable,
        str(REPO_ROOT / "benchmarks" / "yardstick.py"),
        "--model", str(model), "--synthetic-weights", "--device", "cpu", "--dtype", "float32",
        "--data", str(SAMPLE_DATASET), "--limit", str(DOCS), "--batch-size", str(BATCH),
        "--calls", "4", "--max-new-tokens", str(NEW_TOKENS), "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


TOLERANCE = 0.30
"""How far the worker's docs/s may sit from the bare loop's settled rate on the tiny model, on a CPU.

Not the GPU goal's 5%: on the tiny model a call is ~0.1 s, of which the harness's own tokenizing and
decoding are ~10% (on a 7B model at batch 32 they were 0.15%), and back-to-back processes on a shared
2-core machine differ by ±15%. Without the full warm-up the H200's first-call cost put a 3-batch run at
54-66% of the settled rate, outside this band; the bare loop is measured before and after the worker."""


def test_worker_docs_per_second_is_the_bare_loops_settled_rate(make_run_dir, tiny_model, tmp_path):
    before = _yardstick(tiny_model, tmp_path / "before.json")
    run_dir = make_run_dir(
        batch_size=BATCH, max_new_tokens=NEW_TOKENS, limit=DOCS, data=str(SAMPLE_DATASET), synthetic_weights=True
    )
    proc = subprocess.run(
        [sys.executable, "-m", "runner.worker", str(run_dir)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = _yardstick(tiny_model, tmp_path / "after.json")
    result = read_result(run_dir)
    assert result["metrics"]["avg_output_tokens"] == NEW_TOKENS and before["batch_size"] == BATCH
    bare = statistics.fmean([before["settled_docs_per_second"], after["settled_docs_per_second"]])
    worker = result["metrics"]["docs_per_second"]
    assert abs(worker / bare - 1) < TOLERANCE, (worker, before, after, _calls(result))


def test_the_yardstick_can_keep_sdpa_off_cudnn_and_says_which(tiny_model, tmp_path):
    """The diagnosis for the first-use cost seen on an H200: the same loop with cuDNN's SDPA kernel off."""
    cmd = [
        sys.executable, str(REPO_ROOT / "benchmarks" / "yardstick.py"), "--model", str(tiny_model),
        "--device", "cpu", "--dtype", "float32", "--limit", "4", "--batch-size", "2", "--calls", "2",
        "--max-new-tokens", "4",
    ]  # fmt: skip
    runs = {}
    for flag in ([], ["--no-cudnn-sdpa"]):
        proc = subprocess.run([*cmd, *flag], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[bool(flag)] = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert runs[True]["cudnn_sdpa"] is False and runs[False]["cudnn_sdpa"] is True
    assert len(runs[True]["call_seconds"]) == 2


def test_the_yardstick_profiles_its_warmup_calls_and_never_a_timed_one(tiny_model, tmp_path):
    """--profile: what each first-use call spent its own time in, and the same call again for contrast."""
    cmd = [
        sys.executable, str(REPO_ROOT / "benchmarks" / "yardstick.py"), "--model", str(tiny_model),
        "--device", "cpu", "--dtype", "float32", "--limit", "4", "--batch-size", "2", "--calls", "2",
        "--max-new-tokens", "4", "--profile",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads(proc.stdout[proc.stdout.index("{") :])
    warm = len(run["warmup_call_seconds"])
    names = [p["call"] for p in run["warmup_profile"]]
    assert names == [f"warm-up {i}" for i in range(1, warm + 1)] + [f"warm-up {warm} again"]
    assert [p["seconds"] for p in run["warmup_profile"][:warm]] == run["warmup_call_seconds"]
    assert len(run["call_seconds"]) == 2
    for call in run["warmup_profile"]:
        spent = [op["self_seconds"] for op in call["top_self_time"]]
        assert spent == sorted(spent, reverse=True) and 0 < sum(spent) <= call["seconds"] * 1.1
        assert any(op["op"].startswith("aten::") and op["calls"] >= 1 for op in call["top_self_time"])
