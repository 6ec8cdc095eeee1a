"""The report's plots: throughput against batch size, quality against speed, and cost.

Each plot answers one deployment question: how far batching pays off per scenario; which cells are on
the Pareto front of ROUGE-1 and docs/s (nothing else is both faster and better); and what 1k documents
cost per GPU. Figures are drawn with matplotlib's object API on an Agg canvas, never pyplot, so that
reporting needs no display, touches no global backend state, and works in a headless container.
matplotlib is optional (the ``report`` extra); without it reports simply have no figures.
Cells crowd in the quality plot (batching barely moves ROUGE, and docs/s flattens at large batches), so
its batch-size labels are placed apart by ``labels.place_point_labels``.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

from runner.contract.weights import weights_kinds
from runner.report.cells import (
    Cell,
    CellKey,
    cap_label,
    model_label,
    output_length,
    prompt_label,
    short_image_id,
)
from runner.report.document import Figure
from runner.report.labels import PointLabel, place_point_labels

DPI = 110
# Marker areas (points²) in the quality plot: a cell, and the ring around a cell on the Pareto front. The
# radii (points, half the diameter plus the edge line) are how far a point label keeps away.
_POINT_SIZE = 36.0
_RING_SIZE = 130.0
_POINT_RADIUS = _POINT_SIZE**0.5 / 2 + 0.5
_RING_RADIUS = _RING_SIZE**0.5 / 2 + 1.0


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points that no other point beats on both x and y (higher is better on both), sorted by x."""
    front: list[tuple[float, float]] = []
    best_y = float("-inf")
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):
        if y > best_y:
            front.append((x, y))
            best_y = y
    return sorted(front)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-").lower() or "all"


@dataclass(frozen=True)
class Style:
    """Series names and colours for a whole report, so bf16 is one colour in every plot of it."""

    labels: dict[CellKey, str]
    colors: dict[str, str]

    @classmethod
    def for_cells(cls, cells: Sequence[Cell]) -> Style:
        """'scenario', qualified by image, model, output length and dataset only where one GPU ran the
        same scenario in two of them, so a label is as short as it can be and still names one series
        (two output lengths on one line would draw one curve through two kinds of work). Two things are
        always said: a substituted dtype ('bf16→fp16') and a memory cap ('(15.0 GiB cap)'), because a
        capped H200 or a T4's bf16 read as the real thing otherwise; the executor is said where one
        GPU ran a scenario under two."""
        images: dict[tuple[str, str], set[str]] = {}
        models: dict[tuple[str, str, str], set[str]] = {}
        work: dict[tuple[str, str, str, str], set[tuple[int, bool, str]]] = {}
        launches: dict[tuple[str, str, str], set[tuple[str, str]]] = {}
        for c in cells:
            images.setdefault((c.key.gpu, c.key.scenario), set()).add(c.key.image)
            models.setdefault((c.key.gpu, c.key.image, c.key.scenario), set()).add(model_label(c.key.model))
            series = (c.key.gpu, c.key.image, c.key.scenario, model_label(c.key.model))
            work.setdefault(series, set()).add((c.key.max_new_tokens, c.key.forced_output, c.key.dataset))
            launches.setdefault((c.key.gpu, c.key.image, c.key.scenario), set()).add((c.key.executor, c.key.image_id))
        by_image = any(len(v) > 1 for v in images.values())
        by_model = any(len(v) > 1 for v in models.values())
        by_length = any(len({(n, f) for n, f, _ in v}) > 1 for v in work.values())
        by_dataset = any(len({d for _, _, d in v}) > 1 for v in work.values())
        by_executor = any(len({e for e, _ in v}) > 1 for v in launches.values())
        by_build = any(len({i for e, i in v if e == ex}) > 1 for v in launches.values() for ex, _ in v)
        labels = {}
        for c in cells:
            scenario = c.scenario
            label = f"{c.key.image}/{scenario}" if by_image else scenario
            label = f"{model_label(c.key.model)} {label}" if by_model else label
            if by_length:
                label += f", {output_length(c.key.max_new_tokens, c.key.forced_output)}"
            if by_dataset:
                label += f", data {c.key.dataset[:8] or '?'}"
            if by_executor or by_build:
                label += f", {c.key.executor}"
                label += f" {short_image_id(c.key.image_id)}" if by_build and c.key.image_id else ""
            if c.key.memory_cap:
                label += f" ({cap_label(c.key.memory_cap)} cap)"
            labels[c.key] = label
        colors = {label: f"C{i % 10}" for i, label in enumerate(sorted(set(labels.values())))}
        return cls(labels, colors)


def _new_figure(width: float = 7.0, height: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig) -> bytes:
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


MARKERS = ("o", "s", "^", "D", "v", "P")
"""Markers of the lines one colour holds (a scenario's cells split by ``_series_labels``), in turn."""


def throughput_vs_batch(gpu: str, cells: Sequence[Cell], style: Style | None = None) -> Figure | None:
    """docs/s against the final batch size, one line per scenario, error bars over repeats."""
    style = style or Style.for_cells(cells)
    labels, colors = style.labels, style.colors
    plotted = [(c, dps, batch) for c in cells if (dps := c.metric("docs_per_second")) and (batch := c.final_batch)]
    if not plotted:
        return None
    lines = _series_labels([(c, batch) for c, _, batch in plotted], labels)
    series: dict[str, list[tuple[int, float, float]]] = {}
    for c, dps, batch in plotted:
        series.setdefault(lines[c.key], []).append((batch, dps.mean, dps.stdev))
    colors = {lines[c.key]: colors[labels[c.key]] for c, _, _ in plotted}
    fig, ax = _new_figure()
    drawn: Counter = Counter()  # lines already drawn in each colour: a split line keeps its colour, not its marker
    for label, points in sorted(series.items()):
        points.sort()
        xs, ys, errs = zip(*points, strict=True)
        marker = MARKERS[drawn[colors[label]] % len(MARKERS)]
        drawn[colors[label]] += 1
        ax.errorbar(
            xs, ys, yerr=errs if any(errs) else None, marker=marker, capsize=3, label=label, color=colors[label]
        )
    batches = sorted({p[0] for points in series.values() for p in points})
    if len(batches) > 1 and batches[-1] / batches[0] >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_xlabel("batch size (final)")
    ax.set_ylabel("documents / second")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Throughput vs batch size · {gpu}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return Figure(f"throughput-{_slug(gpu)}.png", f"Throughput vs batch size on {gpu}", _png(fig))


def _series_labels(cells: Sequence[tuple[Cell, int]], labels: dict) -> dict:
    """Each plotted cell's line: its style label, or where another cell of that label lands on the same
    final batch size (a fixed batch 4 and an auto run that settled on 4, or two prompts), the label with
    the cell's own name and prompt. A line then holds one point per batch size, never two it would join."""
    count = Counter((labels[c.key], batch) for c, batch in cells)
    out = {}
    for c, batch in cells:
        label = labels[c.key]
        if count[(label, batch)] > 1:
            prompt = f", prompt {prompt_label(c.key.prompt_template)}" if c.key.prompt_template else ""
            label = f"{label} [{c.name()}{prompt}]"
        out[c.key] = label
    return out


def quality_front(points: Sequence[tuple]) -> list[tuple[float, float]]:
    """The Pareto front of (docs/s, ROUGE-1, ..., meaningful) points: a point whose ROUGE means nothing
    (random or synthetic weights) is no trade-off to choose, so it is never on the front."""
    return pareto_front([(p[0], p[1]) for p in points if p[-1]])


def quality_vs_speed(
    gpu: str, cells: Sequence[Cell], lead3: float | None = None, style: Style | None = None
) -> Figure | None:
    """ROUGE-1 against docs/s for every cell, with the Pareto front drawn through the best trade-offs."""
    style = style or Style.for_cells(cells)
    labels, colors = style.labels, style.colors
    points = []
    for c in cells:
        dps, r1 = c.metric("docs_per_second"), c.rouge("rouge1")
        if dps is not None and r1 is not None:
            points.append((dps.mean, r1.mean, labels[c.key], f"bs {c.batch}", c.quality_meaningful))
    if not points:
        return None
    fig, ax = _new_figure()
    shown: set[str] = set()
    for x, y, label, _, meaningful in points:
        ax.scatter(
            [x],
            [y],
            marker="o" if meaningful else "x",
            s=_POINT_SIZE,
            zorder=3,
            color=colors[label],
            label=None if label in shown else label,
        )
        shown.add(label)
    front = quality_front(points)
    if front:
        ax.plot([p[0] for p in front], [p[1] for p in front], linestyle="--", color="black", linewidth=1, zorder=2)
        ax.scatter(
            [p[0] for p in front],
            [p[1] for p in front],
            s=_RING_SIZE,
            facecolors="none",
            edgecolors="black",
            linewidths=1,
            zorder=4,
            label="Pareto front",
        )
    if lead3 is not None:
        ax.axhline(lead3, color="grey", linestyle=":", label=f"lead-3 baseline ({lead3:.3f})")
    speeds = [p[0] for p in points]
    if min(speeds) > 0 and max(speeds) / min(speeds) > 10:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.1, y=0.1)
    ax.set_xlabel("documents / second")
    ax.set_ylabel("ROUGE-1 F1")
    ax.set_title(f"Quality vs speed · {gpu}")
    ax.grid(alpha=0.3)
    # Batch sizes of one scenario sit in a near-horizontal row (batching barely changes ROUGE) and bunch
    # up where throughput saturates, so labels are placed apart rather than at one fixed offset; the
    # front's labels choose first, as the ones a reader looks for.
    on_front = set(front)
    ordered = sorted(points, key=lambda p: ((p[0], p[1]) not in on_front, p[0], p[1]))
    place_point_labels(
        fig,
        ax,
        [
            PointLabel(x, y, batch, _RING_RADIUS if (x, y) in on_front else _POINT_RADIUS, colors[label])
            for x, y, label, batch, _ in ordered
        ],
    )
    if not all(p[4] for p in points):  # a legend entry for the marker, not for a series
        kinds = " or ".join(weights_kinds(r for c in cells for r in c.results))
        ax.scatter([], [], marker="x", color="grey", label=f"{kinds}: ROUGE not meaningful")
    ax.legend(fontsize="small")  # after the labels, so that "best" steers clear of them too
    return Figure(f"quality-vs-speed-{_slug(gpu)}.png", f"ROUGE-1 vs docs/s on {gpu}, with the Pareto front", _png(fig))


def cost_per_gpu(cells: Sequence[Cell], style: Style | None = None) -> Figure | None:
    """$ per 1k documents per GPU and scenario, at each scenario's cheapest batch size."""
    style = style or Style.for_cells(cells)
    labels, colors = style.labels, style.colors
    best: dict[tuple[str, str], float] = {}
    for c in cells:
        cost = c.metric("cost_per_1k_docs_usd")
        if cost is not None:
            k = (c.key.gpu, labels[c.key])
            best[k] = min(best.get(k, cost.mean), cost.mean)
    if not best:
        return None
    fig, _ = draw_cost(best, colors)
    return Figure("cost-per-1k-docs.png", "$ per 1k documents per GPU and scenario", _png(fig))


def draw_cost(best: dict[tuple[str, str], float], colors: dict[str, str]):
    """The cost bars: one group per GPU, one bar per series at its cheapest; returns the figure and axes."""
    gpus = sorted({g for g, _ in best})
    scenarios = sorted({s for _, s in best})
    legend = 2.0  # inches beside the axes for the legend, so the bars keep the width they need
    fig, ax = _new_figure(max(7.0, 1.5 + 0.5 * len(gpus) * len(scenarios)) + legend)
    width = (0.6 if len(scenarios) < 4 else 0.8) / len(scenarios)
    for i, scenario in enumerate(scenarios):
        xs = [g + (i - (len(scenarios) - 1) / 2) * width for g in range(len(gpus))]
        ys = [best.get((gpu, scenario), 0.0) for gpu in gpus]
        bars = ax.bar(xs, ys, width, label=scenario, color=colors[scenario])
        ax.bar_label(bars, [f"{y:.3g}" if y else "" for y in ys], fontsize="x-small", padding=2)
    ax.set_xticks(range(len(gpus)), gpus)
    ax.set_xlim(-0.7, len(gpus) - 0.3)
    ax.set_xlabel("GPU (each scenario at its cheapest batch size)")
    ax.set_ylabel("USD per 1,000 documents")
    ax.set_title("Cost per 1k documents")
    ax.grid(axis="y", alpha=0.3)
    # Beside the axes, not inside them: "best" still lands on a bar's value label when every spot is taken.
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig, ax
