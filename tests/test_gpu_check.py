"""benchmarks/gpu_check.py on the CPU (--tiny): the device gets one try a session, so the same steps must
already work end to end here: checkpoint, documents of the study's prompt length, the steady-state run
beside the bare loop, the study through `runner`, the table, and a second pass that reuses what the first
finished. And its time box: a study past its deadline is stopped as Ctrl-C would stop it."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tarfile

import pytest

from runner.contract.defaults import PROMPT_TOKENS
from runner.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through the module's entry
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_check_runs_every_step_and_writes_the_table(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    command = [sys.executable, str(SCRIPT), "--out", str(out), "--work", str(work), "--tiny"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "gpu-check.json").read_text())
    assert PROMPT_TOKENS - 3 <= summary["prompt_tokens"]["min"] <= summary["prompt_tokens"]["max"] == PROMPT_TOKENS
    cells = {c["scenario"]: c for c in summary["cells"]}
    assert set(cells) == {"fp32", "bf16"}
    for cell in cells.values():
        assert cell["status"] == "completed" and cell["docs"] == 4 and cell["docs_per_second"] > 0
        # The worker counted the same prompts the script sized: the documents are what the study ran.
        assert summary["prompt_tokens"]["min"] <= cell["in_tokens"] <= PROMPT_TOKENS
        assert len(cell["call_seconds"]) == 1  # the study's limit is one batch
    # The steady-state pair: the worker over three batches and the bare loop over the same ones.
    [pair] = summary["steady"]
    steady, bare = pair["worker"], pair["bare"]
    assert steady["status"] == "completed" and steady["docs"] == 12 and len(steady["call_seconds"]) == 3
    assert bare["status"] == "completed" and len(bare["call_seconds"]) == 3 and bare["batch_size"] == 4
    assert len(bare["warmup_call_seconds"]) in (1, 2)  # two when the first batch is unpadded and a later one not
    ratio = summary["steady_state"]["worker_over_bare"]
    assert ratio == pytest.approx(steady["docs_per_second"] / bare["settled_docs_per_second"])
    table = (out / "gpu-check.md").read_text()
    assert "| fp32 | cpu | completed | 4 |" in table and "| bare generate() | - | completed | 12 |" in table
    # Each timed call with the length its prompts were padded to, on both sides of the pair.
    assert steady["call_padded_tokens"] == bare["call_padded_tokens"] and max(bare["call_padded_tokens"]) == 515
    calls = r"\| \d+\.\d\d \(51\d\), \d+\.\d\d \(51\d\), \d+\.\d\d \(51\d\) \|"
    assert len(re.findall(calls, table)) == 2, table
    assert f"is {100 * ratio:.1f}% of the bare generate() loop" in table
    assert "Reproduce: `python benchmarks/gpu_check.py --out OUT --tiny`" in table
    with tarfile.open(out / "runs.tar.gz") as tar:
        names = tar.getnames()
    assert "runs/gpu-check/matrix.json" in names and "runs/gpu-check/study.toml" in names
    assert "runs/default-steady-1/result.json" in names

    # The same command again reuses every finished step: nothing is measured twice.
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    log = (out / "gpu-check.log").read_text()
    for step in ("checkpoint", "documents", "steady-state run", "yardstick"):
        assert f"{step}: " in log and "earlier pass; reused" in log.split(f"{step}: ", 1)[1].splitlines()[0]
    assert json.loads((out / "gpu-check.json").read_text())["steady_state"] == summary["steady_state"]


@pytest.mark.slow
def test_pairs_alternate_their_order_and_the_ratio_is_of_geometric_means(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), "--out", str(out), "--work", str(tmp_path / "work"), "--tiny"]
    flags = ["--pairs", "2", "--skip-study", "--first-use"]
    proc = subprocess.run([*command, *flags], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "gpu-check.json").read_text())
    assert summary["cells"] == [] and [p["worker_first"] for p in summary["steady"]] == [True, False]
    log = (out / "gpu-check.log").read_text()
    commands = [line.split("] $ ", 1)[1] for line in log.splitlines() if "] $ " in line]
    steps = ["loop" if "yardstick.py" in c else "worker" for c in commands if "yardstick.py" in c or "launch" in c]
    assert steps == ["worker", "loop", "loop", "worker", "loop", "loop"], log  # then the two first-use loops
    assert "--profile" in commands[-1] and "--no-cudnn-sdpa" in commands[-1] and "--no-cudnn" not in commands[-2]
    workers = [p["worker"]["docs_per_second"] for p in summary["steady"]]
    loops = [p["bare"]["settled_docs_per_second"] for p in summary["steady"]]
    state = summary["steady_state"]
    assert state["pairs"] == pytest.approx([w / b for w, b in zip(workers, loops, strict=True)])
    assert state["worker_over_bare"] == pytest.approx((workers[0] * workers[1]) ** 0.5 / (loops[0] * loops[1]) ** 0.5)
    table = (out / "gpu-check.md").read_text()
    assert "--pairs 2 --skip-study --first-use" in table
    # The first-use diagnosis: both loops profiled, each call's costliest ops in the table.
    assert [(r["cudnn_sdpa"], r["status"]) for r in summary["first_use"]] == [(True, "completed"), (False, "completed")]
    for run in summary["first_use"]:
        assert len(run["call_seconds"]) == 1 and run["warmup_profile"][-1]["call"].endswith(" again")
        first = run["warmup_profile"][0]
        assert f"  - warm-up 1: {first['seconds']:.2f} s; most self time: {first['top_self_time'][0]['op']}" in table
    assert "- SDPA's cuDNN kernel allowed: timed call" in table and "- SDPA's cuDNN kernel off: timed call" in table


@pytest.mark.slow
def test_a_study_past_its_deadline_is_stopped_and_says_where_it_stood(tmp_path, tiny_model):
    check = load_script()
    log = check.Log(tmp_path / "check.log")
    study = REPO_ROOT / "studies" / "cpu-demo.toml"
    results = tmp_path / "results"
    args = ["study", "run", str(study), "--model", str(tiny_model), "--results", str(results), "--limit", "24"]
    # Synthetic weights force every output to 1,500 tokens: 24 x 1,500 decoding steps at batch 1 cannot end
    # inside the 12 s deadline (a trained-looking stop at EOS once let the whole study finish in time).
    args[3:5] = ["--model", "tiny-llama"]
    args += ["--synthetic-weights", "--batch-sizes", "1", "--scenarios", "fp32", "--max-new-tokens", "1500"]
    code = check.runner(log, *args, deadline=log.elapsed() + 12)
    assert code == 130, (tmp_path / "check.log").read_text()
    assert "deadline reached" in (tmp_path / "check.log").read_text()
    manifest = json.loads((results / "cpu-demo" / "matrix.json").read_text())
    assert [c["status"] for c in manifest["cells"]] in (["done"], ["error"])
    assert manifest["cells"][0]["result_status"] in (None, "partial")
