"""Report cells and figures from copies of one real run: keyed by the device as detected, one point per
line and batch size, a Pareto front of meaningful points only, a cost legend clear of the bar labels, and
an honest gate word for rows whose ROUGE means nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from test_report import edited_copy

from runner.contract import rundir
from runner.contract.schema import Rouge, RunResult
from runner.report.build import build_report
from runner.report.cells import group_cells
from runner.report.gate import quality_gate
from runner.report.loading import find_runs
from runner.report.plots import Style, _series_labels, draw_cost, quality_front


def on_device(name: str) -> Callable[[RunResult], None]:
    def edit(r: RunResult) -> None:
        r.environment.device.name = name

    return edit


def test_two_cpu_models_are_two_cells_and_two_sections(finished_run, tmp_path):
    edited_copy(finished_run, tmp_path, "amd", on_device("AMD EPYC 7B13 (2 cores)"))
    edited_copy(finished_run, tmp_path, "intel", on_device("Intel Xeon Platinum 8481C (2 cores)"))
    loaded = find_runs([tmp_path])
    cells = group_cells(loaded.runs)
    assert len(cells) == 2 and {c.key.device for c in cells} == {
        "AMD EPYC 7B13 (2 cores)",
        "Intel Xeon Platinum 8481C (2 cores)",
    }
    titles = [s.title for s in build_report(loaded, with_plots=False).sections if s.kind == "results"]
    assert titles == [
        "GPU: cpu (CPU (no GPU)) · AMD EPYC 7B13 (2 cores)",
        "GPU: cpu (CPU (no GPU)) · Intel Xeon Platinum 8481C (2 cores)",
    ]


def test_one_device_keeps_its_one_section(finished_run, tmp_path):
    edited_copy(finished_run, tmp_path, "a")
    edited_copy(finished_run, tmp_path, "b")
    (results,) = [s for s in build_report(find_runs([tmp_path]), with_plots=False).sections if s.kind == "results"]
    assert results.title == "GPU: cpu (CPU (no GPU))" and len(group_cells(find_runs([tmp_path]).runs)) == 1


def test_a_line_holds_one_point_per_batch_size(finished_run, tmp_path):
    final = rundir.read_result(finished_run).batching.final

    def auto(r: RunResult) -> None:
        r.config.batch_size = "auto"

    edited_copy(finished_run, tmp_path, "fixed")
    edited_copy(finished_run, tmp_path, "auto", auto)
    cells = group_cells(find_runs([tmp_path]).runs)
    assert len(cells) == 2 and {c.final_batch for c in cells} == {final}
    lines = _series_labels([(c, c.final_batch) for c in cells], Style.for_cells(cells).labels)
    assert len(set(lines.values())) == 2, lines


def test_the_pareto_front_leaves_out_points_whose_rouge_means_nothing():
    points = [(10.0, 0.01, "a", "bs 8", False), (2.0, 0.30, "b", "bs 1", True), (1.0, 0.20, "c", "bs 1", True)]
    assert quality_front(points) == [(2.0, 0.30)]


def test_the_cost_legend_is_clear_of_every_bar_label():
    best = {
        (gpu, s): v
        for gpu in ("a100-80gb", "h100", "t4")
        for s, v in (("default", 0.9), ("4-bit", 0.7), ("vllm", 0.85))
    }
    fig, ax = draw_cost(best, {"default": "C0", "4-bit": "C1", "vllm": "C2"})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    labels = [t.get_window_extent(renderer) for t in ax.texts if t.get_text()]
    assert len(labels) == 9 and not any(legend.overlaps(box) for box in labels)
    # Beside the axes, so no bar or label can ever be under it, however many series and GPUs.
    assert not legend.overlaps(ax.get_window_extent(renderer))
    assert fig.get_window_extent(renderer).contains(legend.x1 - 1, legend.y1 - 1), "and still on the figure"


def test_a_random_weights_reference_row_says_not_gated(finished_run, tmp_path):
    edited_copy(finished_run, tmp_path, "random")
    assert not rundir.read_result(finished_run).quality_meaningful, "the tiny model is marked random"
    (verdict,) = quality_gate(group_cells(find_runs([tmp_path]).runs)).values()
    assert verdict.label() == "not gated (random weights)"


@pytest.mark.parametrize("meaningful", [True])
def test_a_trained_reference_row_is_still_the_reference(finished_run, tmp_path, meaningful):
    def trained(r: RunResult) -> None:
        r.metrics.rouge = Rouge(rouge1=0.3, rouge2=0.1, rougeL=0.2)
        r.quality_meaningful = meaningful

    edited_copy(finished_run, tmp_path, "trained", trained)
    (verdict,) = quality_gate(group_cells(find_runs([tmp_path]).runs)).values()
    assert verdict.label() == "reference"
