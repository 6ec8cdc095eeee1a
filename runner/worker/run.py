"""One benchmark run, start to finish: dataset → backend → batches → ``docs.jsonl`` → ``result.json``.

Whatever happens (an out-of-memory error, a kernel refusing the GPU, SIGTERM, Ctrl-C) the run ends
by writing ``result.json`` with a status and every document that finished, so a failure is a result.
"""

from __future__ import annotations

import logging
import signal
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from runner import events, rundir
from runner.aggregate import aggregate
from runner.datasets import Dataset, Document, load_dataset
from runner.schema import (
    BackendInfo,
    Batching,
    DatasetInfo,
    DeviceInfo,
    DocRecord,
    Environment,
    ErrorInfo,
    OOMEvent,
    RunConfig,
    RunResult,
)
from runner.secrets import RedactingFormatter, redact
from runner.worker import faults, quality
from runner.worker.backends import Backend, create_backend
from runner.worker.environment import device_info, environment, resolve_device
from runner.worker.prompts import build_prompt
from runner.worker.trackers import EnergyTracker, MemoryTracker

log = logging.getLogger("sumbench.worker")

WARMUP_NEW_TOKENS = 4  # enough to compile kernels and allocate the KV cache once, cheap at any batch size


class TooManySkipped(Exception):
    """More prompts than allowed were over the input limit."""


@dataclass
class RunState:
    """What the run has learned so far, so an interruption at any point can still be reported."""

    started_at: str
    dataset: Dataset | None = None
    device: DeviceInfo | None = None
    env: Environment | None = None
    backend: BackendInfo | None = None
    skipped_too_long: int = 0
    load_seconds: float | None = None
    warmup_seconds: float | None = None
    batch_size: int | None = None
    oom_events: list[OOMEvent] = field(default_factory=list)
    generated_now: int = 0
    energy_joules: float | None = None
    notes: list[str] = field(default_factory=list)
    peak: tuple[int | None, int | None, str | None] = (None, None, None)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def setup_logging(run_dir: Path) -> None:
    fmt = RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in (logging.FileHandler(run_dir / rundir.WORKER_LOG, encoding="utf-8"), logging.StreamHandler()):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    for noisy in ("httpx", "urllib3", "filelock", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def classify(exc: BaseException, backend: Backend | None) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "Interrupted"
    if isinstance(exc, TooManySkipped):
        return "TooManyPromptsSkipped"
    if backend is not None and backend.is_out_of_memory(exc):
        return "OutOfMemoryError"
    if "CUDA error" in str(exc) or type(exc).__name__ in ("CudaError", "AcceleratorError"):
        return "CudaError"
    return type(exc).__name__


def run(run_dir: Path) -> int:
    """Run the cell configured in ``run_dir/config.json``; the exit code mirrors the status."""
    config = rundir.read_config(run_dir)
    setup_logging(run_dir)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    state = RunState(started_at=now())
    backend: Backend | None = None
    error: ErrorInfo | None = None
    try:
        backend = _execute(config, run_dir, state)
    except BaseException as exc:  # every failure becomes a result, including Ctrl-C
        backend = backend or getattr(exc, "backend", None)
        error = ErrorInfo(error_class=classify(exc, backend), message=redact(str(exc) or type(exc).__name__))
        (run_dir / rundir.ERROR_LOG).write_text(redact(traceback.format_exc()), encoding="utf-8")
        log.error("%s: %s", error.error_class, error.message)
    result = _result(config, run_dir, state, error)
    rundir.write_result(run_dir, result)
    events.emit("result", status=result.status, result=result.model_dump(mode="json"))
    return {"completed": 0, "partial": 3}.get(result.status, 1)


def _execute(config: RunConfig, run_dir: Path, state: RunState) -> Backend:
    state.dataset = dataset = load_dataset(
        config.data,
        text_field=config.text_field,
        summary_field=config.summary_field,
        id_field=config.id_field,
        limit=config.limit,
    )
    device = resolve_device(config.device)
    memory = MemoryTracker(device)
    memory.limit(config.gpu_memory_limit_bytes)
    state.device = device_info(device, config.gpu_memory_limit_bytes)
    state.env = environment(state.device, config.launch)
    log.info("dataset %s: %d documents, sha256 %s", dataset.path, len(dataset), dataset.sha256[:12])

    backend = create_backend(config, device, [d.text for d in dataset.documents])
    t0 = time.perf_counter()
    try:
        state.backend = backend.load()
    except BaseException as exc:
        exc.backend = backend  # type: ignore[attr-defined]
        raise
    state.load_seconds = time.perf_counter() - t0
    log.info("loaded %s in %.1fs: %s", config.model, state.load_seconds, state.backend.model_dump())

    prompts = {d.id: build_prompt(backend.tokenizer, d.text, config.prompt_template) for d in dataset.documents}
    lengths = dict(zip(prompts, backend.prompt_lengths(list(prompts.values())), strict=True))
    limit = min(config.max_input_tokens, backend.max_prompt_tokens() or config.max_input_tokens)
    too_long = [d for d in dataset.documents if lengths[d.id] > limit]
    state.skipped_too_long = len(too_long)
    if too_long:
        log.warning("%d documents over the %d-token input limit are skipped, not truncated", len(too_long), limit)
    if len(too_long) > config.max_skipped_fraction * len(dataset):
        raise TooManySkipped(
            f"{len(too_long)} of {len(dataset)} prompts exceed {limit} tokens "
            f"(allowed: {config.max_skipped_fraction:.0%}); raise --max-input-tokens or use shorter documents"
        )

    rundir.repair_docs(run_dir)
    done = rundir.read_docs(run_dir)
    done_ids = {r.id for r in done}
    if done:
        log.info("resuming: %d documents already done", len(done))
    # Longest first: an out-of-memory error shows up in the first batch, not after an hour.
    pending = sorted(
        (d for d in dataset.documents if d.id not in done_ids and lengths[d.id] <= limit),
        key=lambda d: lengths[d.id],
        reverse=True,
    )
    total = len(dataset) - len(too_long)
    events.emit("start", total=total, done=len(done))

    energy = EnergyTracker(device)
    memory.reset()
    next_batch = max((r.batch for r in done), default=-1) + 1
    writer = rundir.DocWriter(run_dir)
    try:
        _generate_all(config, backend, pending, prompts, lengths, state, writer, energy, next_batch, len(done), total)
    finally:
        writer.close()
        state.peak = memory.peak()
        if energy.available and state.generated_now:
            state.energy_joules = energy.joules
    return backend


def _initial_batch_size(config: RunConfig, pending: list[Document]) -> int:
    if config.batch_size == "dynamic":
        return max(1, len(pending))
    if config.batch_size == "auto":
        return max(1, min(config.max_batch_size or len(pending), len(pending)))
    return config.batch_size


def _generate_all(
    config: RunConfig,
    backend: Backend,
    pending: list[Document],
    prompts: dict[str, str],
    lengths: dict[str, int],
    state: RunState,
    writer: rundir.DocWriter,
    energy: EnergyTracker,
    batch_no: int,
    done: int,
    total: int,
) -> None:
    size = _initial_batch_size(config, pending)
    state.batch_size = size
    warm = not pending
    generated_seconds = 0.0
    while pending:
        batch = pending[:size]
        texts = [prompts[d.id] for d in batch]
        try:
            faults.before_generate(len(batch))
            if not warm:
                t0 = time.perf_counter()
                backend.generate(texts, min(WARMUP_NEW_TOKENS, config.max_new_tokens))
                backend.synchronize()
                state.warmup_seconds = time.perf_counter() - t0
                warm = True
            energy.start()
            t0 = time.perf_counter()
            generations = backend.generate(texts, config.max_new_tokens)
            backend.synchronize()
            seconds = time.perf_counter() - t0
            energy.stop()
        except Exception as exc:
            energy.stop()
            if not backend.is_out_of_memory(exc) or config.batch_size != "auto" or size == 1:
                raise
            backend.free_memory()
            state.oom_events.append(OOMEvent(batch_size=size, documents=[d.id for d in batch], message=str(exc)))
            log.warning("out of memory at batch size %d; retrying the same documents at %d", size, size // 2)
            size = max(1, size // 2)
            state.batch_size = size
            events.emit("oom", batch_size=len(batch), next_batch_size=size)
            continue
        records = []
        for doc, gen in zip(batch, generations, strict=True):
            scores = quality.rouge(gen.text, doc.references) if doc.references else None
            records.append(
                DocRecord(
                    id=doc.id,
                    input_tokens=lengths[doc.id],
                    output_tokens=gen.output_tokens,
                    latency_s=seconds,
                    batch=batch_no,
                    batch_size=len(batch),
                    summary=gen.text,
                    **(scores.model_dump() if scores else {}),
                )
            )
        writer.write_batch(records)
        batch_no += 1
        pending = pending[len(batch) :]
        state.generated_now += len(batch)
        done += len(batch)
        generated_seconds += seconds
        events.emit(
            "progress", done=done, total=total, batch_size=len(batch), docs_per_second=state.generated_now / generated_seconds
        )


def _result(config: RunConfig, run_dir: Path, state: RunState, error: ErrorInfo | None) -> RunResult:
    records = rundir.read_docs(run_dir)
    metrics = aggregate(records, skipped_too_long=state.skipped_too_long)
    metrics.model_load_seconds = state.load_seconds
    metrics.warmup_seconds = state.warmup_seconds
    metrics.peak_memory_bytes, metrics.peak_memory_allocated_bytes, metrics.peak_memory_source = state.peak
    if state.energy_joules is not None:
        metrics.energy_joules = state.energy_joules
        metrics.energy_per_doc_joules = state.energy_joules / state.generated_now
    if config.price_per_hour_usd is not None and metrics.documents and metrics.generate_seconds:
        metrics.cost_per_1k_docs_usd = config.price_per_hour_usd * metrics.generate_seconds / 3600 / metrics.documents * 1000
    started = datetime.fromisoformat(state.started_at)
    metrics.wall_seconds = (datetime.now(timezone.utc) - started).total_seconds()

    notes = list(state.notes)
    quality_meaningful = not config.synthetic_weights
    if state.dataset is not None and records:
        by_id = {d.id: d for d in state.dataset.documents}
        leads = [quality.rouge(quality.lead3(by_id[r.id].text), by_id[r.id].references) for r in records if by_id[r.id].references]
        metrics.lead3_rouge = quality.mean(leads)
    if config.synthetic_weights:
        notes.append(
            f"synthetic weights: output length forced to {config.max_new_tokens} tokens; ROUGE is not meaningful"
        )
    if config.forced and config.incompatibility:
        notes.append(f"launched with --force despite: {config.incompatibility}")

    if error is None:
        status = "completed"
    elif records and error.error_class != "TooManyPromptsSkipped":
        status = "partial"
    else:
        status = "failed"
    device = state.device or DeviceInfo(kind="cpu" if config.gpu == "cpu" else "cuda", name=config.gpu)
    env = state.env or environment(device, config.launch)
    ds = state.dataset
    return RunResult(
        run_id=config.run_id,
        status=status,
        started_at=state.started_at,
        finished_at=now(),
        config=config,
        environment=env,
        dataset=DatasetInfo(
            path=ds.path, sha256=ds.sha256, documents=len(ds),
            text_field=ds.text_field, summary_field=ds.summary_field, id_field=ds.id_field,
        ) if ds else None,
        backend=state.backend,
        batching=Batching(
            requested=config.batch_size,
            final=state.batch_size,
            planned_max=config.max_batch_size,
            oom_events=state.oom_events,
        ),
        metrics=metrics,
        quality_meaningful=quality_meaningful,
        notes=notes,
        error=error,
    )

