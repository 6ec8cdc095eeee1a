"""From launch options to a finished run folder: resolve names, check compatibility, run, finish.

The CLI's ``launch`` and ``matrix`` both come through here, so every cell is configured the same way.
"""

from __future__ import annotations

import importlib.util
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
from typing import TYPE_CHECKING

from runner import compat, hub
from runner.contract import catalog, engine_failures, rundir
from runner.contract.aggregate import INTERRUPTED, aggregate, run_status
from runner.contract.defaults import MAX_NEW_TOKENS
from runner.contract.errors import UserError
from runner.contract.schema import (
    Batching,
    BatchSize,
    DeviceInfo,
    DocRecord,
    Environment,
    ErrorInfo,
    RunConfig,
    RunResult,
    ServingConfig,
)
from runner.contract.serving import from_records as serving_from_records
from runner.contract.weights import quality_caveat
from runner.executors import Executor, ExitInfo, create_executor
from runner.fingerprint import model_fingerprint
from runner.scenarios import get_scenario

if TYPE_CHECKING:
    from runner.contract.datasets import Dataset


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
    max_new_tokens: int = MAX_NEW_TOKENS
    max_input_tokens: int = 4096
    max_skipped_fraction: float = 0.1
    limit: int | None = None
    synthetic_weights: bool = False
    text_field: str | None = None
    summary_field: str | None = None
    id_field: str | None = None
    prompt_template: str | None = None
    force: bool = False
    gpu_memory_limit: int | None = None
    kv_cache_memory: int | None = None
    gpu_memory_utilization: float = 0.9
    vllm_enforce_eager: bool = False
    max_batch_size: int | None = None
    warmup: str = "full"
    price_per_hour: float | None = None
    timeout: float | None = None
    executor_options: dict = field(default_factory=dict)
    serving: ServingConfig | None = None
    serving_given: list[str] = field(default_factory=list)
    """The serving options typed on the command line, refused for a scenario that serves nothing."""


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
    if problem := vllm_options_problem(req):
        raise UserError(problem)
    if _downloads_here(req) and not (req.serving and req.serving.endpoint):
        from runner.model_names import check_model, token_checked_elsewhere

        with token_checked_elsewhere():  # a mistyped path is the first thing to say
            check_model(req.model, req.synthetic_weights)
        if problem := hub.download_problem(req.model):  # then a hub out of reach, which no token fixes
            raise UserError(problem)
        check_model(req.model, req.synthetic_weights)  # then a gated model's missing token
    _check_host_memory(req)


def vllm_options_problem(req: LaunchRequest) -> str | None:
    """Why the vLLM engine options given would be ignored (the scenario runs another backend), or None."""
    given = [
        flag
        for flag, set_ in (
            ("--kv-cache-memory", req.kv_cache_memory is not None),
            ("--gpu-memory-utilization", req.gpu_memory_utilization != 0.9),
            ("--vllm-enforce-eager", req.vllm_enforce_eager),
        )
        if set_
    ]
    if not given:
        return None
    scenario = get_scenario(req.scenario or catalog.get_image(req.image).default_scenario)
    if scenario.backend == "vllm":
        return None
    return (
        f"{', '.join(given)} configure vLLM's engine, and scenario {scenario.name} runs the {scenario.backend} "
        "backend: drop them, or pick a vLLM image and scenario (--image vllm-cpu --scenario vllm on a CPU)"
    )


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
    if batching := compat.batch_problem(scenario, req.batch_size):
        reasons.append(batching)
    if checkpoint and req.force:
        reasons.append(checkpoint)
    if reasons and not req.force:
        raise UserError(
            f"{image.key}/{scenario.name} cannot run on {gpu.key}: {'; '.join(reasons)} (--force runs it anyway)"
        )
    serving = _serving(req, scenario)
    if serving is not None:
        req.batch_size = "dynamic"  # the server forms its own batches
    if req.batch_size == "dynamic" and scenario.backend != "vllm" and serving is None:
        raise UserError(
            "--batch-size dynamic hands every prompt to vLLM at once; use a number or auto with hf scenarios"
        )
    if req.run_id is not None and not RUN_ID.fullmatch(req.run_id):
        raise UserError(
            f"--run-id {req.run_id!r}: use letters, digits, '.', '_' and '-' (a folder name inside --results, "
            "no path separators or '..')"
        )
    if serving is None or not serving.endpoint:
        _check_model(req)
    if checkpoint and not req.force:
        raise UserError(f"{checkpoint} (--force runs it anyway)")
    _check_prompt_template(req.prompt_template)
    dataset = _check_data(req)
    documents = len(dataset)
    dtype, notes = compat.adjustments(scenario, gpu)
    context_notes, longest_prompt = _check_context(req, dataset)
    notes += context_notes
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
    auto_plan = None
    if req.batch_size == "auto" and not gpu.is_cpu:
        from runner.contract.allocator import expandable
        from runner.memory_plan import auto_batch_ladder, largest_batch

        # The process executor's worker inherits this environment; a container starts with the worker's default.
        segments = expandable(os.environ) if req.executor == "process" else True
        plan = (req.model, scenario, gpu, req.max_new_tokens, req.gpu_memory_limit, segments)
        if max_batch is None:
            max_batch = largest_batch(*plan)
        auto_plan = auto_batch_ladder(*plan, longest_prompt)
    config = RunConfig(
        run_id=run_id,
        image=image.key,
        gpu=gpu.key,
        scenario=scenario.name,
        backend=scenario.backend,  # type: ignore[arg-type]
        dtype=dtype,
        attention=scenario.attention,
        quantization=scenario.quantization,
        sdpa_backend=scenario.sdpa_backend,
        torch_compile=scenario.compile,
        model=_model_path(req.model),
        base_model=req.base_model,
        synthetic_weights=req.synthetic_weights,
        model_fingerprint=model_fingerprint(req.model),
        data=str(Path(req.data).resolve()),
        dataset_sha256=dataset.sha256,
        text_field=req.text_field,
        summary_field=req.summary_field,
        id_field=req.id_field,
        limit=req.limit,
        batch_size=req.batch_size,
        max_batch_size=max_batch,
        auto_batch_plan=auto_plan,
        max_new_tokens=req.max_new_tokens,
        max_input_tokens=req.max_input_tokens,
        max_skipped_fraction=req.max_skipped_fraction,
        force_output_length=req.synthetic_weights,
        prompt_template=req.prompt_template,
        device="cpu" if gpu.is_cpu else "cuda",
        gpu_memory_limit_bytes=req.gpu_memory_limit,
        vllm_gpu_memory_utilization=req.gpu_memory_utilization,
        vllm_enforce_eager=req.vllm_enforce_eager,
        vllm_kv_cache_memory_bytes=req.kv_cache_memory,
        forced=bool(reasons),
        incompatibility="; ".join(reasons) or None,
        price_per_hour_usd=price,
        price_source=price_source,
        serving=serving,
        warmup=req.warmup,  # type: ignore[arg-type]
    )
    return config, notes


def _serving(req: LaunchRequest, scenario) -> ServingConfig | None:
    """The serving settings of a serving scenario; serving options given to any other are refused."""
    if not scenario.serving:
        if req.serving_given:
            raise UserError(
                f"{', '.join(req.serving_given)}: serving options, and --scenario {scenario.name} serves nothing; "
                "add --scenario vllm-serve (starts vllm serve) or --scenario endpoint --endpoint URL"
            )
        return None
    serving = req.serving or ServingConfig()
    if scenario.backend == "endpoint" and not serving.endpoint:
        raise UserError(
            "--scenario endpoint drives a server that is already running: give its --endpoint URL "
            "(or --scenario vllm-serve to start vllm serve here)"
        )
    if serving.api_key_env and not serving.endpoint:
        raise UserError(
            f"--api-key-env {serving.api_key_env}: the vllm serve the worker starts takes no key; "
            "use it with --endpoint URL"
        )
    if serving.server_extra_args and serving.endpoint:
        raise UserError("--server-arg: with --endpoint no server is started here; drop --server-arg")
    if req.executor == "process" and importlib.util.find_spec("httpx") is None:
        raise UserError(
            f"--scenario {scenario.name} runs its client in this Python, which lacks httpx: pip install httpx "
            "(vLLM's environments have it), or --executor docker with a vLLM image"
        )
    return serving


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
    from runner.contract.architectures import model_shape

    gpu = catalog.get_gpu(req.gpu)
    scenario = get_scenario(req.scenario or catalog.get_image(req.image).default_scenario)
    if scenario.backend == "endpoint" or (req.serving is not None and req.serving.endpoint):
        return  # the model runs in someone else's server
    if not gpu.is_cpu or req.force or req.executor != "process" or model_shape(req.model) is None:
        return
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


def _check_data(req: LaunchRequest) -> Dataset:
    """Read the dataset once on the host, so a bad file is one line before anything starts rather than
    a failed run after the model loaded; the worker reads it again, the same way."""
    from runner.contract.datasets import load_dataset

    return load_dataset(
        req.data, text_field=req.text_field, summary_field=req.summary_field, id_field=req.id_field, limit=req.limit
    )


def _check_context(req: LaunchRequest, dataset: Dataset) -> tuple[list[str], int]:
    """Refuse what the host can tell will not fit the model (see ``runner.context``); returns the note that
    says so when the model's context, not --max-input-tokens, sets the prompt limit, and that limit (the
    longest prompt that runs)."""
    from runner.context import certainly_over, model_context, prompt_limit

    context = model_context(req.model)
    if context is not None and req.max_new_tokens >= context[1]:
        raise UserError(
            f"--max-new-tokens {req.max_new_tokens} leaves no room for a prompt: {req.model} has {context[1]} "
            f"positions ({context[0]} in its config.json); give fewer new tokens"
        )
    limit = prompt_limit(req.max_input_tokens, req.max_new_tokens, context and context[1])
    notes = []
    if context is not None and limit < req.max_input_tokens:
        notes.append(
            f"prompts over {limit} tokens are skipped: {req.model}'s context is {context[1]} positions ({context[0]}) "
            f"less --max-new-tokens {req.max_new_tokens}, below --max-input-tokens {req.max_input_tokens}"
        )
    over = certainly_over(req.model, {d.id: d.text for d in dataset.documents}, limit)
    if over is not None and len(over.ids) > req.max_skipped_fraction * over.documents:
        docs = f"{over.documents} document{'s' if over.documents != 1 else ''}"
        raise UserError(
            f"{len(over.ids)} of {docs} in {req.data} are longer than {limit} tokens whatever the tokenizer does "
            f"(e.g. {over.ids[0]!r}), more than --max-skipped-fraction {req.max_skipped_fraction:g} allows: "
            "raise --max-input-tokens, --max-skipped-fraction, or use shorter documents"
        )
    return notes, limit


CELL_IGNORED = {"launch", "price_per_hour_usd", "price_source", "incompatibility"}
"""RunConfig fields that say how a cell is launched, priced or explained, not what it measures: they may
change between attempts of one run."""


INPUT_IDENTITY = {"dataset_sha256", "model_fingerprint"}
"""What the inputs were: compared with the inputs themselves by ``check_same_work``, in its own words."""


def config_changes(old: RunConfig, new: RunConfig, ignore: set[str] = CELL_IGNORED) -> list[str]:
    """'max_new_tokens: 8 → 16' for each field of the cell that differs, in the schema's order."""
    a, b = old.model_dump(exclude=ignore), new.model_dump(exclude=ignore)
    return [f"{k}: {a[k]!r} → {b.get(k)!r}" for k in a if a[k] != b.get(k)]


def _config_edits(run_dir: Path, config: RunConfig) -> str:
    """What config.json says now that the last attempt's result.json (which records the config it ran)
    does not; "" when they agree or there is no readable result to hold it to. Paths are left out: a
    container's result names its own (/inputs/...) until the host restores them, and the inputs behind
    the paths are checked by content."""
    try:
        ran = rundir.read_result(run_dir).config
    except UserError:
        return ""
    return "; ".join(config_changes(ran, config, CELL_IGNORED | INPUT_IDENTITY | {"model", "data"})[:3])


def check_same_work(run_dir: Path, config: RunConfig, kept: list[DocRecord]) -> None:
    """Refuse to resume ``run_dir`` when its dataset or model is no longer what the run started with: the
    records it keeps would be mixed, in one result, with documents summarized from other inputs. Names
    what changed (and which kept documents); folders from before these were recorded are not checked."""
    from runner.contract.datasets import load_dataset

    changed = []
    if edited := _config_edits(run_dir, config):
        changed.append(f"{rundir.CONFIG} was edited since the last attempt ({edited})")
    if config.dataset_sha256 is not None:
        dataset = load_dataset(
            config.data,
            text_field=config.text_field,
            summary_field=config.summary_field,
            id_field=config.id_field,
            limit=config.limit,
        )
        if dataset.sha256 != config.dataset_sha256:
            now = {d.id: d.sha256 for d in dataset.documents}
            edited = [r.id for r in kept if r.doc_sha256 is not None and now.get(r.id) != r.doc_sha256]
            which = (
                f"{len(edited)} of the {len(kept)} finished documents differ or are gone (e.g. {edited[0]!r})"
                if edited
                else "the finished documents are unchanged, others differ"
            )
            changed.append(
                f"dataset {config.data} changed since the run started (sha256 {config.dataset_sha256[:12]} → "
                f"{dataset.sha256[:12]}; {which})"
            )
    now_model = model_fingerprint(config.model) if config.model_fingerprint is not None else None
    if config.model_fingerprint is not None and now_model != config.model_fingerprint:
        how = "is gone" if now_model is None else "has other files, sizes or config than when the run started"
        changed.append(f"model {config.model} {how}")
    if changed:
        raise UserError(
            f"cannot resume {run_dir}: {'; '.join(changed)}: put the original back, or start a new run "
            "(another --run-id) on the new inputs"
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
        check_same_work(run_dir, config, kept)
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
            check_same_work(run_dir, config, kept)
        executor_name = req.executor
    if done := len({r.id for r in kept}):
        were, are = ("document was", "is") if done == 1 else ("documents were", "are")
        notes.append(
            f"resumed: {done} {were} already done and {are} kept; docs/s covers every attempt's "
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
    if changed := config_changes(existing, new, CELL_IGNORED | INPUT_IDENTITY):
        shown = "; ".join(changed[:3])
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
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    # A previous attempt's result and traceback are moved aside, not deleted: docs.jsonl carries what it
    # finished, and an error.log beside a completed result would say this attempt failed.
    for name, aside in (
        (rundir.RESULT, f"result.previous-{stamp}.json"),
        (rundir.ERROR_LOG, f"error.previous-{stamp}.log"),
    ):
        if (run_dir / name).exists():
            shutil.move(run_dir / name, run_dir / aside)
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
    ``runner.contract.engine_failures``); None for any other error."""
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
        who = (
            "and its engine reported no out-of-memory kill: by hand (docker kill) or by the engine"
            if exit_info.oom_reported
            else "by hand, or by the kernel's out-of-memory killer"
        )
        return ErrorInfo(
            error_class="Killed",
            message=f"the worker was killed with SIGKILL (exit code {code}) {who}; finished documents are kept "
            "and --resume continues the run",
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
    served = serving_from_records(run_dir, config.serving) if config.serving else None
    done = len(records) or (sum(lv.statuses.get("ok", 0) for lv in served.levels) if served else 0)
    result = RunResult(
        run_id=config.run_id,
        status=run_status(error, done),
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
        serving=served,
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
