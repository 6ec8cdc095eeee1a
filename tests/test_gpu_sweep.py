"""The GPU check script, dry-run on the CPU with a tiny model: the device gets one try a session, so the
script must already work end to end before it is sent there."""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
import subprocess
import sys
import tarfile
import time
from types import SimpleNamespace

import pytest

from runner.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "gpu_sweep.py"
DRY_RUN = [
    "--arch", "tiny-llama", "--device", "cpu", "--batches", "1,2", "--batches-per-cell", "2",
    "--max-new-tokens", "8", "--auto-cap", "4", "--time-budget", "900",
]  # fmt: skip


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_sweep", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *DRY_RUN, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads((out / "sweep.json").read_text())


@pytest.mark.slow
def test_every_batch_is_measured_twice_on_both_sides(dry_run):
    _, summary = dry_run
    assert [r["batch_size"] for r in summary["sweep"]] == [1, 2]
    for row in summary["sweep"]:
        assert len(row["worker_docs_per_second"]) == 2 and len(row["bare_docs_per_second"]) == 2
        assert all(v > 0 for v in row["worker_docs_per_second"] + row["bare_docs_per_second"])
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        expected = (mean(row["bare_docs_per_second"]) / mean(row["worker_docs_per_second"]) - 1) * 100
        assert row["overhead_pct"] == pytest.approx(expected)
        assert row["end_to_end_pct"] is not None
        assert [w["documents"] for w in row["worker"]] == [2 * row["batch_size"]] * 2
    assert summary["goals"]["worst_harness_overhead_pct"] is not None
    # the worker's own calls split into model time and the rest: never negative, always measured
    assert all(r["in_call_pct"] is not None and r["in_call_pct"] >= 0 for r in summary["sweep"])
    assert summary["goals"]["worst_in_call_overhead_pct"] is not None
    assert summary["auto"]["result"]["status"] == "completed"
    assert summary["memory_limit"]["cells"][0]["result"]["status"] == "completed"
    assert not summary["skipped"]


@pytest.mark.slow
def test_pairs_alternate_and_the_second_pass_flips_them(dry_run):
    out, _ = dry_run
    steps = re.findall(r"\] (bare batch \d+|bs\d+(?:-r2)?): (?:completed|failed)", (out / "sweep.log").read_text())
    assert steps[:4] == ["bare batch 1", "bs001", "bs002", "bare batch 2"]  # bare first, then worker first
    assert steps[4:] == ["bare batch 2", "bs002-r2", "bs001-r2", "bare batch 1"]  # reversed, each pair flipped


@pytest.mark.slow
def test_each_batch_size_is_settled_before_its_pair_and_left_out(dry_run):
    out, summary = dry_run
    steps = re.findall(
        r"\] ((?:settle|bare) batch \d+|bs\d+(?:-r2)?|auto): (?:completed|failed)", (out / "sweep.log").read_text()
    )
    assert steps[:6] == ["settle batch 1", "bare batch 1", "bs001", "settle batch 2", "bs002", "bare batch 2"]
    assert steps[6:10] == ["bare batch 2", "bs002-r2", "bs001-r2", "bare batch 1"]  # the second pass at once
    assert steps[10:12] == ["settle batch 4", "auto"]  # then auto, its batch settled with one call
    for row in summary["sweep"]:
        assert len(row["settle"]) == 1 and len(row["bare"]) == 2  # the settling cell is not a pass
        assert len(row["settle"][0]["batch_seconds"]) == 2
    assert len(summary["auto"]["settle"][0]["batch_seconds"]) == 1
    assert summary["goals"]["auto_vs_best_swept_pct"] is not None


@pytest.mark.slow
def test_outputs_keep_every_run_folder(dry_run):
    out, _ = dry_run
    md = (out / "sweep.md").read_text()
    assert "| batch | docs | worker docs/s | bare docs/s | overhead | median call overhead ± noise | end to end |" in md
    with tarfile.open(out / "runs.tar.gz") as tar:
        results = [n for n in tar.getnames() if n.endswith("/result.json")]
    assert {n.split("/")[1] for n in results} >= {"bs001", "bs002", "bs001-r2", "bs002-r2", "auto", "limit-bs001"}


def test_estimate_scales_an_unmeasured_larger_batch_up():
    sweep = load_script()

    stub = SimpleNamespace(  # only the fields estimate() reads
        load_seconds=1.0,
        bare={1: [{"batch_seconds": [6.0, 6.2]}]},
        worker={32: [{"batch_seconds": [20.0]}]},
        worker_unsampled={},
        settled={1: [{"batch_seconds": [18.0]}]},  # a slow first call is outvoted by the median
    )
    assert sweep.estimate(stub, 1, 2) == pytest.approx(1 + 6.2 * 2.1 + 5)
    assert sweep.estimate(stub, 16, 1) == pytest.approx(1 + 20.0 * 1.1 + 5)  # the nearest larger measured
    assert sweep.estimate(stub, 128, 1) == pytest.approx(1 + 20.0 * 4**0.35 * 1.1 + 5)


def test_harness_row_compares_means_of_completed_passes():
    sweep = load_script()
    worker = [
        {"status": "completed", "docs_per_second": 1.0, "wall_seconds": 12.0, "load_seconds": 2.0},
        {"status": "completed", "docs_per_second": 3.0, "wall_seconds": 14.0, "load_seconds": 2.0},
        {"status": "failed", "docs_per_second": None},
    ]
    bare = [{"status": "completed", "docs_per_second": 2.1, "run_seconds": 10.0}]
    row = sweep.harness_row(worker, bare)
    assert row["overhead_pct"] == pytest.approx(5.0)
    assert row["end_to_end_pct"] == pytest.approx(10.0)
    assert sweep.harness_row(worker, [])["overhead_pct"] is None


def test_harness_row_judges_by_median_calls_and_their_spread():
    sweep = load_script()
    worker = [{"status": "completed", "docs_per_second": 1.0, "batch_seconds": [10.0, 10.2, 30.0]}]
    bare = [{"status": "completed", "docs_per_second": 1.0, "batch_seconds": [10.0, 10.1]}]
    row = sweep.harness_row(worker, bare)
    assert row["worker_call_median_seconds"] == pytest.approx(10.2)  # the 30 s call does not move it
    assert row["call_overhead_pct"] == pytest.approx((10.2 / 10.05 - 1) * 100)
    assert row["worker_spread_pct"] == pytest.approx(200.0)
    assert row["bare_spread_pct"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("overhead", "spreads", "verdict"),
    [
        (1.0, (1.0, 1.0), True),  # 1% ± 0.5%: wholly inside 2%
        (1.5, (2.0, 0.5), None),  # 1.5% ± 1%: straddles the goal
        (-1.5, (2.0, 0.0), None),  # the other way too
        (5.0, (2.0, 2.0), False),  # 5% ± 1%: wholly outside
        (-5.0, (2.0, 2.0), False),  # a worker faster by 5% is no pass either
        (0.0, (10.0, 0.0), None),  # no difference, but calls 10% apart cannot vouch for 2%
    ],
)
def test_harness_verdict_decides_only_what_the_noise_allows(overhead, spreads, verdict):
    sweep = load_script()
    row = {"call_overhead_pct": overhead, "worker_spread_pct": spreads[0], "bare_spread_pct": spreads[1]}
    assert sweep.harness_verdict([row])[0] is verdict


def test_auto_goals_hold_auto_against_the_best_swept_batch_and_batch_one():
    sweep = load_script()
    rows = [
        {"batch_size": 1, "worker_docs_per_second": [0.1, 0.14]},
        {"batch_size": 32, "worker_docs_per_second": [3.0, 3.2]},
    ]
    got = sweep.auto_goals(rows, {"status": "completed", "docs_per_second": 2.9})
    assert got["auto_vs_best_swept_pct"] == pytest.approx(2.9 / 3.1 * 100)
    assert got["auto_at_least_90pct_of_best_swept"] is True
    assert got["auto_vs_batch_1_x"] == pytest.approx(2.9 / 0.12)
    assert got["auto_at_least_20x_batch_1"] is True
    failed = sweep.auto_goals(rows, {"status": "failed", "docs_per_second": None})
    assert failed["auto_at_least_90pct_of_best_swept"] is None


def test_step_clock_tells_a_few_long_steps_from_a_slow_call():
    sweep = load_script()
    clock = sweep.StepClock()
    scores = object()
    assert clock(None, scores) is scores  # the scores pass through untouched: no GPU work
    clock.stamps = [0.0, 0.010, 0.020, 0.030, 0.130, 0.140]  # four 10 ms steps and one of 100 ms
    got = clock.summary()
    assert got["steps"] == 6 and got["median_ms"] == pytest.approx(10.0)
    assert got["max_ms"] == pytest.approx(100.0)
    assert got["slow_steps"] == 1 and got["slow_ms"] == pytest.approx(90.0)
    assert sweep.StepClock().summary() == {}


@pytest.mark.slow
def test_every_timed_call_is_probed_on_both_sides(dry_run):
    out, summary = dry_run
    for row in summary["sweep"]:
        for entry in row["worker"] + row["bare"] + row["settle"]:
            host = entry["host"]
            assert len(host) == len(entry["batch_seconds"])  # the worker's warmup call is not among them
            for call, seconds in zip(host, entry["batch_seconds"], strict=True):
                assert 0 < call["seconds"] <= seconds  # inside the timed region, as on both sides
                assert 0 < call["thread_cpu_pct"] <= 150  # the thread's own CPU; a little over from clock ticks
                assert call["at_seconds"] > 0 and call["gpu_util_pct"] is None  # CPU run: no NVML
    starts = [c["at_seconds"] for r in summary["sweep"] for e in r["settle"] + r["bare"] for c in e["host"]]
    assert starts[:2] == sorted(starts[:2])
    assert "host per call" in (out / "sweep.md").read_text()


def test_call_probe_reads_a_busy_thread_and_its_faults():
    from benchmarks.call_probe import CallProbe, probe_line

    with CallProbe(None) as probe:
        probe.start()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.2:  # busy on the CPU
            pass
        busy = probe.stop()
        probe.start()
        time.sleep(0.2)  # off the CPU
        idle = probe.stop()
        probe.start()
        pages = bytearray(64 * 1024 * 1024)  # fresh pages, touched as they are zeroed
        touched = probe.stop()
    del pages
    assert busy["thread_cpu_pct"] > 80 and idle["thread_cpu_pct"] < 20
    assert idle["voluntary_switches"] >= 1
    assert touched["minor_faults"] >= 32  # 16,384 pages of 4 KiB, or 32 huge pages of 2 MiB
    assert busy["at_seconds"] < idle["at_seconds"] < touched["at_seconds"]
    assert probe_line(busy).startswith("@0s cpu ")
    with pytest.raises(RuntimeError):
        CallProbe(None).stop()


@pytest.mark.slow
def test_plot_calls_draws_every_probed_call(dry_run, tmp_path):
    from benchmarks.plot_calls import calls, plot

    _, summary = dry_run
    probed = sum(len(e["host"]) for r in summary["sweep"] for side in ("settle", "bare", "worker") for e in r[side])
    points = calls(summary)
    assert len(points) == probed > 0
    for batch in {p["batch"] for p in points}:  # relative to the median call at its own batch size
        assert statistics.median(p["relative"] for p in points if p["batch"] == batch) == pytest.approx(1.0)
    assert plot(summary, tmp_path / "calls.png") == probed
    assert (tmp_path / "calls.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="no probed calls"):
        plot({"sweep": [{"batch_size": 1, "bare": [{"batch_seconds": [1.0]}]}]}, tmp_path / "old.png")
