"""Assemble the report: which sections, in what order, from the loaded runs.

The order follows the questions a reader brings: can these numbers be compared at all (datasets),
what is fastest per GPU and did quality hold (results, gate, plots), what does it cost, and what broke.
"""

from __future__ import annotations

from collections import Counter

from runner.contract import catalog
from runner.contract.aggregate import interrupted
from runner.contract.errors import UserError
from runner.report import plots
from runner.report.cells import Cell, Work, gpu_of, group_cells, shown_values, work_differences
from runner.report.document import Report, Section, counted
from runner.report.gate import quality_gate
from runner.report.loading import Loaded, Run
from runner.report.serving import serving_section, split
from runner.report.tables import (
    datasets_by_gpu,
    datasets_table,
    dropped_table,
    failures_footnotes,
    failures_table,
    results_footnotes,
    results_table,
)


def _gpu_title(gpu: str) -> str:
    try:
        return f"{gpu} ({catalog.get_gpu(gpu).name})"
    except UserError:
        return gpu


def _failures_paragraphs(runs: list[Run]) -> list[str]:
    """What the failures table cannot say in a cell: an interrupted run is listed there because it did not
    finish, yet nothing about its cell failed (it may not have reached its first document)."""
    stopped = sum(1 for r in runs if interrupted(r.result))
    if not stopped:
        return []
    were, it = ("was", "it") if stopped == 1 else ("were", "each")
    return [
        f"{counted(stopped, 'run')} {were} interrupted (Ctrl-C or SIGTERM): stopped by a person, not failed by "
        f"its cell; the documents done are kept, and `runner launch --resume RUN-DIR` finishes {it}."
    ]


def _summary(loaded: Loaded, cells: list[Cell]) -> list[str]:
    lines = [_runs_line(loaded, cells)] if loaded.runs else ["No run has finished yet."]
    if loaded.dropped:
        n = len(loaded.dropped)
        were, them = ("was", "it") if n == 1 else ("were", "them")
        lines.append(f"{counted(n, 'matrix cell')} {were} not run: a rule refused {them} (see Cells not run).")
    return lines


def _runs_line(loaded: Loaded, cells: list[Cell]) -> str:
    """'5 runs on cpu: 4 completed in 3 cells, 1 failed.' Only completed runs make cells (repeats fold)."""
    statuses = Counter(run.result.status for run in loaded.runs)
    parts = [f"{statuses['completed']} completed in {counted(len(cells), 'cell')}"] if cells else []
    parts += [f"{statuses[s]} {s}" for s in ("partial", "failed") if statuses[s]]
    gpus = sorted({gpu_of(run.result) for run in loaded.runs})
    return f"{counted(len(loaded.runs), 'run')} on {', '.join(gpus)}: {', '.join(parts)}."


def work_warning(cells: list[Cell], differing: list[Work]) -> str | None:
    """What the completed runs did not all share. Rows that differ in it can look alike (the same
    scenario, image and batch) yet do not compare, so the reader hears it before the first table."""
    if not differing:
        return None
    results = [r for c in cells for r in c.results]
    what = "; ".join(f"{w.what}: {', '.join(shown_values(w, results))}" for w in differing)
    columns = ", ".join(w.header for w in differing)
    return (
        f"the runs did not all do the same work ({what}). Rows that differ in it do not compare: "
        f"the tables show it ({columns}) and keep such rows apart."
    )


def _lead3(cells: list[Cell]) -> float | None:
    scores = [s.mean for c in cells if (s := c.rouge("rouge1", lead3=True)) is not None]
    return scores[0] if scores and len({c.key.dataset for c in cells}) == 1 else None


def _gpu_section(
    gpu: str,
    device: str | None,
    cells: list[Cell],
    gates,
    reference: str | None,
    style: plots.Style | None,
    differing: list[Work],
) -> Section:
    """One GPU type's table and plots; ``device``: the detected device they hold, where runs of that type
    ran on more than one (two CPU models), each then a section of its own."""
    devices = [device] if device else sorted({c.key.device for c in cells})
    table = results_table(cells, gates, differing)
    place = f"{gpu} · {device}" if device else gpu
    section = Section(
        f"GPU: {_gpu_title(gpu)}" + (f" · {device}" if device else ""),
        paragraphs=[f"Device as detected: {', '.join(devices)}."],
        table=table,
        footnotes=results_footnotes(cells, reference, table.rows),
        kind="results",
    )
    if style is not None:
        figures = (
            plots.throughput_vs_batch(place, cells, style),
            plots.quality_vs_speed(place, cells, _lead3(cells), style),
        )
        for figure in figures:
            if figure is not None:
                section.figures.append(figure)
    return section


def build_report(loaded: Loaded, reference: str | None = None, with_plots: bool = True) -> Report:
    """The whole report; ``with_plots`` draws figures when matplotlib is installed."""
    offline, serving = split(loaded.runs)
    cells = group_cells(offline)  # serving runs are per load level: their own section, never a cell
    gates = quality_gate(cells, reference)
    summary = _summary(loaded, cells)
    if serving:
        are = "is a serving run" if len(serving) == 1 else "are serving runs"
        summary.append(f"{len(serving)} of them {are}: shown per load level under Serving, not as cells.")
    # Across the whole report, not per GPU: each table then shows the column a reader compares tables by.
    differing = work_differences(r for c in cells for r in c.results)
    warning = work_warning(cells, differing)
    warnings = [warning] if warning else []
    summary += [f"Warning: {w}" for w in warnings]
    if with_plots and not plots.available():
        summary.append("Plots omitted: matplotlib is not installed (pip install 'sumbench[report]').")
        with_plots = False
    style = plots.Style.for_cells(cells) if with_plots else None
    sections = []
    datasets = datasets_table(loaded.runs)
    if datasets is not None:
        sections.append(
            Section(
                "Warning: runs used different datasets",
                paragraphs=[
                    "Not every run summarized the same documents (different dataset sha256). Rows are never "
                    "averaged across datasets and the quality gate only compares runs on the same one; "
                    "compare speed across datasets with care.",
                    *datasets_by_gpu(datasets),
                ],
                table=datasets,
                kind="datasets",
            )
        )
    for gpu in sorted({c.key.gpu for c in cells}):
        devices = sorted({c.key.device for c in cells if c.key.gpu == gpu})
        for device in devices:
            part = [c for c in cells if c.key.gpu == gpu and c.key.device == device]
            shown = device if len(devices) > 1 else None
            sections.append(_gpu_section(gpu, shown, part, gates, reference, style, differing))
    if (served := serving_section(serving, cells, reference, with_plots)) is not None:
        sections.append(served)
    if with_plots and cells:
        cost = plots.cost_per_gpu(cells, style)
        sections.append(
            Section(
                "Cost",
                paragraphs=[]
                if cost
                else ["No run has a price: pass --price-per-hour to `runner launch` (CPUs have none in the catalog)."],
                figures=[cost] if cost else [],
                kind="plots",
            )
        )
    failures = failures_table(loaded.runs)
    sections.append(
        Section(
            "Failed runs",
            paragraphs=_failures_paragraphs(loaded.runs) if failures else ["None: every run completed."],
            table=failures,
            footnotes=failures_footnotes(failures),
            kind="failures",
        )
    )
    dropped = dropped_table(loaded.dropped)
    if dropped is not None:
        sections.append(
            Section(
                "Cells not run",
                paragraphs=["A compatibility rule refused these matrix cells before launch; nothing ran."],
                table=dropped,
                kind="not_run",
            )
        )
    if loaded.warnings:
        sections.append(Section("Skipped folders", paragraphs=loaded.warnings))
    return Report("sumbench report", summary, sections, warnings)
