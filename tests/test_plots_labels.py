"""Point labels of the quality-vs-speed plot stay readable when cells crowd together.

Batching barely changes ROUGE, so one scenario's batch sizes sit in a near-horizontal row, and where
throughput saturates they bunch up; two scenarios that differ only in an attention kernel land on top of
each other. Labels at one fixed offset then print over each other. These tests render such a report
through the real plotting code and measure the labels as drawn in the saved PNG.
"""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("matplotlib")

from matplotlib.path import Path as MplPath
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

from runner.contract import rundir
from runner.contract.schema import Rouge
from runner.paths import REPO_ROOT
from runner.report import plots
from runner.report.cells import Cell, group_cells
from runner.report.loading import Run

# A real finished run; every cell below is a copy of it with the measurements a GPU sweep would give.
SOURCE = REPO_ROOT / "results/reference/cpu-tiny-2026-11-26/20261126-091440-cpu-cpu-fp32-bs4"

# (image, scenario, batch size, docs/s, ROUGE-1): hf saturates past batch 32, flash-attn is the same
# within a few percent, vLLM flattens out at the top, and AWQ costs a little quality.
HF_SWEEP = [(1, 0.41), (4, 1.45), (8, 2.6), (16, 4.1), (32, 5.6), (64, 6.0)]
VLLM_SWEEP = [(8, 3.1), (32, 11.8), (64, 16.9), (128, 18.2), (256, 18.6)]
CROWD: list[tuple[str, str, int, float, float]] = [
    *[("hf", "default", b, d, 0.3812 + 0.0004 * (b % 3)) for b, d in HF_SWEEP],
    *[("hf", "flash-attn", b, d * 1.06, 0.3809 + 0.0003 * (b % 2)) for b, d in HF_SWEEP],
    *[("vllm", "vllm", b, d, 0.3795 + 0.0002 * (b % 5)) for b, d in VLLM_SWEEP],
    *[("vllm", "awq", b, d, 0.3721 + 0.0003 * (b % 3)) for b, d in [(8, 2.2), (32, 7.5), (64, 9.0)]],
    # Two scenarios that measured exactly the same: one spot, two labels.
    *[("hf", scenario, 32, 5.6, 0.3812) for scenario in ("sdpa", "eager")],
]


def crowded_cells(
    rows: list[tuple[str, str, int, float, float]], gpu: str = "h100", price_per_hour: float = 2.0
) -> list[Cell]:
    base = rundir.read_result(SOURCE)
    runs = []
    for i, (image, scenario, batch, dps, rouge1) in enumerate(rows):
        r = base.model_copy(deep=True)
        r.run_id = r.config.run_id = f"crowd-{gpu}-{i}"
        r.config.gpu = r.environment.device.catalog_gpu = gpu
        r.config.image, r.config.scenario, r.config.batch_size = image, scenario, batch
        # The fp16 an H100 run of these scenarios loads, not the source's CPU fp32 ("default→fp32" otherwise).
        r.config.dtype = "float16"
        if r.backend is not None:
            r.backend.dtype = "float16"
        r.batching.requested = r.batching.final = batch
        r.metrics.docs_per_second = dps
        r.metrics.rouge = Rouge(rouge1=rouge1, rouge2=rouge1 / 2, rougeL=rouge1 * 0.8)
        r.metrics.cost_per_1k_docs_usd = price_per_hour / 3600 / dps * 1000
        runs.append(Run(SOURCE, r))
    return group_cells(runs)


@pytest.fixture
def saved_figures(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every Matplotlib figure the plots save from now on, after saving, so that what is measured is
    exactly what the PNG has."""
    saved = []
    real_png = plots._png

    def keep(fig) -> bytes:
        png = real_png(fig)
        saved.append(fig)
        return png

    monkeypatch.setattr(plots, "_png", keep)
    return saved


@pytest.fixture
def rendered(saved_figures: list):
    """Render the quality plot as the report does; hand back the saved figure and its PNG."""

    def render(cells: list[Cell]):
        figure = plots.quality_vs_speed("h100", cells, lead3=0.344)
        assert figure is not None
        return saved_figures[-1], figure.png

    return render


def annotations(fig) -> list[Annotation]:
    (ax,) = fig.axes
    return [t for t in ax.texts if isinstance(t, Annotation)]


def label_boxes(fig) -> list[tuple[str, Bbox]]:
    """Each label's text as drawn; ``Text``'s extent, as an annotation's own would take in its leader line."""
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), Text.get_window_extent(t, renderer)) for t in annotations(fig)]


def marker_centres(fig) -> list[tuple[float, float]]:
    (ax,) = fig.axes
    return [tuple(xy) for c in ax.collections for xy in c.get_offset_transform().transform(c.get_offsets())]


def test_crowded_labels_do_not_overlap_and_stay_on_the_plot(rendered):
    cells = crowded_cells(CROWD)
    fig, _ = rendered(cells)
    boxes = label_boxes(fig)
    assert sorted(text for text, _ in boxes) == sorted(f"bs {b}" for _, _, b, _, _ in CROWD)
    clashes = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]
    assert clashes == [], f"labels print over each other: {clashes}"
    frame = fig.axes[0].get_window_extent(fig.canvas.get_renderer())
    outside = [text for text, box in boxes if not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1))]
    assert outside == [], f"labels cut off at the edge of the plot: {outside}"
    covered = [text for text, box in boxes for x, y in marker_centres(fig) if box.contains(x, y)]
    assert covered == [], f"labels hide a point: {covered}"
    # A label moved away from a crowd is joined to its point; that line must not strike through another.
    led = [(i, t) for i, t in enumerate(annotations(fig)) if t.arrow_patch is not None]
    assert led, "this crowd needs leader lines; without any the test no longer checks them"
    struck = [
        (t.get_text(), other)
        for i, t in led
        for j, (other, box) in enumerate(boxes)
        if i != j
        and MplPath([fig.axes[0].transData.transform(t.xy), boxes[i][1].corners().mean(axis=0)]).intersects_bbox(box)
    ]
    assert struck == [], f"leader lines cross labels: {struck}"


def test_label_placement_is_deterministic(rendered):
    """The same results give the same PNG, byte for byte, so a regenerated report diffs cleanly."""
    cells = crowded_cells(CROWD)
    assert rendered(cells)[1] == rendered(cells)[1]


def test_labels_of_well_spread_points_sit_beside_them(rendered):
    """Where there is room nothing moves: each label is next to its point, without a leader line."""
    rows = [("hf", "default", b, d, r) for b, d, r in [(1, 0.4, 0.30), (8, 2.6, 0.34), (64, 6.0, 0.38)]]
    fig, _ = rendered(crowded_cells(rows))
    labels = annotations(fig)
    assert len(labels) == 3
    assert all(a.arrow_patch is None for a in labels)
    assert all(max(abs(v) for v in a.xyann) < 20 for a in labels), [a.xyann for a in labels]


def test_cost_bar_labels_stay_apart_with_many_scenarios(saved_figures):
    """The cost plot widens with its bars, so even three GPUs of eight scenarios keep their value labels
    apart (a guard: this plot has no crowding problem today, nor has the throughput plot any labels)."""
    rows = [("hf", f"scenario-{i}", 8, 0.9 + 1.7 * i, 0.38) for i in range(8)]
    cells = [c for gpu, price in (("a10g", 1.01), ("h100", 3.99), ("l4", 0.8)) for c in crowded_cells(rows, gpu, price)]
    assert plots.cost_per_gpu(cells) is not None
    fig = saved_figures[-1]
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts if t.get_text()]
    assert len(boxes) == 24
    assert [(a, b) for a, b in itertools.combinations(boxes, 2) if a.overlaps(b)] == []


def test_lines_of_one_colour_in_the_throughput_plot_have_their_own_markers(saved_figures):
    """A fixed batch 4 and an auto run that settled on 4 are two lines of one scenario's colour: the legend
    tells them apart only if their markers differ."""
    cells = crowded_cells(
        [("hf", "default", 4, 1.45, 0.38), ("hf", "default", 8, 2.6, 0.38), ("hf", "sdpa", 4, 1.5, 0.38)]
    )
    auto = crowded_cells([("hf", "default", 4, 1.3, 0.38)])[0]
    for run in auto.runs:
        run.result.config.batch_size = run.result.batching.requested = "auto"
    cells = group_cells([run for c in [*cells, auto] for run in c.runs])
    assert plots.throughput_vs_batch("h100", cells) is not None
    (ax,) = saved_figures[-1].axes
    styles = [(c.lines[0].get_color(), c.lines[0].get_marker()) for c in ax.containers]  # one per line
    by_colour: dict[str, list[str]] = {}
    for colour, marker in styles:
        by_colour.setdefault(colour, []).append(marker)
    # default: its batch-8 line, and the two cells that both landed on batch 4, each a line of its own name
    assert sorted(len(m) for m in by_colour.values()) == [1, 3], styles
    assert all(len(set(m)) == len(m) for m in by_colour.values()), styles
