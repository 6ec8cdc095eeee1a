"""The harness's share of each timed call, measured on the call itself: the hf backend clocks the model's own
generate inside the worker's timed region, so latency minus model time is what tokenizing, moving inputs
and decoding added. Unlike a worker-vs-bare-loop comparison across separate calls, no call-to-call noise
enters it (on the H100 separate calls at one batch size varied by up to 2x)."""

from __future__ import annotations

from conftest import read_docs, read_result

from runner.contract.aggregate import aggregate
from runner.contract.schema import DocRecord


def test_every_call_records_the_model_time_inside_its_latency(make_run_dir, run_worker):
    run_dir = make_run_dir(limit=6, batch_size=2)
    assert run_worker(run_dir) == 0
    docs = read_docs(run_dir)
    assert len(docs) == 6
    for d in docs:
        assert 0 < d["model_s"] <= d["latency_s"]
    metrics = read_result(run_dir)["metrics"]
    assert len(metrics["batches"]) == 3
    for b in metrics["batches"]:
        assert 0 < b["model_seconds"] <= b["seconds"]
    assert metrics["model_generate_seconds"] == sum(b["model_seconds"] for b in metrics["batches"])
    assert 0 < metrics["model_generate_seconds"] <= metrics["generate_seconds"]


def record(batch: int, model_s: float | None) -> DocRecord:
    return DocRecord(
        id=f"d{batch}", input_tokens=5, output_tokens=3, latency_s=1.0, model_s=model_s, batch=batch,
        batch_size=1, summary="s",
    )  # fmt: skip


def test_model_time_is_summed_only_when_every_call_has_one():
    assert aggregate([record(0, 0.5), record(1, 0.25)]).model_generate_seconds == 0.75
    # a run resumed from records written before model time was kept cannot say it for the whole run
    assert aggregate([record(0, None), record(1, 0.8)]).model_generate_seconds is None
    assert aggregate([record(0, None)]).batches[0].model_seconds is None


def test_every_call_records_the_length_its_prompts_were_padded_to(make_run_dir, run_worker):
    """A call's shape (size, padded length) beside its time: on a GPU a shape no earlier call had pays its
    first-use costs inside the timed call, and this is how a reader finds those calls."""
    run_dir = make_run_dir(limit=6, batch_size=2)
    assert run_worker(run_dir) == 0
    docs = read_docs(run_dir)
    by_batch: dict[int, list[dict]] = {}
    for d in docs:
        by_batch.setdefault(d["batch"], []).append(d)
    metrics = read_result(run_dir)["metrics"]
    for number, batch in by_batch.items():
        longest = max(d["input_tokens"] for d in batch)
        assert {d["padded_tokens"] for d in batch} == {longest}  # left padding to the batch's longest prompt
        assert metrics["batches"][number]["padded_tokens"] == longest
    lengths = [max(d["input_tokens"] for d in b) for b in by_batch.values()]
    assert lengths == sorted(lengths, reverse=True), "longest first: each call is padded to less than the last"
