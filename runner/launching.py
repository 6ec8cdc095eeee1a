"""From launch options to a finished run folder: resolve names, check compatibility, run, finish.

The CLI's ``launch`` and ``matrix`` both come through here, so every cell is configured the same way.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from runner import catalog, compat, rundir
from runner.aggregate import aggregate
from runner.errors import UserError
from runner.executors import Executor, ExitInfo, create_executor
from runner.scenarios import get_scenario
from runner.schema import (
    BatchSize,
    Batching,
    DeviceInfo,
    Environment,
    ErrorInfo,
    RunConfig,
    RunResult,
)


@dataclass
class LaunchRequest:
    """What the user asked for, before names are resolved."""

    model: str
    data: str
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
    price_per_hour: float | None = None
    timeout: float | None = None
    executor_options: dict = field(default_factory=dict)


def build_config(req: LaunchRequest) -> tuple[RunConfig, list[str]]:
    """Resolve names against the catalogs and apply the GPU rules; returns the config and its notes."""
    image = catalog.get_image(req.image)
    gpu = catalog.get_gpu(req.gpu)
    scenario = get_scenario(req.scenario or image.default_scenario)
    reasons = compat.check(image, scenario, gpu)
    if reasons and not req.force:
        raise UserError(f"{image.key}/{scenario.name} cannot run on {gpu.key}: {'; '.join(reasons)} (--force runs it anyway)")
    if req.batch_size == "dynamic" and scenario.backend != "vllm":
        raise UserError("--batch-size dynamic hands every prompt to vLLM at once; use a number or auto with hf scenarios")
    _check_model(req)
    dtype, notes = compat.adjustments(scenario, gpu)
    notes += compat.awq_note(scenario, gpu)
    run_id = req.run_id or rundir.new_run_id(image.key, gpu.key, scenario.name, req.batch_size)
    price = req.price_per_hour if req.price_per_hour is not None else (gpu.price_usd_per_hour or None)
    max_batch = req.max_batch_size
    if req.batch_size == "auto" and max_batch is None:
        from runner.memory_plan import largest_batch

        max_batch = largest_batch(req.model, scenario, gpu, req.max_new_tokens, req.gpu_memory_limit)
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
    )
    return config, notes


def _model_path(model: str) -> str:
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


def _check_model(req: LaunchRequest) -> None:
    from runner.model_names import check_model

    check_model(req.model, req.synthetic_weights)


def prepare_run_dir(results: Path, run_id: str) -> Path:
    run_dir = results / run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"results folder {results} is not writable ({exc.strerror}): pass --results DIR") from None
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
        notes: list[str] = []
        executor_name = config.launch.executor
    else:
        config, notes = build_config(req)
        run_dir = prepare_run_dir(req.results, config.run_id)
        if (run_dir / rundir.CONFIG).exists():
            config = rundir.read_config(run_dir)  # re-running into the same folder resumes it
        executor_name = req.executor
    executor = create_executor(executor_name, **req.executor_options)
    config = executor.prepare(config, catalog.get_image(config.image), catalog.get_gpu(config.gpu))
    rundir.write_config(run_dir, config)
    return PreparedLaunch(run_dir, config, executor, notes, req.timeout)


def execute(launch: PreparedLaunch, on_line: Callable[[str], None]) -> RunResult:
    """Run a prepared launch; a failed run is a result too."""
    run_dir, config = launch.run_dir, launch.config
    for note in launch.notes:
        on_line(f"note: {note}")
    stale = run_dir / rundir.RESULT
    if stale.exists():  # a previous attempt's result; docs.jsonl carries what it finished
        shutil.move(stale, run_dir / f"result.previous-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json")
    exit_info = launch.executor.execute(config, run_dir, on_line, launch.timeout)
    if (run_dir / rundir.RESULT).exists():
        result = rundir.read_result(run_dir)
    else:
        result = finish_dead_run(run_dir, config, exit_info)
    if launch.notes:
        result.notes[:0] = launch.notes
        rundir.write_result(run_dir, result)
    return result


def launch(req: LaunchRequest, on_line: Callable[[str], None], resume: Path | None = None) -> tuple[Path, RunResult]:
    """Prepare and execute one cell; returns its folder and result."""
    prepared = prepare(req, resume)
    return prepared.run_dir, execute(prepared, on_line)


def finish_dead_run(run_dir: Path, config: RunConfig, exit_info: ExitInfo) -> RunResult:
    """Write the result of a worker that died before it could (SIGKILL, container OOM kill, timeout)."""
    if exit_info.oom_killed:
        error = ErrorInfo(error_class="ContainerOOMKilled", message="the container was killed for using too much host memory (exit 137)")
    elif exit_info.timed_out:
        error = ErrorInfo(error_class="Timeout", message="the worker ran past --timeout and was stopped")
    elif exit_info.exit_code in (-9, 137):
        error = ErrorInfo(error_class="Killed", message=f"the worker was killed (exit code {exit_info.exit_code})")
    else:
        error = ErrorInfo(error_class="WorkerCrashed", message=f"the worker exited with code {exit_info.exit_code} without a result")
    rundir.repair_docs(run_dir)
    records = rundir.read_docs(run_dir)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result = RunResult(
        run_id=config.run_id,
        status="partial" if records else "failed",
        started_at=stamp,
        finished_at=stamp,
        config=config,
        environment=Environment(
            python="unknown", platform="unknown", sumbench="unknown",
            device=DeviceInfo(kind="cpu" if config.device == "cpu" else "cuda", name=config.gpu, catalog_gpu=config.gpu),
            launch=config.launch,
        ),
        batching=Batching(requested=config.batch_size, planned_max=config.max_batch_size),
        metrics=aggregate(records),
        quality_meaningful=not config.synthetic_weights,
        notes=["result written by the host: the worker ended without one"],
        error=error,
    )
    rundir.write_result(run_dir, result)
    return result

