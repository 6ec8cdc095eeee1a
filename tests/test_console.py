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
