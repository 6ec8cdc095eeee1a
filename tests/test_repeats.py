"""`runner launch --repeat N`: real repeated runs, their mean ± stdev, and the noise warning."""

from __future__ import annotations

import os
import re
import signal
import statistics
from pathlib import Path

import pytest
from test_report import build_bench, in_process, result_of

from runner.contract.schema import RunResult
from runner.launching import LaunchRequest
from runner.repeats import CV_WARN, Stat, repeat_requests, stat, summarize, summary_lines, worst_status


@pytest.fixture(scope="session")
def bench(tiny_model, tmp_path_factory):
    return build_bench(tiny_model, tmp_path_factory)


def with_speed(result: RunResult, docs_per_second: float) -> RunResult:
    copy = result.model_copy(deep=True)
    copy.metrics.docs_per_second = docs_per_second
    return copy


def test_repeat_runs_share_a_stem_and_a_dataset(bench):
    results = [result_of(p) for p in bench.repeats]
    assert [r.run_id for r in results] == ["fp32-bs1-r1", "fp32-bs1-r2"]
    assert all(r.status == "completed" and r.metrics.documents == 8 for r in results)
    assert len({r.dataset.sha256 for r in results}) == 1
    assert results[0].config.model_dump(exclude={"run_id"}) == results[1].config.model_dump(exclude={"run_id"})


def test_launch_prints_mean_and_stdev_after_the_last_repeat(bench):
    results = [result_of(p) for p in bench.repeats]
    speeds = [r.metrics.docs_per_second for r in results]
    line = next(line for line in bench.repeat_output.splitlines() if line.startswith("2 repeats:"))
    mean, stdev = re.search(r"docs/s (\d+\.\d+) ± (\d+\.\d+)", line).groups()
    assert float(mean) == pytest.approx(statistics.fmean(speeds), abs=1e-3)
    assert float(stdev) == pytest.approx(statistics.stdev(speeds), abs=1e-3)
    assert "output tokens/s" in line and "ROUGE-1" in line
    cv = statistics.stdev(speeds) / statistics.fmean(speeds)
    assert ("coefficient of variation" in bench.repeat_output) == (cv > CV_WARN)


def test_summary_warns_only_above_five_percent(bench):
    base = result_of(bench.repeats[0])
    steady = summarize([with_speed(base, v) for v in (10.0, 10.2, 9.9)])
    assert steady.docs_per_second.mean == pytest.approx(10.0333, abs=1e-3)
    assert steady.docs_per_second.cv < CV_WARN and steady.warnings == ()
    noisy = summarize([with_speed(base, v) for v in (10.0, 12.0, 8.0)])
    assert noisy.docs_per_second.cv == pytest.approx(0.2)
    assert len(noisy.warnings) == 1 and "20.0%" in noisy.warnings[0]
    lines = summary_lines(noisy)
    assert lines[0].startswith("3 repeats: docs/s 10.000 ± 2.000") and lines[1].startswith("warning:")


def test_summary_leaves_out_failures_and_flags_other_datasets(bench):
    ok, failed = result_of(bench.repeats[0]), result_of(bench.failed)
    other = ok.model_copy(deep=True)
    other.dataset.sha256 = "e" * 64
    summary = summarize([ok, failed, other])
    assert summary.runs == 2
    assert any("1 of 3 runs did not complete" in w for w in summary.warnings)
    assert any("different datasets" in w for w in summary.warnings)
    assert worst_status([ok, other]) == "completed" and worst_status([ok, failed]) == "failed"


def test_stat_formats_one_and_many():
    assert stat([None, None]) is None
    one = stat([2.5])
    assert one == Stat(2.5, 0.0, 1) and one.format(".2f") == "2.50" and one.cv is None
    assert stat([1.0, 3.0]).format(".1f") == "2.0 ± 1.4"


def test_repeat_requests_name_the_runs():
    req = LaunchRequest(model="m", data="d.jsonl", scenario="bf16", batch_size=4, run_id="mine")
    assert [r.run_id for r in repeat_requests(req, 3)] == ["mine-r1", "mine-r2", "mine-r3"]
    assert repeat_requests(req, 1) == [req]
    unnamed = repeat_requests(LaunchRequest(model="m", data="d.jsonl", batch_size=2), 2)
    assert re.fullmatch(r"\d{8}-\d{6}-cpu-cpu-fp32-bs2-r1", unnamed[0].run_id)  # the image's default scenario
    assert unnamed[1].run_id == unnamed[0].run_id[:-1] + "2"


def test_repeat_cannot_resume(cli, tmp_path: Path):
    proc = cli(["launch", "--model", "x", "--repeat", "2", "--resume", str(tmp_path)])
    assert proc.returncode == 2 and "--repeat starts new runs" in proc.stderr


def test_report_groups_the_repeats(bench):
    proc = in_process(["report", str(bench.root), "--format", "csv"])
    rows = [line for line in proc.stdout.splitlines() if ",fp32-bs1-r1 fp32-bs1-r2," in line]
    assert len(rows) == 1


@pytest.mark.slow
def test_ctrl_c_stops_the_set_and_the_same_command_finishes_it(tiny_model, small_dataset, tmp_path):
    """Ctrl-C in the first repeat stops the set there (no second repeat starts on its own); the same
    command again resumes the interrupted repeat, runs the ones never started, and summarizes all."""
    from conftest import run_cli, wait_for
    from test_resume import launch_args, start_launch

    from runner.contract.rundir import read_docs, read_result

    results = tmp_path / "results"
    args = [*launch_args(tiny_model, small_dataset, results, "rr"), "--repeat", "3"]
    host = start_launch(args, {"SUMBENCH_INJECT_DELAY_S": "1"})
    try:
        wait_for(lambda: len(read_docs(results / "rr-r1")) >= 2, timeout=180, what="a first batch")
        os.killpg(host.pid, signal.SIGINT)
        _, err = host.communicate(timeout=90)
    finally:
        host.kill()
    assert host.returncode == 130, err[-2000:]  # a person's stop: the interruption's own exit code
    assert read_result(results / "rr-r1").error.error_class == "Interrupted"
    assert not (results / "rr-r2").exists() and not (results / "rr-r3").exists()
    assert "stopped: 2 repeats not started; the same command with --run-id rr finishes the set" in err

    again = run_cli(args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert all(read_result(results / f"rr-r{i}").status == "completed" for i in (1, 2, 3))
    assert any(line.startswith("3 repeats: docs/s") for line in again.stdout.splitlines())

    third = run_cli(args)  # nothing left to run: every repeat is kept and summarized again
    assert third.returncode == 0, third.stderr[-2000:]
    assert third.stderr.count("already completed, kept") == 3
