"""Cells: runs of the same configuration folded together.

A cell is what a person means by "hf fp16 at batch 8 on an A100": image, scenario, GPU, model, requested
batch size and the work asked for (dataset content, output length, prompt template). Runs that agree on all of these
are repeats, whatever their run ids, and the report shows them as one row with mean ± stdev; runs
that differ in any of them are different rows, so a number is never averaged across datasets.

Five things the name of a cell does not say also keep runs apart, because each changes what was measured:
the device as the worker detected it (two CPU models are both ``--gpu cpu``; a host-written result of a
worker that died knows only the catalog name),
a ``--gpu-memory-limit`` cap (a 15 GiB-capped H200 run stands for a smaller card, not for the H200), where
the worker ran (the process executor runs it in the host's Python whatever ``--image`` says, so it and a
Docker run of that image are two environments; two builds of one image are two as well), the dtype that
actually ran (``bf16`` on a T4 runs as fp16), and the warm-up mode (``none`` times first-use costs).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import PurePath

from runner import compat
from runner.console import fmt_bytes
from runner.contract import catalog
from runner.contract.errors import UserError
from runner.contract.schema import RunResult
from runner.repeats import Stat, stat
from runner.report.loading import Run
from runner.scenarios import get_scenario

PROCESS = "process"
"""The executor that runs the worker in the host's own Python, not in the image it names."""
_SHORT_DTYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64"}


def gpu_of(result: RunResult) -> str:
    """The catalog GPU a run measured: what the worker detected, else what was asked for."""
    return result.environment.device.catalog_gpu or result.config.gpu


def memory_cap(result: RunResult) -> int | None:
    """The ``--gpu-memory-limit`` a run measured under; None for the whole card. The worker records the
    cap it applied; a result the host wrote for a worker that died first has only the config's. A CPU run
    has no cap (the worker ignores one there), and a cap at or above the card's size caps nothing."""
    device = result.environment.device
    if device.kind == "cpu":
        return None
    cap = device.memory_limit_bytes or result.config.gpu_memory_limit_bytes
    return None if cap is None or (device.memory_bytes and cap >= device.memory_bytes) else cap


def cap_label(cap: int | None) -> str:
    """'15.0 GiB' for a capped run, 'none' for the whole card: as a table cell says it."""
    return fmt_bytes(cap) if cap else "none"


def launch_of(result: RunResult) -> tuple[str, str]:
    """(executor, image id) of the environment the worker ran in. A process run has no image id: it ran
    in the host's Python whatever image it names. A container run has one where the executor recorded it
    (Docker's image id, else the digest), "" where not."""
    launch = result.environment.launch
    if launch.executor == PROCESS:
        return PROCESS, ""
    return launch.executor, launch.image_id or launch.image_digest or ""


def short_image_id(image_id: str) -> str:
    """'1a2b3c4d5e6f' from 'sha256:1a2b3c4d5e6f…', as ``docker images`` shows one."""
    return image_id.split(":", 1)[-1][:12] or "id unknown"


def ran_dtype(result: RunResult) -> str:
    """The dtype the backend reported loading, else the one the run was configured with."""
    return result.backend.dtype if result.backend else result.config.dtype


def scenario_dtype(scenario: str, fallback: str) -> str:
    """The dtype a scenario's name promises; ``fallback`` for a scenario this checkout does not know."""
    try:
        return get_scenario(scenario).dtype
    except UserError:
        return fallback


def short_dtype(dtype: str) -> str:
    return _SHORT_DTYPES.get(dtype, dtype)


def _floating(dtype: str) -> bool:
    """Whether a dtype is a floating-point compute type. A quantized backend may report its storage type
    (int8, uint8): that is the quantization, which the scenario's name already says, not a substitution."""
    return dtype.startswith(("float", "bfloat"))


def dtype_substituted(scenario: str, dtype: str) -> bool:
    """Whether a run of ``scenario`` ran another dtype than its name promises (bf16 as fp16 on a T4)."""
    promised = scenario_dtype(scenario, dtype)
    return dtype != promised and _floating(dtype) and _floating(promised)


def scenario_label(scenario: str, dtype: str | None) -> str:
    """'bf16', or 'bf16→fp16' when the run's dtype is not the one the name promises: so a T4's 'bf16'
    row is never read as bf16, in a table or a plot legend."""
    if dtype is None or not dtype_substituted(scenario, dtype):
        return scenario
    return f"{scenario}→{short_dtype(dtype)}"


def substitution_reason(scenario: str, gpu: str, dtype: str) -> str | None:
    """Why ``scenario`` ran ``dtype`` on ``gpu``, from the rule that substitutes it (``compat.adjustments``);
    None when that rule does not explain it (a run launched with --force, or another checkout's rule)."""
    try:
        ran, notes = compat.adjustments(get_scenario(scenario), catalog.get_gpu(gpu))
    except UserError:
        return None
    return notes[0] if ran == dtype and notes else None


def model_label(model: str) -> str:
    """A short model name: the folder name of a local checkpoint, the hub id otherwise."""
    return PurePath(model).name if model.startswith(("/", ".", "~")) else model


def base_model_label(result: RunResult) -> str:
    """The model a run's quality stands for: the one a pre-quantized checkpoint was made from
    (``--base-model``), else the checkpoint itself. An AWQ run of llama-2-7b-chat-awq and an fp16 run of
    llama-2-7b-chat then did the same work, as a 4-bit bitsandbytes run of the fp16 checkpoint does."""
    return model_label(result.config.base_model or result.config.model)


def checkpoint_label(result: RunResult) -> str:
    """'llama-2-7b-chat-awq (of llama-2-7b-chat)': the checkpoint, and the model it was made from."""
    own, base = model_label(result.config.model), base_model_label(result)
    return own if own == base else f"{own} (of {base})"


def batch_label(results: Iterable[RunResult]) -> str:
    """'8', 'auto→4', or 'auto→4/8' when repeats of an auto cell settled on different sizes."""
    results = list(results)
    requested = results[0].config.batch_size
    finals = sorted({r.batching.final for r in results if r.batching.final is not None})
    if isinstance(requested, int) and finals in ([], [requested]):
        return str(requested)
    shown = "/".join(map(str, finals)) or "?"
    return f"{requested}→{shown}"


def prompt_label(template: str | None) -> str:
    """'model's own prompt', or the start of the template a run was given with --prompt-template."""
    if not template:
        return "model's own prompt"
    flat = " ".join(template.split())
    return repr(flat if len(flat) <= 32 else flat[:33].rsplit(" ", 1)[0] + "…")


def output_length(max_new_tokens: int, forced: bool) -> str:
    """'8 new tokens', or '8 forced new tokens' when synthetic weights were made to write all of them."""
    return f"{max_new_tokens} {'forced ' if forced else ''}new tokens"


@dataclass(frozen=True)
class Work:
    """One part of the work a run was asked to do, as opposed to how it was run (image, scenario, GPU,
    batch size: what one compares). Two runs that differ in one summarized other documents, with another
    model, or to another length, so their speeds and scores measure that as much as the backends:
    ``runner compare`` refuses such a pair and ``runner report`` warns and shows the column."""

    what: str
    """Plural, for "ran different ..."."""
    header: str
    """The results-table column that tells such rows apart..."""
    key: str
    """...and the ``cell_row`` key it shows."""
    get: Callable[[RunResult], Hashable]
    """The value runs must share; None where a run did not record it (it failed before loading data)."""
    show: Callable[[RunResult], str]


WORK: tuple[Work, ...] = (
    Work(
        "datasets",
        "Dataset",
        "dataset_sha256",
        lambda r: r.dataset.sha256 if r.dataset else None,
        lambda r: f"sha {r.dataset.sha256[:12]}…" if r.dataset else "none",
    ),
    # By name, not path: one checkpoint sits in another folder on each machine a comparison spans.
    # By name, and by the model a quantized checkpoint was made from (--base-model).
    Work("models", "Model", "model", base_model_label, checkpoint_label),
    Work(
        "output lengths",
        "New tokens",
        "max_new_tokens",
        lambda r: (r.config.max_new_tokens, r.config.force_output_length),
        lambda r: output_length(r.config.max_new_tokens, r.config.force_output_length),
    ),
    # "" is the model's own (chat) template: one value, not "unrecorded".
    Work(
        "prompts",
        "Prompt",
        "prompt_template",
        lambda r: r.config.prompt_template or "",
        lambda r: prompt_label(r.config.prompt_template),
    ),
)


def work_differences(results: Iterable[RunResult]) -> list[Work]:
    """The parts of the work that ``results`` do not all share. A value a run did not record does not
    count as a difference: a run that failed before loading its dataset is caught by having no documents."""
    results = list(results)
    return [w for w in WORK if len({v for r in results if (v := w.get(r)) is not None}) > 1]


def shown_values(work: Work, results: Iterable[RunResult]) -> list[str]:
    """The distinct values of ``work`` among ``results``, in order (8 before 16 new tokens), as shown."""
    recorded = sorted((r for r in results if work.get(r) is not None), key=work.get)  # type: ignore[arg-type]
    return list(dict.fromkeys(work.show(r) for r in recorded))


def device_of(result: RunResult) -> str:
    """The device as the worker detected it ('AMD EPYC 7B13 (2 cores)', 'NVIDIA H100 80GB HBM3')."""
    return result.environment.device.name


@dataclass(frozen=True, order=True)
class CellKey:
    gpu: str
    device: str
    model: str
    image: str
    scenario: str
    batch: str
    dataset: str
    max_new_tokens: int
    forced_output: bool = False
    prompt_template: str = ""
    memory_cap: int = 0
    """``--gpu-memory-limit`` in bytes; 0 for the whole card (0, not None, so keys sort)."""
    executor: str = PROCESS
    image_id: str = ""
    dtype: str = ""
    """The dtype that ran, which is not always the scenario's (``scenario_label``)."""
    base_model: str = ""
    """``base_model_label``: what the quality gate holds equal, so an AWQ checkpoint meets its fp16 model."""
    warmup: str = "full"
    """``--warmup``: with ``none`` the first call's first-use costs are in docs/s, so it is another figure."""

    @property
    def quality_key(self) -> tuple[str, str, str, str, int, str]:
        """What a quality comparison must hold equal: GPU and device, model, dataset, output length, prompt."""
        return (self.gpu, self.device, self.base_model, self.dataset, self.max_new_tokens, self.prompt_template)


def cell_key(result: RunResult) -> CellKey:
    """What makes runs repeats of one another (see the module's docstring)."""
    c = result.config
    executor, image_id = launch_of(result)
    return CellKey(
        gpu=gpu_of(result),
        device=device_of(result),
        model=c.model,
        image=c.image,
        scenario=c.scenario,
        batch=str(c.batch_size),
        dataset=result.dataset.sha256 if result.dataset else "",
        max_new_tokens=c.max_new_tokens,
        forced_output=c.force_output_length,
        prompt_template=c.prompt_template or "",
        memory_cap=memory_cap(result) or 0,
        executor=executor,
        image_id=image_id,
        dtype=ran_dtype(result),
        base_model=base_model_label(result),
        warmup=c.warmup,
    )


@dataclass(frozen=True)
class Cell:
    """The completed runs of one cell; metrics are means over them."""

    key: CellKey
    runs: tuple[Run, ...]

    @property
    def results(self) -> list[RunResult]:
        return [r.result for r in self.runs]

    @property
    def quality_meaningful(self) -> bool:
        return all(r.quality_meaningful for r in self.results)

    @property
    def batch(self) -> str:
        return batch_label(self.results)

    @property
    def scenario(self) -> str:
        """The scenario as shown: marked where its dtype was substituted (``scenario_label``)."""
        return scenario_label(self.key.scenario, self.key.dtype)

    def name(self) -> str:
        """'hf/bf16→fp16 batch 4, 15.0 GiB cap, docker': the cell in a sentence, with what keeps it apart
        from a cell of the same image, scenario and batch (the process executor is the default, unsaid)."""
        extra = [f"{cap_label(self.key.memory_cap)} cap"] if self.key.memory_cap else []
        extra += [self.key.executor] if self.key.executor != PROCESS else []
        return ", ".join([f"{self.key.image}/{self.scenario} batch {self.batch}", *extra])

    @property
    def final_batch(self) -> int | None:
        """The batch size most repeats ended at; what the throughput plot puts on its x axis."""
        finals = [r.batching.final for r in self.results if r.batching.final is not None]
        return max(set(finals), key=finals.count) if finals else None

    def metric(self, name: str) -> Stat | None:
        """Mean ± stdev of a ``Metrics`` field over the repeats."""
        return stat(getattr(r.metrics, name) for r in self.results)

    def rouge(self, name: str, lead3: bool = False) -> Stat | None:
        scores = [r.metrics.lead3_rouge if lead3 else r.metrics.rouge for r in self.results]
        return stat(getattr(s, name) if s else None for s in scores)


def group_cells(runs: Iterable[Run]) -> list[Cell]:
    """Completed runs grouped by cell, in key order; failed and partial runs are reported elsewhere."""
    groups: dict[CellKey, list[Run]] = {}
    for run in runs:
        if run.result.status == "completed":
            groups.setdefault(cell_key(run.result), []).append(run)
    return [Cell(key, tuple(groups[key])) for key in sorted(groups)]
