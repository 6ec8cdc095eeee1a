"""From launch options to a finished run folder: resolve names, check compatibility, run, finish.

The CLI's ``launch`` and ``matrix`` both come through here, so every cell is configured the same way.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from runner import catalog, compat, engine_failures, hub, rundir
from runner.aggregate import INTERRUPTED, aggregate, run_status
from runner.errors import UserError
from runner.executors import Executor, ExitInfo, create_executor
from runner.scenarios import get_scenario
from runner.schema import (
    Batching,
    BatchSize,
    DeviceInfo,
    DocRecord,
    Environment,
    ErrorInfo,
    RunConfig,
    RunResult,
)
from runner.weights import quality_caveat


@dataclass
class LaunchRequest:
    """What the user asked for, before names are resolved."""

    model: str
    data: str
    base_model: str | None = None
    image: str = "cpu"
    gpu: str = "cpu"
    scenario: str | None = None
    batch_size: BatchSize = 1
    results: Path = Path("results")
    executor: str = "process"
    run_id: str | None = None
    max_new_tokens: int = 300
    max_input_tokens: int = 4096
    limit: int | None = None
    synthetic_weights: bool = False
    text_field: str | None = None
    summary_field: str | None = None
    id_field: str | None = None
    prompt_template: str | None = None
    force: bool = False
    gpu_memory_limit: int | None = None
    max_batch_size: int | None = None
    warmup: str = "full"
    price_per_hour: float | None = None
    timeout: float | None = None
    executor_options: dict = field(default_factory=dict)


CPU_AUTO_BATCH = 8
"""Largest batch ``--batch-size auto`` starts at on a CPU, where there is no memory plan to size it.
On a CPU a bigger batch buys little throughput (the cores are busy at batch 1 already), while one
batch holding the whole dataset leaves a single latency sample: its percentiles collapse and
``runner compare`` has nothing to test. Auto also never gives a CPU run fewer than two batches."""

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A run folder's name: one path component, nothing that leaves the results folder (``..``, ``/``)."""


def check_launch_options(req: LaunchRequest) -> None:
    """Refuse ``runner launch`` options that cannot mean what they say for this one cell.

    Not part of ``build_config``: a matrix applies one set of options to cells of several batch sizes
    and GPUs, where a --max-batch-size or a --gpu-memory-limit fits some cells and not others.
    """
    if req.max_batch_size is not None and req.batch_size != "auto":
        how = "leaves batching to vLLM" if req.batch_size == "dynamic" else "is fixed"
        raise UserError(
            f"--max-batch-size bounds only --batch-size auto, and --batch-size {req.batch_size} {how}: "
            f"drop --max-batch-size, or pass --batch-size auto --max-batch-size {req.max_batch_size}"
        )
    if req.gpu_memory_limit is not None and (problem := gpu_memory_limit_problem(req.gpu_memory_limit, req.gpu)):
        raise UserError(problem)
    if _downloads_here(req):
        from runner.model_names import check_model, token_checked_elsewhere

        with token_checked_elsewhere():  # a mistyped path is the first thing to say
            check_model(req.model, req.synthetic_weights)
        if problem := hub.download_problem(req.model):  # then a hub out of reach, which no token fixes
            raise UserError(problem)
        check_model(req.model, req.synthetic_weights)  # then a gated model's missing token
    _check_host_memory(req)


def _downloads_here(req: LaunchRequest) -> bool:
    """Whether the worker would download ``--model`` from the hub over this machine's network into its
    cache: the process executor, or a Docker engine on this machine (a remote one downloads on its own)."""
    from runner.executors.docker.engine import is_remote
    from runner.model_names import is_hub_id

    engine = req.executor_options.get("docker_host") or os.environ.get("DOCKER_HOST")
    local = req.executor == "process" or not is_remote(engine)
    return local and is_hub_id(req.model, req.synthetic_weights)


def gpu_memory_limit_problem(limit: int, gpu_key: str) -> str | None:
    """Why ``--gpu-memory-limit`` would cap nothing on this GPU type (a CPU, or more than the card
    has), as a one-line message; None when the limit makes sense."""
    gpu = catalog.get_gpu(gpu_key)
    typed = getattr(limit, "text", None)  # the words given (runner.cli.types.ByteSize), echoed as they were
    shown = f"--gpu-memory-limit {typed or _gib(limit)}"
    if typed and not typed.lower().endswith("gib"):
        shown += f" ({_gib(limit)})"
    if gpu.is_cpu:
        return f"{shown}: --gpu cpu has no GPU memory to cap; drop the option, or pass --gpu TYPE for a GPU run"
    if limit > gpu.memory_bytes:
        return (
            f"{shown} is more than a {gpu.key} has ({_gib(gpu.memory_bytes)}), so it would cap nothing: "
            f"drop it, or give at most {_gib(gpu.memory_bytes)}"
        )
    return None


def _gib(size: int) -> str:
    return f"{size / 2**30:.4g} GiB"


def build_config(req: LaunchRequest) -> tuple[RunConfig, list[str]]:
    """Resolve names against the catalogs and apply the GPU rules; returns the config and its notes."""
    image = catalog.get_image(req.image)
    gpu = catalog.get_gpu(req.gpu)
    scenario = get_scenario(req.scenario or image.default_scenario)
    reasons = compat.check(image, scenario, gpu)
    checkpoint = compat.checkpoint_problem(scenario, req.model, req.synthetic_weights)
    if checkpoint and req.force:
        reasons.append(checkpoint)
    if reasons and not req.force:
        raise UserError(
            f"{image.key}/{scenario.name} cannot run on {gpu.key}: {'; '.join(reasons)} (--force runs it anyway)"
        )
    if req.batch_size == "dynamic" and scenario.backend != "vllm":
        raise UserError(
            "--batch-size dynamic hands every prompt to vLLM at once; use a number or auto with hf scenarios"
        )
    if req.run_id is not None and not RUN_ID.fullmatch(req.run_id):
        raise UserError(
            f"--run-id {req.run_id!r}: use letters, digits, '.', '_' and '-' (a folder name inside --results, "
            "no path separators or '..')"
        )
    _check_model(req)
    if checkpoint and not req.force:
        raise UserError(f"{checkpoint} (--force runs it anyway)")
    _check_prompt_template(req.prompt_template)
    documents = _check_data(req)
    dtype, notes = compat.adjustments(scenario, gpu)
    notes += compat.awq_note(scenario, gpu)
    run_id = req.run_id or rundir.new_run_id(image.key, gpu.key, scenario.name, req.batch_size)
    price, price_source = catalog.price_for(gpu, req.price_per_hour)
    max_batch = req.max_batch_size
    if req.batch_size == "auto" and max_batch is None and gpu.is_cpu:
        max_batch = min(CPU_AUTO_BATCH, max(1, math.ceil(documents / 2)))
        notes.append(
            f"--batch-size auto on a CPU has no memory plan: batches of at most {max_batch} documents "
            f"(the CPU default is {CPU_AUTO_BATCH}, and at least two batches; --max-batch-size sets another bound)"
        )
    elif req.batch_size == "auto" and max_batch is None:
        from runner.allocator import expandable
        from runner.memory_plan import largest_batch

        # The process executor's worker inherits this environment; a container starts with the worker's default.
        segments = expandable(os.environ) if req.executor == "process" else True
        max_batch = largest_batch(req.model, scenario, gpu, req.max_new_tokens, req.gpu_memory_limit, segments)
    config = RunConfig(
        run_id=run_id,
        image=image.key,
        gpu=gpu.key,
        scenario=scenario.name,
        backend=scenario.backend,  # type: ignore[arg-type]
        dtype=dtype,
        attention=scenario.attention,
        quantization=scenario.quantization,
        model=_model_path(req.model),
        base_model=req.base_model,
        synthetic_weights=req.synthetic_weights,
        data=str(Path(req.data).resolve()),
        text_field=req.text_field,
        summary_field=req.summary_field,
        id_field=req.id_field,
        limit=req.limit,
        batch_size=req.batch_size,
        max_batch_size=max_batch,
        max_new_tokens=req.max_new_tokens,
        max_input_tokens=req.max_input_tokens,
        force_output_length=req.synthetic_weights,
        prompt_template=req.prompt_template,
        device="cpu" if gpu.is_cpu else "cuda",
        gpu_memory_limit_bytes=req.gpu_memory_limit,
        forced=bool(reasons),
        incompatibility="; ".join(reasons) or None,
        price_per_hour_usd=price,
        price_source=price_source,
        warmup=req.warmup,  # type: ignore[arg-type]
    )
    return config, notes


def _model_path(model: str) -> str:
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def _check_model(req: LaunchRequest) -> None:
    from runner.model_names import check_model

    check_model(req.model, req.synthetic_weights)


def _check_host_memory(req: LaunchRequest) -> None:
    """A CPU cell in this machine's Python whose weights cannot fit its memory would load for minutes,
    then swap or be killed; say so first. Another machine (a Docker engine, a cluster) has its own memory,
    and a model whose shape is unknown here (a hub id) is left to the worker. ``runner launch`` only: a
    matrix plans cells for machines it has not seen."""
    from runner.architectures import model_shape

    gpu = catalog.get_gpu(req.gpu)
    if not gpu.is_cpu or req.force or req.executor != "process" or model_shape(req.model) is None:
        return
    scenario = get_scenario(req.scenario or catalog.get_image(req.image).default_scenario)
    from runner.console import fmt_bytes
    from runner.memory_plan import footprint_for, host_memory_available, host_shortfall

    fp = footprint_for(req.model, scenario, gpu, max_new_tokens=req.max_new_tokens)
    available = host_memory_available()
    if missing := host_shortfall(fp, available):
        raise UserError(
            f"{req.model} in {fp.dtype} needs about {fmt_bytes(available + missing)} on the CPU (weights and "
            f"one sequence's KV cache), and this machine has {fmt_bytes(available)} available: pick a smaller "
            "model or a 16-bit scenario (--scenario default), run it on a GPU (--image hf --gpu TYPE), or pass "
            "--force to try anyway"
        )


def _check_prompt_template(template: str | None) -> None:
    """A template the worker cannot fill would fail only after the model loaded; refuse it here."""
    if template is None:
        return
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise UserError(
            f"--prompt-template {template!r} is not a valid template ({exc}): write literal braces as {{{{ and }}}}"
        ) from None
    if unknown := sorted(names - {"document", "instruction"}):
        raise UserError(f"--prompt-template uses {{{unknown[0]}}}: only {{document}} and {{instruction}} are filled in")
    if "document" not in names:
        raise UserError("--prompt-template has no {document}: it must say where each document goes")


def _check_data(req: LaunchRequest) -> int:
    """Read the dataset once on the host, so a bad file is one line before anything starts rather than
    a failed run after the model loaded; the worker reads it again, the same way. Returns how many
    documents the run has."""
    from runner.datasets import load_dataset

    return len(
        load_dataset(
            req.data, text_field=req.text_field, summary_field=req.summary_field, id_field=req.id_field, limit=req.limit
        )
    )


def prepare_run_dir(results: Path, run_id: str) -> Path:
    run_dir = results / run_id
    with rundir.writable_results(results):
        run_dir.mkdir(parents=True, exist_ok=True)
        rundir.probe_writable(run_dir)
    return run_dir


@dataclass
class PreparedLaunch:
    """A launch that passed every check: its folder exists and its executor accepted it."""

    run_dir: Path
    config: RunConfig
    executor: Executor
    notes: list[str]
    timeout: float | None


def prepare(req: LaunchRequest, resume: Path | None = None) -> PreparedLaunch:
    """Validate everything a launch needs before anything runs; raises UserError on bad input."""
    if resume is not None:
        run_dir = resume
        config = rundir.read_config(run_dir)
        kept = _check_resumable(run_dir)
        if rundir.completed(run_dir):
            raise UserError(
                f"{run_dir} already completed: there is nothing to resume, and its result.json stands; "
                "for a new measurement of the cell use a new --run-id"
            )
        notes: list[str] = []
        executor_name = config.launch.executor
        if req.executor_options and executor_name != "docker":
            raise UserError(
                f"--docker-host, --gpu-uuid and --docker-network apply to Docker runs; {run_dir} ran with the "
                f"{executor_name} executor"
            )
    else:
        config, notes = build_config(req)
        run_dir = req.results / config.run_id  # made once the executor accepts the run, below
        kept = []
        if (run_dir / rundir.CONFIG).exists():  # re-running into the same folder resumes it
            kept = _check_resumable(run_dir)
            if rundir.completed(run_dir):
                raise UserError(
                    f"{run_dir} already completed; use a new --run-id for a new run (its result.json stands)"
                )
            config = _same_cell(rundir.read_config(run_dir), config, run_dir)
        executor_name = req.executor
    if done := len({r.id for r in kept}):
        notes.append(
            f"resumed: {done} documents were already done and are kept; docs/s covers every attempt's "
            "batches, model load and warmup this attempt's"
        )
    options = dict(req.executor_options)
    if executor_name == "docker":
        options.setdefault("force", req.force)  # --force also goes past the engine host's driver check
    executor = create_executor(executor_name, **options)
    config = executor.prepare(config, catalog.get_image(config.image), catalog.get_gpu(config.gpu))
    if resume is None:  # only now: a launch refused above leaves no folder behind, not even --results
        prepare_run_dir(req.results, run_dir.name)
    rundir.write_config(run_dir, config)
    return PreparedLaunch(run_dir, config, executor, notes, req.timeout)


def _same_cell(existing: RunConfig, new: RunConfig, run_dir: Path) -> RunConfig:
    """The folder's own config, if the new options describe the same cell; a resumed run must not mix
    documents generated under two settings (say, two --max-new-tokens) into one result. How it is
    launched, priced, or explained (the rules' wording) may change between attempts."""
    ignore = {"launch", "price_per_hour_usd", "price_source", "incompatibility"}
    old_fields, new_fields = existing.model_dump(exclude=ignore), new.model_dump(exclude=ignore)
    changed = [k for k in old_fields if old_fields[k] != new_fields.get(k)]
    if changed:
        shown = "; ".join(f"{k}: {old_fields[k]!r} → {new_fields.get(k)!r}" for k in changed[:3])
        raise UserError(
            f"{run_dir} already holds a run with other settings ({shown}): "
            f"pass another --run-id for a new run, or --resume {run_dir} to continue that one as it was"
        )
    return existing


def _check_resumable(run_dir: Path) -> list[DocRecord]:
    """Refuse a folder a live worker holds, or whose records are damaged beyond the last line; returns the
    records it keeps (a torn last line is fine: the worker cuts it; a damaged middle is not)."""
    if rundir.in_use(run_dir):
        raise rundir.RunFolderBusy(run_dir)
    return rundir.read_docs(run_dir)


def execute(launch: PreparedLaunch, on_line: Callable[[str], None]) -> RunResult:
    """Run a prepared launch; a failed run is a result too."""
    run_dir, config = launch.run_dir, launch.config
    for note in launch.notes:
        on_line(f"note: {note}")
    stale = run_dir / rundir.RESULT
    if stale.exists():  # a previous attempt's result; docs.jsonl carries what it finished
        shutil.move(stale, run_dir / f"result.previous-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json")
    exit_info = launch.executor.execute(config, run_dir, on_line, launch.timeout)
    # The worker has ended: a disk reserve still here is no one's (a copy of the folder a remote engine
    # worked on never had it removed, or an earlier attempt was killed), and a finished folder keeps none.
    rundir.release_space(run_dir)
    if (run_dir / rundir.RESULT).exists():
        result = rundir.read_result(run_dir)
        if exit_info.timed_out and result.error:
            # The host stopped the worker the way Ctrl-C does; the cause was the clock. A stop that lands
            # inside a library's import or loading can surface as that library's own error (seen once as a
            # RuntimeError under load in CI), so any error after the deadline is the timeout's; the
            # worker's own words are kept in a note.
            worker_said = result.error
            result.error = _timeout_error(launch.timeout)
            result.status = run_status(result.error, result.metrics.documents)  # the clock's, not a person's stop
            launch.notes.append("result written by the worker when --timeout stopped it")
            if worker_said.error_class != INTERRUPTED:
                launch.notes.append(f"the worker recorded {worker_said.error_class}: {worker_said.message}")
        elif result.error and (explained := _engine_root_cause(run_dir, result.error)):
            launch.notes.append(
                f"error restated from output.log by the host; the worker recorded: {result.error.message}"
            )
            result.error = explained
    else:
        result = finish_dead_run(run_dir, config, exit_info, launch.timeout)
    if launch.notes:
        result.notes[:0] = launch.notes
        _write_result(run_dir, result)
    return result


def launch(req: LaunchRequest, on_line: Callable[[str], None], resume: Path | None = None) -> tuple[Path, RunResult]:
    """Prepare and execute one cell; returns its folder and result."""
    prepared = prepare(req, resume)
    return prepared.run_dir, execute(prepared, on_line)


def _engine_root_cause(run_dir: Path, error: ErrorInfo) -> ErrorInfo | None:
    """The engine process's own reason for an engine death the worker could only report (see
    ``runner.engine_failures``); None for any other error."""
    if not engine_failures.engine_died(error.message):
        return None
    try:
        lines = (run_dir / rundir.OUTPUT_LOG).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return engine_failures.explain(error, lines)


def _timeout_error(timeout: float | None) -> ErrorInfo:
    return ErrorInfo(
        error_class="Timeout",
        message=f"stopped after --timeout {timeout:g} s; finished documents are kept and --resume continues the run"
        if timeout
        else "the worker ran past its time limit and was stopped",
    )


def dead_worker_error(exit_info: ExitInfo, timeout: float | None = None) -> ErrorInfo:
    """Why a worker ended without writing a result, from what its exit looked like from outside."""
    code = exit_info.exit_code
    if exit_info.start_error:
        return ErrorInfo(
            error_class="ContainerStartFailed", message=f"the container could not start: {exit_info.start_error}"
        )
    if exit_info.oom_killed:
        return ErrorInfo(
            error_class="ContainerOOMKilled",
            message="the container was killed for using too much host memory (exit 137, OOMKilled): "
            "give it more memory or use a smaller --batch-size",
        )
    if exit_info.timed_out:
        return _timeout_error(timeout)
    if exit_info.interrupted:
        return ErrorInfo(
            error_class=INTERRUPTED, message="interrupted before the worker could write a result; --resume continues"
        )
    if code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return ErrorInfo(
            error_class="Killed",
            message=f"the worker was killed with SIGKILL (exit code {code}): by hand, or by the kernel's "
            "out-of-memory killer; finished documents are kept and --resume continues the run",
        )
    if code is not None and code < 0:
        return ErrorInfo(
            error_class="WorkerCrashed", message=f"the worker died from signal {_signal_name(-code)}; see output.log"
        )
    return ErrorInfo(
        error_class="WorkerCrashed", message=f"the worker exited with code {code} without a result; see output.log"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def finish_dead_run(run_dir: Path, config: RunConfig, exit_info: ExitInfo, timeout: float | None = None) -> RunResult:
    """Write the result of a worker that died before it could (SIGKILL, container OOM kill, timeout).

    ``docs.jsonl`` is the source of truth, so the metrics are the ones the worker would have written;
    only what the worker alone knew (its environment, load time, peak memory) is missing.
    """
    error = dead_worker_error(exit_info, timeout)
    rundir.release_space(run_dir)  # a dead worker's disk reserve, returned before anything is written
    rundir.repair_docs(run_dir)
    records = rundir.read_docs(run_dir)
    caveat = quality_caveat(config)
    try:
        started = datetime.fromtimestamp((run_dir / rundir.CONFIG).stat().st_mtime, timezone.utc)
    except OSError:
        started = datetime.now(timezone.utc)
    result = RunResult(
        run_id=config.run_id,
        status=run_status(error, len(records)),
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config=config,
        environment=Environment(
            python="unknown",
            platform="unknown",
            sumbench="unknown",
            device=DeviceInfo(
                kind="cpu" if config.device == "cpu" else "cuda", name=config.gpu, catalog_gpu=config.gpu
            ),
            launch=config.launch,
        ),
        batching=Batching(requested=config.batch_size, planned_max=config.max_batch_size),
        metrics=aggregate(records),
        quality_meaningful=caveat is None,
        notes=["result written by the host: the worker ended without one", *([caveat] if caveat else [])],
        error=error,
    )
    rundir.write_text_best_effort(
        run_dir / rundir.ERROR_LOG,
        f"{error.error_class}: {error.message}\n(exit code {exit_info.exit_code}; the worker left no traceback, "
        f"see {rundir.OUTPUT_LOG} for everything it printed)\n",
    )
    _write_result(run_dir, result)
    return result


def _write_result(run_dir: Path, result: RunResult) -> None:
    try:
        rundir.write_result(run_dir, result)
    except OSError as exc:
        raise UserError(
            f"cannot write {run_dir / rundir.RESULT} ({exc.strerror or exc}): "
            f"free space there, then --resume {run_dir}; {rundir.DOCS} keeps every finished document"
        ) from None
