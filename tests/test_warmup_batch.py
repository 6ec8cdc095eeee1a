"""The warm-up covers both attention paths: a first batch of equal-length prompts needs no attention mask, a
later padded one does, and on an H200 each path's first use in a process cost a call ~15 s (issue 15's GPU
run). The rule, and the worker applying it (its warm-up seconds and log on a real run of the tiny model)."""

from __future__ import annotations

import pytest
from conftest import read_result, write_jsonl

from runner.worker.prompts import warmup_batches

LONG, SHORT = ("a", 12), ("z", 7)


@pytest.mark.parametrize(
    ("batch", "lengths", "shortest", "expected"),
    [
        (["a", "b", "c"], [12, 12, 12], SHORT, [["a", "b", "c"], ["a", "b", "z"]]),  # unpadded now, padded later
        (["a", "b", "c"], [12, 11, 10], SHORT, [["a", "b", "c"]]),  # already padded: one path, one warm-up
        (["a", "b", "c"], [12, 12, 12], LONG, [["a", "b", "c"]]),  # every prompt as long: never padded
        (["a"], [12], SHORT, [["a"]]),  # one prompt a call is never padded
        (["a", "b"], [12, 12], None, [["a", "b"]]),
    ],
)
def test_the_warmup_adds_a_padded_batch_only_when_padding_comes_later(batch, lengths, shortest, expected):
    assert warmup_batches(batch, lengths, shortest) == expected


def _records(long: int, short: int) -> list[dict]:
    """``long`` documents of one text, then ``short`` documents of a shorter one: batch 1 is unpadded."""
    texts = ["step " * 60] * long + ["step " * 20] * short
    return [{"id": f"d{i}", "document": t, "summary": "Steps."} for i, t in enumerate(texts)]


@pytest.mark.parametrize(("short", "both"), [(4, True), (0, False)])
def test_the_worker_warms_up_both_paths_when_a_later_batch_is_padded(make_run_dir, run_worker, tmp_path, short, both):
    data = write_jsonl(tmp_path / f"docs-{short}.jsonl", _records(4, short))
    run_dir = make_run_dir(data=str(data), batch_size=4, max_new_tokens=4, warmup="full")
    assert run_worker(run_dir) == 0
    result = read_result(run_dir)
    assert result["status"] == "completed" and result["metrics"]["documents"] == 4 + short
    assert [b["size"] for b in result["metrics"]["batches"]] == [4] * (1 + (short > 0))
    log = (run_dir / "worker.log").read_text()
    assert ("then with the run's shortest" in log) is both, log[-2000:]
