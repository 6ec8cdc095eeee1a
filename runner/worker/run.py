"""One benchmark run, start to finish: dataset → backend → batches → ``docs.jsonl`` → ``result.json``.

Whatever happens (an out-of-memory error, a kernel refusing the GPU, SIGTERM, Ctrl-C) the run ends
by writing ``result.json`` with a status and every document that finished, so a failure is a result.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from runner.contract import allocator, events, rundir
from runner.contract.aggregate import INTERRUPTED, aggregate, run_status
from runner.contract.datasets import Dataset, DatasetError, Document, load_dataset
from runner.contract.errors import UserError
from runner.contract.schema import (
    BackendInfo,
    Batching,
    DatasetInfo,
    DeviceInfo,
    DocRecord,
    Environment,
    ErrorInfo,
    Metrics,
    OOMEvent,
    RunConfig,
    RunResult,
    ServingResult,
)
from runner.contract.secrets import RedactingFormatter, redact
from runner.contract.weights import quality_caveat
from runner.worker import faults, quality
from runner.worker.backends import Backend, create_backend
from runner.worker.environment import device_info, environment, resolve_device
from runner.worker.prompts import build_prompt, warmup_batches
from runner.worker.trackers import DeviceMemorySampler, EnergyTracker, MemoryTracker, nvml_index

log = logging.getLogger("sumbench.worker")

WARMUP_NEW_TOKENS = 4
"""New tokens of ``--warmup short``: enough to load kernels and surface an out-of-memory error at the batch's
prompt length, not to take out what the first full-length call at a batch size costs."""


class TooManySkipped(Exception):
    """More prompts than allowed were over the input limit or refused by the backend."""


@dataclass
class RunState:
    """What the run has learned so far, so an interruption at any point can still be reported."""

    started_at: str
    started: float = field(default_factory=time.perf_counter)  # wall_seconds' clock: started_at is whole seconds
    dataset: Dataset | None = None
    device: DeviceInfo | None = None
    env: Environment | None = None
    backend: BackendInfo | None = None
    skipped_too_long: int = 0
    skipped_by_backend: int = 0
    load_seconds: float | None = None
    warmup_seconds: float | None = None
    batch_size: int | None = None
    planned_batch: int | None = None  # --batch-size auto: its largest batch for this run's prompts
    oom_events: list[OOMEvent] = field(default_factory=list)
    generated_now: int = 0
    energy_joules: float | None = None
    notes: list[str] = field(default_factory=list)
    peak: tuple[int | None, int | None, str | None] = (None, None, None)
    device_peak: int | None = None
    compile_seconds: tuple[float, float] | None = None
    serving: ServingResult | None = None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _QuietFileHandler(logging.FileHandler):
    """``worker.log`` on a disk that may fill up: a failed log write must not print a traceback.

    The stream handler still carries every message to the host, so nothing is lost from the console.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        pass


@contextlib.contextmanager
def _logging_to(run_dir: Path) -> Iterator[None]:
    """Log to ``worker.log`` and stderr, redacted, for the length of one run; then remove the handlers
    again, so a test or a caller that runs several cells in one process does not log each line twice."""
    fmt = RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    previous_level = root.level
    root.setLevel(logging.INFO)
    handlers = [_QuietFileHandler(run_dir / rundir.WORKER_LOG, encoding="utf-8"), logging.StreamHandler()]
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    for noisy in ("httpx", "urllib3", "filelock", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(previous_level)


def _raise_interrupt(signum, frame) -> None:
    """Stop the run, once. Ctrl-C reaches the worker and the host together, and the host then sends
    SIGTERM too: a second signal must not interrupt the first one's unwinding or the writing of the result,
    so from the first on, both are ignored (the host escalates to SIGKILL if the worker hangs)."""
    _STOP_SIGNALS_SEEN.append(signum)
    _set_stop_handlers(_already_stopping)
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _already_stopping(signum, frame) -> None:
    """Ignore a stop signal. A Python function rather than SIG_IGN: a signal that arrived just before the
    switch is still delivered to the handler, and Python reports SIG_IGN there with a traceback."""
    _STOP_SIGNALS_SEEN.append(signum)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_STOP_SIGNALS_SEEN: list[int] = []


def _set_stop_handlers(handler) -> dict:
    """Point SIGINT and SIGTERM at ``handler``; returns the previous handlers."""
    return {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}


def _is_out_of_memory(exc: BaseException, backend: Backend | None) -> bool:
    if backend is not None:
        return backend.is_out_of_memory(exc)
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"


def _is_cuda_error(exc: BaseException) -> bool:
    return "CUDA error" in str(exc) or type(exc).__name__ in ("CudaError", "AcceleratorError")


def classify(exc: BaseException, backend: Backend | None, config: RunConfig | None = None) -> str:
    """The error class a result records: what a person filters failures by in a report.

    Interruptions (a stop signal, or the host gone), too many long prompts and out-of-memory keep their own
    class even under ``--force``, because their cause is known; any other failure of a forced run is
    recorded as ``Incompatible``, the rules having predicted it.
    """
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, events.HostGone):
        return "HostGone"
    if isinstance(exc, TooManySkipped):
        return "TooManyPromptsSkipped"
    if _is_out_of_memory(exc, backend):
        return "OutOfMemoryError"
    if config is not None and config.forced and config.incompatibility:
        return "Incompatible"
    if _is_cuda_error(exc):
        return "CudaError"
    return type(exc).__name__


def describe(
    exc: BaseException, backend: Backend | None, config: RunConfig, batch_size: int | None = None
) -> ErrorInfo:
    """Error class and a one-line message that says what happened and what to do about it.

    ``batch_size`` is the batch size generation had reached, None if it never started (an out-of-memory
    error then means the model itself does not fit)."""
    error_class = classify(exc, backend, config)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if error_class == INTERRUPTED:
        how = str(exc) or "Ctrl-C"
        message = f"stopped by {how}; finished documents are kept and --resume on this run folder continues it"
    elif error_class == "HostGone":
        message = (
            "the host process that started this run went away (its end of the output pipe closed); "
            "finished documents are kept and --resume on this run folder continues it"
        )
    elif error_class == "OutOfMemoryError" and batch_size is None:
        message = f"{text}: the model does not fit this device's memory; try a quantized scenario or a larger GPU"
    elif error_class == "OutOfMemoryError" and config.batch_size != "auto":
        message = f"{text}: use a smaller --batch-size, or --batch-size auto to halve it on out-of-memory"
    elif error_class == "OutOfMemoryError":
        message = f"{text}: out of memory even at batch size {batch_size}; the prompts do not fit this device"
    elif error_class == "Incompatible":
        original = "CudaError" if _is_cuda_error(exc) else type(exc).__name__
        message = f"{original}: {text} (launched with --force despite: {config.incompatibility})"
    elif isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        message = (
            f"No space left on device{where}: free space on that disk (or pass --results on another one), "
            "then --resume this run folder; finished documents are kept"
        )
    else:
        message = text
    return ErrorInfo(error_class=error_class, message=redact(message))


def run(run_dir: Path) -> int:
    """Run the cell configured in ``run_dir/config.json``; the exit code mirrors the status.

    Exit codes: 0 completed, 3 partial (an interrupted run too, even before its first document), 1
    failed, 2 when the folder cannot be run at all (no valid config, or another worker holds it); in
    that last case nothing in the folder is touched.
    """
    _STOP_SIGNALS_SEEN.clear()
    previous = _set_stop_handlers(_raise_interrupt)
    try:
        with contextlib.ExitStack() as stack:
            try:
                config = rundir.read_config(run_dir, worker=True)
                stack.enter_context(rundir.locked(run_dir))
            except UserError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            stack.enter_context(_logging_to(run_dir))
            if not rundir.reserve_space(run_dir):
                log.warning("could not set disk space aside in %s: is the disk full?", run_dir)
            stack.callback(rundir.release_space, run_dir)
            return _run(config, run_dir)
    finally:
        # After a stop signal the process is on its way out and another signal may be in flight: keep
        # ignoring them, since Python prints a traceback for one that arrives as a default handler returns.
        if not _STOP_SIGNALS_SEEN:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _run(config: RunConfig, run_dir: Path) -> int:
    state = RunState(started_at=now())
    if injected := faults.active():
        state.notes.append("fault injection: " + ", ".join(f"{k}={v}" for k, v in injected.items()))
    backend: Backend | None = None
    error: ErrorInfo | None = None
    try:
        if config.serving is not None:
            from runner.worker.serving import run as serving

            serving.execute(config, run_dir, state)
        else:
            backend = _execute(config, run_dir, state)
        # From here on the result must be written whatever arrives: a second Ctrl-C, the host's SIGTERM.
        _set_stop_handlers(_already_stopping)
    except BaseException as exc:  # every failure becomes a result, including Ctrl-C
        _set_stop_handlers(_already_stopping)
        backend = backend or getattr(exc, "backend", None)
        if isinstance(exc, BrokenPipeError) and events.host_gone():  # a library's write found the host gone
            exc = events.HostGone(str(exc))
        error = describe(exc, backend, config, state.batch_size)
        rundir.write_text_best_effort(run_dir / rundir.ERROR_LOG, redact(traceback.format_exc()))
        log.error("%s: %s", error.error_class, error.message)
    result = _result(config, run_dir, state, error)
    try:
        rundir.write_result(run_dir, result)
    except OSError as exc:
        log.error("could not write %s: %s", run_dir / rundir.RESULT, exc)
        return 1
    faults.after_result()
    with contextlib.suppress(events.HostGone):  # nobody to tell; result.json says it all
        events.emit("result", status=result.status, result=result.model_dump(mode="json"))
    return {"completed": 0, "partial": 3}.get(result.status, 1)


def _execute(config: RunConfig, run_dir: Path, state: RunState) -> Backend:
    # vLLM's engine preallocates its KV cache and manages its own memory pool; a CPU has no CUDA allocator.
    if config.backend != "hf" or config.device != "cuda":
        return _execute_run(config, run_dir, state)
    with allocator.default_applied(os.environ) as note:  # before anything initializes CUDA
        state.notes.append(note)
        return _execute_run(config, run_dir, state)


def _execute_run(config: RunConfig, run_dir: Path, state: RunState) -> Backend:
    state.dataset = dataset = load_dataset(
        config.data,
        text_field=config.text_field,
        summary_field=config.summary_field,
        id_field=config.id_field,
        limit=config.limit,
    )
    device = resolve_device(config.device)
    gpu_index = nvml_index(device)  # read by the device memory sampler and the energy counter alike
    memory = MemoryTracker(device, DeviceMemorySampler(gpu_index))
    memory.limit(config.gpu_memory_limit_bytes)
    state.device = device_info(device, config.gpu_memory_limit_bytes)
    # Before the environment is read: a backend may set its engine's variables (vLLM on a CPU, in-process).
    backend = create_backend(config, device, [d.text for d in dataset.documents])
    state.env = environment(state.device, config.launch)
    log.info("dataset %s: %d documents, sha256 %s", dataset.path, len(dataset), dataset.sha256[:12])

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
        shown = ", ".join(d.id for d in too_long[:10]) + (", ..." if len(too_long) > 10 else "")
        state.notes.append(f"skipped {len(too_long)} documents over {limit} prompt tokens: {shown}")
    if len(too_long) > config.max_skipped_fraction * len(dataset):
        raise TooManySkipped(
            f"{len(too_long)} of {len(dataset)} prompts exceed {limit} tokens "
            f"(allowed: {config.max_skipped_fraction:.0%}, --max-skipped-fraction); raise --max-input-tokens, "
            "--max-skipped-fraction, or use shorter documents"
        )

    if cut := rundir.repair_docs(run_dir):
        log.warning("cut a torn last line (%d bytes) off %s: that document runs again", cut, rundir.DOCS)
    done = rundir.read_docs(run_dir)
    done_ids = {r.id for r in done}
    if done:
        log.info("resuming: %d documents already done", len(done))
    if strangers := sorted(done_ids - {d.id for d in dataset.documents}):
        raise DatasetError(
            f"{rundir.DOCS} holds {len(strangers)} documents the dataset does not (e.g. {strangers[0]!r}): "
            "the dataset or --limit changed since this run started; start a new run instead of resuming"
        )
    # Longest first: an out-of-memory error shows up in the first batch, not after an hour.
    pending = sorted(
        (d for d in dataset.documents if d.id not in done_ids and lengths[d.id] <= limit),
        key=lambda d: lengths[d.id],
        reverse=True,
    )
    total = len(dataset) - len(too_long)
    events.emit("start", total=total, done=len(done))

    energy = EnergyTracker(gpu_index)
    memory.reset(backend.memory_in_process)
    next_batch = max((r.batch for r in done), default=-1) + 1
    writer = rundir.DocWriter(run_dir)
    try:
        _generate_all(config, backend, pending, prompts, lengths, state, writer, energy, next_batch, len(done), total)
    finally:
        writer.close()
        state.peak = memory.peak()
        state.device_peak = memory.device_peak
        state.compile_seconds = backend.compile_seconds()
        if energy.available and state.generated_now:
            state.energy_joules = energy.joules
    return backend


def _auto_bound(config: RunConfig, pending: list[Document], lengths: dict[str, int]) -> int | None:
    """``--batch-size auto``'s largest batch: ``--max-batch-size`` or the plan at the default prompt length,
    lowered to the plan's rung that covers this run's longest prompt (the first batch holds it)."""
    bound = config.max_batch_size
    if not config.auto_batch_plan or not pending:
        return bound
    longest = lengths[pending[0].id]
    rungs = config.auto_batch_plan
    tokens, planned = next(((n, b) for n, b in rungs if n >= longest), rungs[-1])
    if bound is None or planned < bound:
        log.info(
            "--batch-size auto: the longest prompt has %d tokens; the memory plan's batch for prompts of up to %d "
            "tokens is %d%s",
            longest,
            tokens,
            planned,
            f" (not {bound})" if bound else "",
        )
        return planned
    return bound


def _initial_batch_size(config: RunConfig, pending: list[Document], bound: int | None) -> int:
    if config.batch_size == "dynamic":
        return max(1, len(pending))
    if config.batch_size == "auto":
        return max(1, min(bound or len(pending), len(pending)))
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
    bound = _auto_bound(config, pending, lengths) if config.batch_size == "auto" else None
    state.planned_batch = bound
    size = _initial_batch_size(config, pending, bound)
    state.batch_size = size
    warm = not pending or config.warmup == "none"
    generated_seconds = 0.0
    while pending:
        batch = pending[:size]
        texts = [prompts[d.id] for d in batch]
        call_started = time.perf_counter()  # of the call that fails, if one does: warm-up or timed
        try:
            faults.before_generate(len(batch), batch_no)
            if not warm:
                shortest = (prompts[pending[-1].id], lengths[pending[-1].id])
                warm_batches = (
                    warmup_batches(texts, [lengths[d.id] for d in batch], shortest) if backend.pads_batches else [texts]
                )
                if len(warm_batches) > 1:
                    log.info(
                        "warm-up: the batch's %d-token prompts, then with the run's shortest (%d tokens) in for the "
                        "last, so the first padded batch's first-use costs are paid untimed too",
                        lengths[batch[0].id],
                        shortest[1],
                    )
                for warm_texts in warm_batches:
                    call_started = time.perf_counter()
                    _warm_up(config, backend, warm_texts, state)
                warm = True
            energy.start()
            backend.last_model_seconds = backend.last_padded_tokens = None
            t0 = call_started = time.perf_counter()
            generations = backend.generate(texts, config.max_new_tokens)
            backend.synchronize()
            seconds = time.perf_counter() - t0
            model_seconds, padded = backend.last_model_seconds, backend.last_padded_tokens
            energy.stop()
        except Exception as exc:
            failed_seconds = time.perf_counter() - call_started
            energy.stop()
            if not backend.is_out_of_memory(exc) or config.batch_size != "auto" or size == 1:
                raise
            backend.free_memory()
            state.oom_events.append(
                OOMEvent(
                    batch_size=size,
                    documents=[d.id for d in batch],
                    message=redact(str(exc)),
                    seconds=round(failed_seconds, 3),
                    in_warmup=not warm,  # set only once every warm-up call returned
                )
            )
            log.warning("out of memory at batch size %d; retrying the same documents at %d", size, size // 2)
            size = max(1, size // 2)
            state.batch_size = size
            warm = config.warmup == "none"  # a new batch shape has its own first-use costs
            events.emit("oom", batch_size=len(batch), next_batch_size=size)
            continue
        records = []
        for doc, gen in zip(batch, generations, strict=True):
            if gen.skipped:
                state.skipped_by_backend += 1
                log.warning("document %s: the backend refused its %d-token prompt", doc.id, lengths[doc.id])
                continue
            scores = quality.rouge(gen.text, doc.references) if doc.references else None
            records.append(
                DocRecord(
                    id=doc.id,
                    input_tokens=lengths[doc.id],
                    output_tokens=gen.output_tokens,
                    latency_s=seconds,
                    model_s=model_seconds,
                    padded_tokens=padded,
                    ttft_s=gen.ttft_s,
                    tpot_s=gen.tpot_s,
                    batch=batch_no,
                    batch_size=len(batch),
                    summary=gen.text,
                    doc_sha256=doc.sha256,
                    **(scores.model_dump() if scores else {}),
                )
            )
        writer.write_batch(records)
        batch_no += 1
        pending = pending[len(batch) :]
        state.generated_now += len(records)
        _check_skipped(config, state)
        done += len(batch)
        generated_seconds += seconds
        events.emit(
            "progress",
            done=done,
            total=total,
            batch_size=len(batch),
            docs_per_second=state.generated_now / generated_seconds,
        )


def _warm_up(config: RunConfig, backend: Backend, texts: list[str], state: RunState) -> None:
    """The untimed call before the first timed one at a batch size, added to ``warmup_seconds``.

    ``full`` runs the batch at the run's output length: whatever a process pays once per batch shape
    (allocator growth, kernel selection, compilation) is paid here, so the timed calls are the steady
    state. On an H200 the first full-size call in a process took ~2.5x a later one; a 4-token warm-up did
    not remove that. It costs one batch of wall time: 1/N more for a run of N batches (with ``--batch-size
    dynamic``, the whole run once more)."""
    new_tokens = config.max_new_tokens if config.warmup == "full" else min(WARMUP_NEW_TOKENS, config.max_new_tokens)
    t0 = time.perf_counter()
    backend.warmup(texts, new_tokens)
    backend.synchronize()
    state.warmup_seconds = (state.warmup_seconds or 0.0) + time.perf_counter() - t0


def _final_batch(size: int | None, metrics: Metrics) -> int | None:
    """The largest batch that ran: the size the worker settled on, unless every call held fewer (a batch
    of 16 over 8 documents ran at 8, and reporting it at 16 would place its docs/s where it never was)."""
    ran = max((b.size for b in metrics.batches), default=None)
    return size if ran is None or size is None else min(size, ran)


def _check_skipped(config: RunConfig, state: RunState) -> None:
    """Fail the run once the prompts the backend refused, with those over the limit, pass the allowed share."""
    if not state.skipped_by_backend or state.dataset is None:
        return
    skipped = state.skipped_too_long + state.skipped_by_backend
    if skipped > config.max_skipped_fraction * len(state.dataset):
        raise TooManySkipped(
            f"{skipped} of {len(state.dataset)} prompts skipped, {state.skipped_by_backend} of them refused by the "
            f"backend (allowed: {config.max_skipped_fraction:.0%}, --max-skipped-fraction); raise --max-input-tokens, "
            "--max-skipped-fraction, or use shorter documents"
        )


def _result(config: RunConfig, run_dir: Path, state: RunState, error: ErrorInfo | None) -> RunResult:
    notes = [redact(note) for note in state.notes]  # notes quote environment variables and file names
    try:
        records = rundir.read_docs(run_dir)
    except (UserError, OSError) as exc:  # the failure may be docs.jsonl itself; the result still gets written
        records = []
        notes.append(f"could not read {rundir.DOCS}: {redact(str(exc))}")
    metrics = aggregate(records, skipped_too_long=state.skipped_too_long, skipped_by_backend=state.skipped_by_backend)
    if config.serving is not None:
        from runner.worker.serving import run as serving

        serving.fill_metrics(metrics, run_dir, state.dataset)
    metrics.model_load_seconds = state.load_seconds
    metrics.warmup_seconds = state.warmup_seconds
    if state.compile_seconds is not None:
        metrics.compile_seconds, metrics.compile_seconds_timed = (round(s, 3) for s in state.compile_seconds)
    metrics.peak_memory_bytes, metrics.peak_memory_allocated_bytes, metrics.peak_memory_source = state.peak
    metrics.peak_device_memory_bytes = state.device_peak
    if state.energy_joules is not None:
        metrics.energy_joules = state.energy_joules
        metrics.energy_per_doc_joules = state.energy_joules / state.generated_now
    if config.price_per_hour_usd is not None and metrics.documents and metrics.generate_seconds:
        metrics.cost_per_1k_docs_usd = (
            config.price_per_hour_usd * metrics.generate_seconds / 3600 / metrics.documents * 1000
        )
    if records:
        failed = sum(e.seconds or 0.0 for e in state.oom_events)
        before = (state.load_seconds or 0.0) + (state.warmup_seconds or 0.0) + failed
        metrics.end_to_end_seconds = before + metrics.generate_seconds

    if state.dataset is not None and records and config.serving is None:
        by_id = {d.id: d for d in state.dataset.documents}
        docs = [by_id[r.id] for r in records if r.id in by_id and by_id[r.id].references]
        metrics.lead3_rouge = quality.mean([quality.rouge(quality.lead3(d.text), d.references) for d in docs])
    metrics.wall_seconds = time.perf_counter() - state.started
    caveat = quality_caveat(config)
    if caveat is not None:
        notes.append(caveat)
    if config.forced and config.incompatibility:
        notes.append(f"launched with --force despite: {config.incompatibility}")

    device = state.device or DeviceInfo(kind="cpu" if config.gpu == "cpu" else "cuda", name=config.gpu)
    env = state.env or environment(device, config.launch)
    ds = state.dataset
    return RunResult(
        run_id=config.run_id,
        status=run_status(error, len(records) or metrics.documents),
        started_at=state.started_at,
        finished_at=now(),
        config=config,
        environment=env,
        dataset=DatasetInfo(
            path=ds.path,
            sha256=ds.sha256,
            documents=len(ds),
            text_field=ds.text_field,
            summary_field=ds.summary_field,
            id_field=ds.id_field,
        )
        if ds
        else None,
        backend=state.backend,
        batching=Batching(
            requested=config.batch_size,
            final=_final_batch(state.batch_size, metrics),
            planned_max=state.planned_batch or config.max_batch_size,
            oom_events=state.oom_events,
        ),
        metrics=metrics,
        quality_meaningful=caveat is None,
        notes=notes,
        error=error,
        serving=state.serving,
    )
