"""The run summary says when its docs/s is not a steady number: too few batches, or batches far apart."""

from __future__ import annotations

import io
import re

from rich.console import Console

from runner.console import summary_table, timing_warning
from runner.contract import rundir
from runner.contract.schema import BatchTiming


def with_batches(result, timings: list[tuple[int, float, int]], batch_size=2):
    batches = [BatchTiming(size=s, seconds=sec, output_tokens=tok) for s, sec, tok in timings]
    metrics = result.metrics.model_copy(update={"batches": batches})
    config = result.config.model_copy(update={"batch_size": batch_size})
    return result.model_copy(update={"metrics": metrics, "config": config})


def test_steady_batches_give_no_warning_even_with_a_short_last_batch(finished_run):
    result = rundir.read_result(finished_run)
    assert len(result.metrics.batches) == 3
    steady = with_batches(result, [(4, 1.0, 1200), (4, 1.1, 1200), (4, 1.05, 1200), (1, 0.3, 300)])
    assert timing_warning(steady) is None


def test_a_slow_first_batch_is_flagged_in_the_summary(finished_run):
    result = rundir.read_result(finished_run)
    uneven = with_batches(result, [(4, 36.4, 1200), (4, 32.4, 1200), (4, 2.0, 1200), (4, 1.1, 1200)])
    warning = timing_warning(uneven)
    assert warning.startswith("batches ran 33.1x apart in time per token (1.10-36.40 s a batch)")
    console = Console(width=250, record=True, file=io.StringIO())
    console.print(summary_table(uneven, finished_run))
    assert re.search(r"│ timing +│ batches ran 33\.1x apart", console.export_text())


def test_too_few_batches_are_flagged_except_for_vllms_single_call(finished_run):
    result = rundir.read_result(finished_run)
    two = with_batches(result, [(4, 1.0, 1200), (4, 1.0, 1200)])
    assert timing_warning(two).startswith("only 2 timed batches: docs/s rests on too few calls")
    assert timing_warning(with_batches(result, [(24, 5.0, 7200)], batch_size="dynamic")) is None


def _shown(result, run_dir) -> str:
    console = Console(width=250, record=True, file=io.StringIO())
    console.print(summary_table(result, run_dir))
    return console.export_text()


def test_a_serving_runs_summary_has_its_levels_in_place_of_the_offline_rows():
    """The serving reference run: TTFT and TPOT per load level, never the offline rows' empty dashes."""
    from runner.paths import REPO_ROOT

    run_dir = REPO_ROOT / "results" / "reference" / "cpu-serving-2026-12-04" / "vllm-serve-sweep"
    text = _shown(rundir.read_result(run_dir), run_dir)
    for offline in ("call time p50/p90/p99", "first token p50/p90/p99", "per token p50/p90/p99", "throughput"):
        assert offline not in text
    assert "attention None" not in text and "│ server " in text


def test_the_summary_names_output_tokens_and_each_out_of_memory_call(finished_run):
    from runner.contract.schema import OOMEvent

    result = rundir.read_result(finished_run)
    events = [
        OOMEvent(batch_size=8, documents=["a"], message="oom", seconds=2.25, in_warmup=True),
        OOMEvent(batch_size=4, documents=["a"], message="oom", seconds=1.5, in_warmup=False),
        OOMEvent(batch_size=2, documents=["a"], message="oom"),  # a result from before schema 1.3
    ]
    text = _shown(
        result.model_copy(update={"batching": result.batching.model_copy(update={"oom_events": events})}), finished_run
    )
    assert re.search(r"│ throughput +│ [\d.]+ docs/s · [\d.]+ output tokens/s", text)
    assert re.search(r"│ OOM events +│ bs 8 \(warm-up, 2\.2 s\), bs 4 \(timed call, 1\.5 s\), bs 2 ", text)


def test_the_progress_bar_says_docs_per_second_for_batches_and_requests_for_a_server():
    import json

    from runner.console import RunProgress
    from runner.contract.events import MARK

    def line(**fields) -> str:  # as the worker writes an event (runner.contract.events.emit)
        return f"{MARK} {json.dumps({'event': 'progress', **fields})}"

    progress = RunProgress("run")
    with progress:
        progress.on_line(line(done=4, total=8, batch_size=4, docs_per_second=2.5))
        batches = progress.progress.tasks[0].fields["rate"]
        progress.on_line(line(done=5, total=8, level="rate 4", completed_per_second=3.25))
        server = progress.progress.tasks[0].fields["rate"]
    assert batches == "2.50 docs/s (bs 4)"
    assert server == "3.25 completed requests/s (rate 4)"


def test_a_missing_energy_figure_says_why():
    from runner.paths import REPO_ROOT

    run_dir = REPO_ROOT / "results" / "reference" / "cpu-serving-2026-12-04" / "vllm-serve-sweep"
    assert re.search(r"│ energy / doc +│ - \(not measured for a server\)", _shown(rundir.read_result(run_dir), run_dir))


def test_the_timing_warning_says_whether_the_slowest_call_was_the_first_of_its_shape(finished_run):
    """A call of a shape (size, padded length) no earlier call had may pay first-use costs inside its time;
    a slow call of a shape already run or warmed did not, and the warning says which it was."""
    result = rundir.read_result(finished_run)

    def shaped(calls, warmup="full"):
        batches = [BatchTiming(size=4, seconds=sec, output_tokens=1200, padded_tokens=n) for sec, n in calls]
        metrics = result.metrics.model_copy(update={"batches": batches})
        config = result.config.model_copy(update={"batch_size": 4, "warmup": warmup})
        return result.model_copy(update={"metrics": metrics, "config": config})

    new_shape = shaped([(1.0, 515), (1.1, 515), (3.5, 530), (1.0, 500)])
    assert timing_warning(new_shape).endswith(
        "; the slowest (call 3, 4 prompts padded to 530 tokens) was the first call of its shape"
    )
    repeat = shaped([(1.0, 515), (1.1, 500), (3.5, 500), (1.0, 490)])
    assert timing_warning(repeat).endswith(
        "; the slowest (call 3, 4 prompts padded to 500 tokens) had a shape an earlier call had"
    )
    first = [(3.5, 515), (1.1, 515), (1.0, 500)]
    assert timing_warning(shaped(first)).endswith("had a shape an earlier call had"), "the warm-up ran its shape"
    assert timing_warning(shaped(first, warmup="none")).endswith("was the first call of its shape")
    assert "shape" not in timing_warning(with_batches(result, [(4, 3.5, 1200), (4, 1.0, 1200), (4, 1.0, 1200)]))
