"""Aggregate metrics from per-document records.

``docs.jsonl`` is the source of truth: the worker computes a run's metrics from it, and so does the
host when a worker died before writing ``result.json``, so both give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from runner.contract.schema import BatchTiming, DocRecord, ErrorInfo, Metrics, Percentiles, Rouge, RunResult, Status


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method), without numpy."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def percentiles(values: Sequence[float | None]) -> Percentiles | None:
    """p50/p90/p99 of the values measured (None where a record has none); None when none is."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    return Percentiles(p50=percentile(known, 50), p90=percentile(known, 90), p99=percentile(known, 99))  # type: ignore[arg-type]


def batch_timings(records: Sequence[DocRecord]) -> list[BatchTiming]:
    """One timing per generate call, grouped by the batch number every record carries."""
    batches: dict[int, BatchTiming] = {}
    for r in records:
        b = batches.get(r.batch)
        if b is None:
            batches[r.batch] = BatchTiming(
                size=1,
                seconds=r.latency_s,
                output_tokens=r.output_tokens,
                model_seconds=r.model_s,
                padded_tokens=r.padded_tokens,
            )
        else:
            b.size += 1
            b.output_tokens += r.output_tokens
    return [batches[k] for k in sorted(batches)]


def mean_rouge(records: Sequence[DocRecord]) -> Rouge | None:
    scored = [r for r in records if r.rouge1 is not None]
    if not scored:
        return None
    n = len(scored)
    return Rouge(
        rouge1=sum(r.rouge1 for r in scored) / n,  # type: ignore[misc]
        rouge2=sum(r.rouge2 or 0.0 for r in scored) / n,
        rougeL=sum(r.rougeL or 0.0 for r in scored) / n,
    )


def aggregate(records: Sequence[DocRecord], *, skipped_too_long: int = 0, skipped_by_backend: int = 0) -> Metrics:
    batches = batch_timings(records)
    seconds = sum(b.seconds for b in batches)
    model = [b.model_seconds for b in batches]
    out_tokens = sum(r.output_tokens for r in records)
    latencies = [r.latency_s for r in records]
    n = len(records)
    return Metrics(
        documents=n,
        skipped_too_long=skipped_too_long,
        skipped_by_backend=skipped_by_backend,
        docs_per_second=n / seconds if seconds > 0 else None,
        output_tokens_per_second=out_tokens / seconds if seconds > 0 else None,
        avg_input_tokens=sum(r.input_tokens for r in records) / n if n else None,
        avg_output_tokens=out_tokens / n if n else None,
        total_output_tokens=out_tokens,
        latency_p50_s=percentile(latencies, 50),
        latency_p90_s=percentile(latencies, 90),
        latency_p99_s=percentile(latencies, 99),
        time_to_first_token_s=percentiles([r.ttft_s for r in records]),
        time_per_output_token_s=percentiles([r.tpot_s for r in records]),
        generate_seconds=seconds,
        # Only when every call was split: a resumed run's earlier part may come from a backend that was not.
        model_generate_seconds=sum(model) if model and None not in model else None,  # type: ignore[arg-type]
        rouge=mean_rouge(records),
        batches=batches,
    )


INTERRUPTED = "Interrupted"
"""The error class of a run a person stopped (Ctrl-C, SIGTERM): the worker's ``classify``, and the host's
for a worker that ended without a result after an interruption."""


def interrupted(result: RunResult) -> bool:
    """Whether a person stopped the run (its error is ``INTERRUPTED``)."""
    return result.error is not None and result.error.error_class == INTERRUPTED


def run_status(error: ErrorInfo | None, documents: int) -> Status:
    """A run's status from how it ended and how many documents it has; the worker and the host decide it
    the same way.

    An interruption is ``partial`` even before its first document: a person stopped the run, nothing
    about its cell failed, and ``--resume`` finishes it. Any other error is ``failed`` until a document
    is done, and so are too many skipped prompts, which no resume fixes."""
    if error is None:
        return "completed"
    if error.error_class == INTERRUPTED:
        return "partial"
    if documents and error.error_class != "TooManyPromptsSkipped":
        return "partial"
    return "failed"
