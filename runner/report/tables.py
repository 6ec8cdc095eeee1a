"""The report's tables: results per GPU (with the lead-3 baseline), failed runs, and datasets.

The results table follows the original study's: one row per cell, fastest first, with the numbers that
decide a deployment (throughput, quality, memory, money, energy) side by side, and an extractive lead-3
row so a reader sees what ROUGE a model must beat to be worth running at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import PurePath

from runner.console import fmt_bytes
from runner.contract.schema import RunResult
from runner.contract.weights import FOOTNOTES, weights_kinds
from runner.repeats import CV_WARN
from runner.report.cells import (
    PROCESS,
    Cell,
    CellKey,
    Work,
    batch_label,
    cap_label,
    checkpoint_label,
    dtype_substituted,
    gpu_of,
    launch_of,
    memory_cap,
    prompt_label,
    ran_dtype,
    scenario_dtype,
    scenario_label,
    short_dtype,
    short_image_id,
    substitution_reason,
    work_differences,
)
from runner.report.document import Column, Row, Table, number, text
from runner.report.gate import THRESHOLD, GateResult
from runner.report.loading import Dropped, Run

SYNTHETIC_MARK = "†"
_WITH_STDEV = ("docs_per_second", "output_tokens_per_second")
_MEANS = (
    "latency_p50_s",
    "latency_p90_s",
    "avg_input_tokens",
    "avg_output_tokens",
    "cost_per_1k_docs_usd",
    "energy_per_doc_joules",
    "compile_seconds",
)
_ROUGE = ("rouge1", "rouge2", "rougeL")
PEAK_SOURCES = {
    "torch_cuda_max_reserved": (
        "reserved",
        "torch's reserved memory: what its caching allocator held, which is not what the run needed (the cache "
        "keeps freed blocks and grows toward the whole card, or the memory cap)",
    ),
    "nvml_device_used": (
        "GPU",
        "the whole GPU through NVML, for a backend whose engine runs in its own process (vllm)",
    ),
    "process_max_rss": ("RSS", "the worker process's largest resident set (on a CPU)"),
}
"""Per ``Metrics.peak_memory_source``: the word the Peak column's header uses, and what the figure is."""


def cell_row(cell: Cell, gate: GateResult | None) -> Row:
    """Everything the report knows about a cell, as raw values (CSV and JSON write these as they are)."""
    key = cell.key
    row: Row = {
        "kind": "cell",
        "gpu": key.gpu,
        "model": checkpoint_label(cell.results[0]),
        "image": key.image,
        "scenario": key.scenario,
        "batch": cell.batch,
        "batch_requested": cell.results[0].config.batch_size,  # an int, or "auto" / "dynamic"; repeats share it
        "batch_final": cell.final_batch,
        "runs": len(cell.runs),
    }
    for name in _WITH_STDEV:
        s = cell.metric(name)
        row[name] = s.mean if s else None
        row[f"{name}_stdev"] = s.stdev if s and s.n > 1 else None
    row["documents"] = max(r.metrics.documents for r in cell.results)
    for name in _MEANS:
        s = cell.metric(name)
        row[name] = s.mean if s else None
    for name in _ROUGE:
        s = cell.rouge(name)
        row[name] = s.mean if s else None
        row[f"{name}_stdev"] = s.stdev if s and s.n > 1 else None
    row.update(_token_times(cell))
    row.update(_peaks(cell.results))
    row["quality_meaningful"] = cell.quality_meaningful
    row["gate"] = gate.verdict if gate else None
    row["gate_label"] = gate.label() if gate else None
    row["gate_ratio"] = gate.ratio if gate else None
    row["gate_reference"] = gate.reference if gate else None
    row["dataset_sha256"] = key.dataset
    row["max_new_tokens"] = key.max_new_tokens
    row["forced_output"] = key.forced_output
    row["prompt_template"] = key.prompt_template
    row.update(_conditions(key.scenario, key.dtype, key.memory_cap or None, key.executor, key.image_id))
    row["run_ids"] = [r.result.run_id for r in cell.runs]
    return row


TOKEN_TIMES = {"ttft": "time_to_first_token_s", "tpot": "time_per_output_token_s"}


def _token_times(cell: Cell) -> Row:
    """Time to first token and per output token at p50/p90/p99, each the mean over the repeats."""
    row: Row = {}
    for short, field in TOKEN_TIMES.items():
        for q in ("p50", "p90", "p99"):
            values = [getattr(p, q) for r in cell.results if (p := getattr(r.metrics, field)) is not None]
            row[f"{short}_{q}_s"] = sum(values) / len(values) if values else None
    return row


def _token_time_column(rows: Sequence[Row], short: str, header: str, scale: float, spec: str) -> Column | None:
    """'p50 / p90' of a per-token time, shown only where some row measured it."""
    if not any(r.get(f"{short}_p50_s") is not None for r in rows):
        return None

    def show(row: Row) -> str:
        p50, p90 = row.get(f"{short}_p50_s"), row.get(f"{short}_p90_s")
        return "-" if p50 is None else f"{p50 * scale:{spec}} / {p90 * scale:{spec}}"

    return Column(f"{short}_p50_s", header, show, numeric=True)


def _peaks(results: Sequence[RunResult]) -> Row:
    """The largest of the repeats' memory peaks: reserved (or RSS, or NVML; ``peak_memory_source`` says
    which), allocated (the run's need: what the memory plan predicts) and the whole GPU's."""
    row: Row = {}
    for name in ("peak_memory_bytes", "peak_memory_allocated_bytes", "peak_device_memory_bytes"):
        values = [v for r in results if (v := getattr(r.metrics, name)) is not None]
        row[name] = max(values) if values else None
    sources = sorted({s for r in results if (s := r.metrics.peak_memory_source)})
    row["peak_memory_source"] = ", ".join(sources) or None
    return row


def _conditions(scenario: str, dtype: str, cap: int | None, executor: str, image_id: str) -> Row:
    """How a row's runs ran, beyond its scenario's name: the dtype (and the one the scenario promises),
    the memory cap, and the environment (executor and image id)."""
    return {
        "dtype": dtype,
        "scenario_dtype": scenario_dtype(scenario, dtype),
        "gpu_memory_limit_bytes": cap,
        "executor": executor,
        "image_id": image_id or None,
    }


def lead3_rows(cells: Sequence[Cell]) -> list[Row]:
    """One lead-3 row per dataset in the table: its ROUGE, and no speed (nothing was generated)."""
    rows = []
    for dataset in dict.fromkeys(c.key.dataset for c in cells):
        source = next((c for c in cells if c.key.dataset == dataset and c.rouge("rouge1", lead3=True)), None)
        if source is None:
            continue
        row: Row = {
            "kind": "lead3",
            "gpu": source.key.gpu,
            "scenario": "lead-3 baseline",
            "image": None,
            "batch": None,
            "batch_requested": None,
            "batch_final": None,
            "documents": max(r.metrics.documents for r in source.results),
            "quality_meaningful": True,
            "dataset_sha256": dataset,
            "gate_label": None,
        }
        for name in _ROUGE:
            row[name] = source.rouge(name, lead3=True).mean  # type: ignore[union-attr]
        rows.append(row)
    return rows


def _rouge(key: str) -> Column:
    plain = number(key, ".4f")

    def show(row: Row) -> str:
        value = plain(row)
        return value if row.get("quality_meaningful", True) or value == "-" else value + SYNTHETIC_MARK

    return Column(key, {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}[key], show, numeric=True)


def _bytes(key: str) -> Callable[[Row], str]:
    return lambda row: fmt_bytes(row.get(key))


def _scenario(row: Row) -> str:
    return scenario_label(row["scenario"], row.get("dtype"))


def cap_column(rows: Sequence[Row]) -> Column | None:
    """'Mem cap' where some row ran under --gpu-memory-limit; None where every row had the whole card."""
    if not any(r.get("gpu_memory_limit_bytes") for r in rows):
        return None
    return Column(
        "gpu_memory_limit_bytes",
        "Mem cap",
        # A lead-3 row ran nothing, and a CPU run has no card to cap.
        lambda r: (
            "-" if r.get("kind") == "lead3" or r.get("gpu") == "cpu" else cap_label(r.get("gpu_memory_limit_bytes"))
        ),
        numeric=True,
    )


def launch_column(rows: Sequence[Row]) -> Column | None:
    """'Executor' where rows ran in different environments: another executor, or another build of one
    image (then with its short id). None where every row ran alike, which keeps the table narrow."""
    launches = {(r["image"], r["executor"], r.get("image_id") or "") for r in rows if r.get("executor")}
    builds: dict[tuple[str, str], set[str]] = {}
    for image, executor, image_id in launches:
        builds.setdefault((image, executor), set()).add(image_id)
    with_id = {k for k, ids in builds.items() if len(ids) > 1}
    if len({executor for _, executor, _ in launches}) < 2 and not with_id:
        return None

    def show(row: Row) -> str:
        executor = row.get("executor")
        if executor is None:
            return "-"
        built = (row["image"], executor) in with_id
        return f"{executor} {short_image_id(row.get('image_id') or '')}" if built else executor

    return Column("executor", "Executor", show)


def _peak_sources(rows: Sequence[Row]) -> list[str | None]:
    """The distinct ``peak_memory_source``s of rows with a peak (None: a result that did not say). A row
    of repeats joins its repeats' sources with ', ' (``_peaks``)."""
    sources: set[str | None] = set()
    for r in rows:
        if r.get("peak_memory_bytes") is None:
            continue
        joined = r.get("peak_memory_source")
        sources.update(joined.split(", ") if joined else [None])
    return sorted(sources, key=str)


def peak_header(rows: Sequence[Row]) -> str:
    """'Peak reserved', 'Peak RSS' or 'Peak GPU' where every row measured the same thing; 'Peak mem' where
    rows measured different things (an hf row beside a vllm row), which the footnote then spells out."""
    sources = _peak_sources(rows)
    if len(sources) == 1 and sources[0] in PEAK_SOURCES:
        return f"Peak {PEAK_SOURCES[sources[0]][0]}"
    return "Peak mem"


def memory_columns(rows: Sequence[Row]) -> list[Column]:
    """Peak alloc (where torch measured it), the Peak column headed by what it measured, and GPU mem
    (where NVML measured the whole card)."""
    columns = []
    if any(r.get("peak_memory_allocated_bytes") is not None for r in rows):
        columns.append(Column("peak_memory_allocated_bytes", "Peak alloc", _bytes("peak_memory_allocated_bytes"), True))
    columns.append(Column("peak_memory_bytes", peak_header(rows), _bytes("peak_memory_bytes"), numeric=True))
    if any(r.get("peak_device_memory_bytes") for r in rows):
        columns.append(Column("peak_device_memory_bytes", "GPU mem", _bytes("peak_device_memory_bytes"), True))
    return columns


def _latency(row: Row) -> str:
    """'1.412 / 1.450': a cell's call time per document at p50 and p90, the mean over its repeats."""
    p50, p90 = row.get("latency_p50_s"), row.get("latency_p90_s")
    return "-" if p50 is None and p90 is None else " / ".join("-" if v is None else f"{v:.3f}" for v in (p50, p90))


def _work_column(work: Work) -> Column:
    """The column that tells apart rows that did different work (see ``cells.WORK``)."""
    if work.key == "max_new_tokens":
        return Column(work.key, work.header, _output_length, numeric=True)
    if work.key == "dataset_sha256":
        return Column(work.key, work.header, lambda r: (r.get(work.key) or "-")[:12])
    if work.key == "prompt_template":  # a lead-3 row has no prompt: it copies the document's first sentences
        return Column(work.key, work.header, lambda r: "-" if r.get("kind") == "lead3" else prompt_label(r[work.key]))
    return Column(work.key, work.header, text(work.key))


def _output_length(row: Row) -> str:
    n = row.get("max_new_tokens")
    return "-" if n is None else f"{n} forced" if row.get("forced_output") else str(n)


def results_table(
    cells: Sequence[Cell], gates: dict[CellKey, GateResult], differing: Sequence[Work] | None = None
) -> Table:
    """One GPU's cells, fastest first among those that did the same work, then the lead-3 baseline.

    ``differing`` is the work the report's runs did not all share (dataset, model, output length; by
    default, this table's): each gets a column, and rows are grouped by it before speed, so that rows
    which compare sit together and two rows that both read "fp32 | cpu | 2" are told apart."""
    if differing is None:
        differing = work_differences(r for c in cells for r in c.results)
    rows = sorted(
        (cell_row(c, gates.get(c.key)) for c in cells),
        key=lambda r: (tuple(r[w.key] for w in differing), -(r["docs_per_second"] or 0.0)),
    )
    # Checkpoints of one model (an AWQ copy beside its fp16 original) did the same work, yet a reader must
    # see which row ran which.
    checkpoints = {r["model"] for r in rows}
    show_model = any(w.key == "model" for w in differing) or len(checkpoints) > 1
    rows += lead3_rows(cells)
    columns = [
        *([Column("model", "Model", text("model"))] if show_model else []),
        Column("scenario", "Scenario", _scenario),
        Column("image", "Image", text("image")),
        *_present(launch_column(rows)),
        Column("batch", "Batch", text("batch"), numeric=True),
        *_present(cap_column(rows)),
        *(_work_column(w) for w in differing if w.key != "model"),
        Column("docs_per_second", "Docs/s", number("docs_per_second", ".3f"), numeric=True),
        Column("output_tokens_per_second", "Output tok/s", number("output_tokens_per_second", ".1f"), numeric=True),
        Column("latency_p50_s", "Call s p50/p90", _latency, numeric=True),
        *_present(_token_time_column(rows, "ttft", "First token s p50/p90", 1.0, ".3f")),
        *_present(_token_time_column(rows, "tpot", "Per token ms p50/p90", 1000.0, ".1f")),
        Column("documents", "Docs", text("documents"), numeric=True),
        Column("avg_input_tokens", "In tok/doc", number("avg_input_tokens", ".1f"), numeric=True),
        Column("avg_output_tokens", "Out tok/doc", number("avg_output_tokens", ".1f"), numeric=True),
        _rouge("rouge1"),
        _rouge("rouge2"),
        _rouge("rougeL"),
        Column("gate_label", f"Gate (≥{THRESHOLD:.0%} ref)", text("gate_label")),
        *memory_columns(rows),
        *_present(compile_column(rows)),
        Column("cost_per_1k_docs_usd", "$/1k docs", number("cost_per_1k_docs_usd", ".4f"), numeric=True),
        Column("energy_per_doc_joules", "J/doc", number("energy_per_doc_joules", ".1f"), numeric=True),
    ]
    if any(len(c.runs) > 1 for c in cells):
        columns.append(Column("runs", "Runs", text("runs"), numeric=True))
    return Table(columns, rows)


def compile_column(rows: Sequence[Row]) -> Column | None:
    """Seconds torch.compile took (hf-compile), apart from docs/s like model load; shown where a row compiled."""
    if all(r.get("compile_seconds") is None for r in rows):
        return None
    return Column("compile_seconds", "Compile s", number("compile_seconds", ".1f"), numeric=True)


COMPILE_NOTE = (
    "Compile s: all the seconds torch.compile spent compiling (static KV cache + torch.compile), most in the "
    "untimed warm-up; any part that fell inside a timed call (a recompile) is in docs/s too "
    "(`compile_seconds_timed` says how much)."
)


def _present(column: Column | None) -> list[Column]:
    return [] if column is None else [column]


_MEMORY_NOTES = {
    "peak_memory_allocated_bytes": "the most memory torch allocated, the run's need: what the memory plan "
    "(`runner plan`, `--batch-size auto`) predicts.",
    "peak_device_memory_bytes": "the whole GPU through NVML, CUDA context included, for every backend: compare "
    "backends on that one.",
}
"""The footnote of each memory column but the Peak one, whose meaning depends on what its rows measured."""


def memory_footnotes(rows: Sequence[Row]) -> list[str]:
    """What each of ``memory_columns`` shows: always there when the columns are, because 'Peak' alone reads
    as the memory a run needs, which torch's reserved figure is not."""
    columns = memory_columns(rows)
    header = next(c.header for c in columns if c.key == "peak_memory_bytes")
    meanings = [PEAK_SOURCES[s][1] if s in PEAK_SOURCES else "as the run recorded it" for s in _peak_sources(rows)]
    what = meanings[0] if len(meanings) == 1 else "by row, " + "; or ".join(meanings)
    notes = [f"{header}: {what}." if meanings else f"{header}: no run recorded one."]
    return notes + [f"{c.header}: {_MEMORY_NOTES[c.key]}" for c in columns if c.key in _MEMORY_NOTES]


def condition_footnotes(rows: Sequence[Row], cells: bool = True) -> list[str]:
    """What the Mem cap and Executor columns and a marked scenario mean, where the table shows them.
    ``cells``: the rows are cells of the results table, which also say what the Image column means for a
    process run (the failures table does not repeat it)."""
    notes = []
    if cap_column(rows) is not None:
        note = "Mem cap: the --gpu-memory-limit the worker ran under (none: the whole card)."
        if cells:
            note += " A capped row measures a smaller card's limits on this one: never folded with uncapped runs."
        notes.append(note)
    process = any(r.get("executor") == PROCESS for r in rows)
    if launch_column(rows) is not None:
        notes.append(
            "Executor: where the worker ran (process: the launching machine's Python; docker, sky, k8s: inside the "
            "image, with its id where two builds of one image ran). Runs in different environments are never "
            "folded as repeats."
        )
    if process and cells:
        notes.append(
            "Image: the process executor runs the worker in the launching machine's own Python, not inside the "
            "image a row names; only a container executor (docker, sky, k8s) runs it in that image."
        )
    marked = (r for r in rows if r.get("dtype") and dtype_substituted(r["scenario"], r["dtype"]))
    notes += [_substitution_note(*k) for k in dict.fromkeys((r["scenario"], r["gpu"], r["dtype"]) for r in marked)]
    return notes


def _substitution_note(scenario: str, gpu: str, dtype: str) -> str:
    """'bf16→fp16: scenario bf16 asks for bfloat16, but on t4 it ran float16 (why): ...'."""
    promised = scenario_dtype(scenario, dtype)
    why = substitution_reason(scenario, gpu, dtype)
    return (
        f"{scenario_label(scenario, dtype)}: scenario {scenario} asks for {promised}, but on {gpu} it ran "
        f"{dtype}{f' ({why})' if why else ''}: its numbers are {short_dtype(dtype)}'s, not "
        f"{short_dtype(promised)}'s."
    )


def results_footnotes(cells: Sequence[Cell], reference: str | None, rows: Sequence[Row]) -> list[str]:
    """The results table's notes; ``rows`` are its rows."""
    notes = [
        f"{SYNTHETIC_MARK} {kind}: {FOOTNOTES[kind]}." for kind in weights_kinds(r for c in cells for r in c.results)
    ]
    notes += condition_footnotes(rows)
    notes += memory_footnotes(rows)
    if compile_column(rows) is not None:
        notes.append(COMPILE_NOTE)
    ref = reference or "default (fp16) on a GPU, fp32 on a CPU"
    notes.append(
        f"Gate: ROUGE-1 at least {THRESHOLD:.0%} of the reference scenario ({ref}) on the same GPU, model, "
        "dataset, output length and prompt (MLPerf's rule for summarization)."
    )
    if any(len(c.runs) > 1 for c in cells):
        memory = " and ".join(c.header for c in memory_columns(rows))
        notes.append(
            "Cells with several runs show mean ± sample standard deviation over the repeats for docs/s, output "
            f"tokens/s and ROUGE, the mean for the other figures; {memory}: the largest of the repeats."
        )
    for c in cells:
        dps = c.metric("docs_per_second")
        if dps is not None and dps.cv is not None and dps.cv > CV_WARN:
            notes.append(
                f"{c.name()}: docs/s varies by {dps.cv:.1%} across "
                f"{dps.n} repeats (over {CV_WARN:.0%}); treat small differences as noise."
            )
    return notes


def _short(message: str, limit: int = 120) -> str:
    first = message.strip().splitlines()[0] if message.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def failures_table(runs: Sequence[Run]) -> Table | None:
    """Runs that failed, or stopped part-way with an error: what broke, where, and how far they got."""
    rows = []
    for run in runs:
        r = run.result
        if r.status == "completed" or (r.status == "partial" and r.error is None):
            continue
        rows.append(_failure_row(r))
    if not rows:
        return None
    columns = [
        Column("scenario", "Scenario", _scenario),
        Column("image", "Image", text("image")),
        *_present(launch_column(rows)),
        Column("gpu", "GPU", text("gpu")),
        Column("batch", "Batch", text("batch"), numeric=True),
        *_present(cap_column(rows)),
        Column("status", "Status", text("status")),
        Column("error_class", "Error", text("error_class")),
        Column("error_message", "Message", text("error_message")),
        Column(
            "documents_done",
            "Docs done",
            lambda r: (
                f"{r['documents_done']}/{r['documents_total']}" if r["documents_total"] else str(r["documents_done"])
            ),
            numeric=True,
        ),
        Column("run_id", "Run", text("run_id")),
    ]
    return Table(columns, rows)


def _failure_row(r: RunResult) -> Row:
    """A failed run as raw values; ``kind`` tells it apart from a cell and a matrix cell never run."""
    executor, image_id = launch_of(r)
    return {
        "kind": "failed",
        "run_id": r.run_id,
        "scenario": r.config.scenario,
        "image": r.config.image,
        "gpu": gpu_of(r),
        "batch": batch_label([r]),
        "batch_requested": r.config.batch_size,
        "batch_final": r.batching.final,
        "status": r.status,
        "error_class": r.error.error_class if r.error else None,
        "error_message": _short(r.error.message) if r.error else None,
        "documents_done": r.metrics.documents,
        "documents_total": r.dataset.documents if r.dataset else r.config.limit,
        "oom_events": len(r.batching.oom_events),
        **_conditions(r.config.scenario, ran_dtype(r), memory_cap(r), executor, image_id),
        **_peaks([r]),
    }


def failures_footnotes(table: Table | None) -> list[str]:
    """What the failures table's Mem cap and Executor columns and a marked scenario mean, where shown."""
    return [] if table is None else condition_footnotes(table.rows, cells=False)


def dropped_table(dropped: Sequence[Dropped]) -> Table | None:
    """Matrix cells a rule refused before launch, with the reason: the study's "could not run" rows."""
    if not dropped:
        return None
    rows = [
        {
            "kind": "not_run",
            "matrix": d.matrix_id,
            "image": d.image,
            "scenario": d.scenario,
            "gpu": d.gpu,
            "batch": d.batch_size,
            "reason": d.reason,
        }
        for d in sorted(dropped, key=lambda d: (d.gpu, d.image, d.scenario, d.batch_size))
    ]
    columns = [
        Column("scenario", "Scenario", text("scenario")),
        Column("image", "Image", text("image")),
        Column("gpu", "GPU", text("gpu")),
        Column("batch", "Batch", text("batch"), numeric=True),
        Column("reason", "Why it was not run", text("reason")),
        Column("matrix", "Matrix", text("matrix")),
    ]
    return Table(columns, rows)


def datasets_table(runs: Sequence[Run]) -> Table | None:
    """Which dataset each cell used, when the runs did not all use the same one; None when they did."""
    groups: dict[tuple[str, str, str, str, str], list[RunResult]] = {}
    for run in runs:
        r = run.result
        if r.dataset is not None:
            key = (r.dataset.sha256, gpu_of(r), r.config.image, r.config.scenario, str(r.config.batch_size))
            groups.setdefault(key, []).append(r)
    if len({key[0] for key in groups}) < 2:
        return None
    rows = []
    for (sha, gpu, image, scenario, _), results in sorted(groups.items()):
        ds = results[0].dataset
        assert ds is not None
        rows.append(
            {
                "sha256": sha,
                "dataset": ds.path,
                "documents": ds.documents,
                "gpu": gpu,
                "image": image,
                "scenario": scenario,
                "batch": batch_label(results),
                "runs": len(results),
                "status": ", ".join(sorted({r.status for r in results})),
                "run_ids": [r.run_id for r in results],
            }
        )
    columns = [
        Column("sha256", "Dataset sha256", lambda r: r["sha256"][:12]),
        Column("dataset", "File", lambda r: PurePath(r["dataset"]).name),
        Column("documents", "Docs", text("documents"), numeric=True),
        Column("gpu", "GPU", text("gpu")),
        Column("image", "Image", text("image")),
        Column("scenario", "Scenario", text("scenario")),
        Column("batch", "Batch", text("batch"), numeric=True),
        Column("runs", "Runs", text("runs"), numeric=True),
        Column("status", "Status", text("status")),
    ]
    return Table(columns, rows)


def datasets_by_gpu(table: Table) -> list[str]:
    """Per GPU, whether its own table compares like with like: what matters most when reading it."""
    hashes: dict[str, set[str]] = {}
    for row in table.rows:
        hashes.setdefault(row["gpu"], set()).add(row["sha256"][:12])
    return [
        f"{gpu}: one dataset ({next(iter(h))}), so its table compares like with like."
        if len(h) == 1
        else f"{gpu}: {len(h)} datasets ({', '.join(sorted(h))}): its rows summarized different documents."
        for gpu, h in sorted(hashes.items())
    ]
