"""The warm-up covers the padded path: a first batch of equal-length prompts needs no attention mask, a
later padded one does, and on an H200 that path's first use cost a timed call ~15 s (issue 15's GPU run).
The rule, and the worker applying it, seen through its log on a real run of the tiny model."""

from __future__ import annotations

import pytest
from conftest import read_result, write_jsonl

from runner.worker.prompts import warmup_batch

LONG, SHORT = ("a", 12), ("z", 7)


@pytest.mark.parametrize(
    ("batch", "lengths", "shortest", "expected"),
    [
        (["a", "b", "c"], [12, 12, 12], SHORT, ["a", "b", "z"]),  # unpadded now, padded later: swap
        (["a", "b", "c"], [12, 11, 10], SHORT, ["a", "b", "c"]),  # already padded: its own warm-up covers it
        (["a", "b", "c"], [12, 12, 12], LONG, ["a", "b", "c"]),  # every prompt as long: no padding anywhere
        (["a"], [12], SHORT, ["a"]),  # one prompt a call is never padded
        (["a", "b"], [12, 12], None, ["a", "b"]),
    ],
)
def test_the_warmup_batch_swaps_in_the_shortest_prompt_only_when_padding_comes_later(
    batch, lengths, shortest, expected
):
    assert warmup_batch(batch, lengths, shortest) == expected


def _records(long: int, short: int) -> list[dict]:
    """``long`` documents of one text, then ``short`` documents of a shorter one: batch 1 is unpadded."""
    texts = ["step " * 60] * long + ["step " * 20] * short
    return [{"id": f"d{i}", "document": t, "summary": "Steps."} for i, t in enumerate(texts)]


@pytest.mark.parametrize(("short", "swapped"), [(4, True), (0, False)])
def test_the_worker_warms_up_on_the_padded_path_when_a_later_batch_needs_it(
    make_run_dir, run_worker, tmp_path, short, swapped
):
    data = write_jsonl(tmp_path / f"docs-{short}.jsonl", _records(4, short))
    run_dir = make_run_dir(data=str(data), batch_size=4, max_new_tokens=4, warmup="full")
    assert run_worker(run_dir) == 0
    result = read_result(run_dir)
    assert result["status"] == "completed" and result["metrics"]["documents"] == 4 + short
    assert [b["size"] for b in result["metrics"]["batches"]] == [4] * (1 + (short > 0))
    log = (run_dir / "worker.log").read_text()
    assert ("the run's shortest" in log) is swapped, log[-2000:]
