"""The report's tables: results per GPU (with the lead-3 baseline), failed runs, and datasets.

The results table follows the original study's: one row per cell, fastest first, with the numbers that
decide a deployment (throughput, quality, memory, money, energy) side by side, and an extractive lead-3
row so a reader sees what ROUGE a model must beat to be worth running at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from runner.console import fmt_bytes
from runner.repeats import CV_WARN
from runner.report.cells import (
    Cell,
    CellKey,
    Work,
    batch_label,
    gpu_of,
    model_label,
    prompt_label,
    work_differences,
)
from runner.report.document import Column, Row, Table, number, text
from runner.report.gate import THRESHOLD, GateResult
from runner.report.loading import Dropped, Run
from runner.schema import RunResult

SYNTHETIC_MARK = "†"
_WITH_STDEV = ("docs_per_second", "output_tokens_per_second")
_MEANS = (
    "latency_p50_s",
    "latency_p90_s",
    "avg_input_tokens",
    "avg_output_tokens",
    "cost_per_1k_docs_usd",
    "energy_per_doc_joules",
)
_ROUGE = ("rouge1", "rouge2", "rougeL")


def cell_row(cell: Cell, gate: GateResult | None) -> Row:
    """Everything the report knows about a cell, as raw values (CSV and JSON write these as they are)."""
    key = cell.key
    row: Row = {
        "kind": "cell",
        "gpu": key.gpu,
        "model": model_label(key.model),
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
    peaks = [r.metrics.peak_memory_bytes for r in cell.results if r.metrics.peak_memory_bytes is not None]
    row["peak_memory_bytes"] = max(peaks) if peaks else None
    device = [r.metrics.peak_device_memory_bytes for r in cell.results if r.metrics.peak_device_memory_bytes]
    row["peak_device_memory_bytes"] = max(device) if device else None
    row["quality_meaningful"] = cell.quality_meaningful
    row["gate"] = gate.verdict if gate else None
    row["gate_label"] = gate.label() if gate else None
    row["gate_ratio"] = gate.ratio if gate else None
    row["gate_reference"] = gate.reference if gate else None
    row["dataset_sha256"] = key.dataset
    row["max_new_tokens"] = key.max_new_tokens
    row["forced_output"] = key.forced_output
    row["prompt_template"] = key.prompt_template
    row["run_ids"] = [r.result.run_id for r in cell.runs]
    return row


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


def _memory(row: Row) -> str:
    return fmt_bytes(row.get("peak_memory_bytes"))


def _device_memory(row: Row) -> str:
    return fmt_bytes(row.get("peak_device_memory_bytes"))


def _latency(row: Row) -> str:
    """'1.412 / 1.450': a cell's per-batch latency at p50 and p90, the mean over its repeats."""
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
    rows += lead3_rows(cells)
    columns = [
        *(_work_column(w) for w in differing if w.key == "model"),
        Column("scenario", "Scenario", text("scenario")),
        Column("image", "Image", text("image")),
        Column("batch", "Batch", text("batch"), numeric=True),
        *(_work_column(w) for w in differing if w.key != "model"),
        Column("docs_per_second", "Docs/s", number("docs_per_second", ".3f"), numeric=True),
        Column("output_tokens_per_second", "Output tok/s", number("output_tokens_per_second", ".1f"), numeric=True),
        Column("latency_p50_s", "Latency p50/p90 s", _latency, numeric=True),
        Column("documents", "Docs", text("documents"), numeric=True),
        Column("avg_input_tokens", "In tok/doc", number("avg_input_tokens", ".1f"), numeric=True),
        Column("avg_output_tokens", "Out tok/doc", number("avg_output_tokens", ".1f"), numeric=True),
        _rouge("rouge1"),
        _rouge("rouge2"),
        _rouge("rougeL"),
        Column("gate_label", f"Gate (≥{THRESHOLD:.0%} ref)", text("gate_label")),
        Column("peak_memory_bytes", "Peak mem", _memory, numeric=True),
        Column("cost_per_1k_docs_usd", "$/1k docs", number("cost_per_1k_docs_usd", ".4f"), numeric=True),
        Column("energy_per_doc_joules", "J/doc", number("energy_per_doc_joules", ".1f"), numeric=True),
    ]
    if any(r.get("peak_device_memory_bytes") for r in rows):
        at = next(i for i, c in enumerate(columns) if c.key == "peak_memory_bytes") + 1
        columns.insert(at, Column("peak_device_memory_bytes", "GPU mem", _device_memory, numeric=True))
    if any(len(c.runs) > 1 for c in cells):
        columns.append(Column("runs", "Runs", text("runs"), numeric=True))
    return Table(columns, rows)


def results_footnotes(cells: Sequence[Cell], reference: str | None) -> list[str]:
    notes = []
    if any(not c.quality_meaningful for c in cells):
        notes.append(f"{SYNTHETIC_MARK} synthetic weights: output length was forced, so ROUGE is not meaningful.")
    if any(r.metrics.peak_device_memory_bytes for c in cells for r in c.results):
        notes.append(
            "Peak mem: torch's reserved memory in the worker (hf), or the whole GPU for a backend whose engine "
            "runs in its own process (vllm). GPU mem: the whole GPU through NVML, CUDA context included, for "
            "every backend: compare backends on that one."
        )
    ref = reference or "default (fp16) on a GPU, fp32 on a CPU"
    notes.append(
        f"Gate: ROUGE-1 at least {THRESHOLD:.0%} of the reference scenario ({ref}) on the same GPU, model, "
        "dataset, output length and prompt (MLPerf's rule for summarization)."
    )
    if any(len(c.runs) > 1 for c in cells):
        notes.append(
            "Cells with several runs show mean ± sample standard deviation over the repeats (latency: the mean); "
            "Peak mem and GPU mem: the largest of the repeats."
        )
    for c in cells:
        dps = c.metric("docs_per_second")
        if dps is not None and dps.cv is not None and dps.cv > CV_WARN:
            notes.append(
                f"{c.key.image}/{c.key.scenario} batch {c.batch}: docs/s varies by {dps.cv:.1%} across "
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
        total = r.dataset.documents if r.dataset else r.config.limit
        rows.append(
            {
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
                "documents_total": total,
                "oom_events": len(r.batching.oom_events),
            }
        )
    if not rows:
        return None
    columns = [
        Column("scenario", "Scenario", text("scenario")),
        Column("image", "Image", text("image")),
        Column("gpu", "GPU", text("gpu")),
        Column("batch", "Batch", text("batch"), numeric=True),
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


def dropped_table(dropped: Sequence[Dropped]) -> Table | None:
    """Matrix cells a rule refused before launch, with the reason: the study's "could not run" rows."""
    if not dropped:
        return None
    rows = [
        {
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
