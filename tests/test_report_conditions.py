"""How a run ran, beyond its cell's name, in `runner report` and `runner compare`: a memory cap, the executor
(and image build), the dtype that actually ran, and which memory peak a column shows; plus the report's
output formats (an --out suffix it cannot write, matrix cells that never ran).

Every run here is a committed real run under results/reference/ (H200 runs under a 15 GiB
--gpu-memory-limit and on the whole card; tiny CPU runs), copied and, where a test needs a condition no
committed run has (a Docker run, a T4), edited the way `edited_copy` edits the tiny runs.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import one_line
from test_report import chain, edited_copy, in_process, on_gpu

from runner.contract import rundir
from runner.contract.schema import ErrorInfo, RunResult
from runner.paths import REPO_ROOT
from runner.report.build import build_report
from runner.report.cells import group_cells
from runner.report.loading import find_runs

REFERENCE = REPO_ROOT / "results" / "reference"
H200 = REFERENCE / "h200-2026-11-26" / "runs"
CAPPED = H200 / "limit-bs001"  # batch 1 under --gpu-memory-limit 15GiB, completed
CAPPED_OOM = H200 / "limit-bs005"  # batch 5 under the same cap, out of memory
AUTO = H200 / "auto"  # the whole card, --batch-size auto: 77.2 GiB allocated, 138.7 GiB reserved
CPU = REFERENCE / "cpu-tiny-2026-11-26"
CPU_BF16 = CPU / "20261126-091523-cpu-cpu-bf16-bs4"
CAP = 15 << 30


def uncapped(r: RunResult) -> None:
    r.config.gpu_memory_limit_bytes = r.environment.device.memory_limit_bytes = None


def in_docker(image_id: str) -> Callable[[RunResult], None]:
    """The run as the Docker executor records one: its launch, with the id of the image it ran in."""

    def edit(r: RunResult) -> None:
        for launch in (r.config.launch, r.environment.launch):
            launch.executor, launch.image, launch.image_id = "docker", "sumbench/hf:0.1.0", image_id

    return edit


def table_of(text: str, heading: str) -> list[str]:
    """The Markdown table lines under ``## heading``."""
    part = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return [line for line in part.splitlines() if line.startswith("|")]


def shown(lines: list[str]) -> list[dict[str, str]]:
    """A Markdown table's body rows as {header: cell}."""
    split = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    return [dict(zip(split[0], row, strict=True)) for row in split[2:]]


def report_md(*paths: Path) -> str:
    proc = in_process(["report", *map(str, paths)])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# --- 1. a memory cap ---------------------------------------------------------------------------------------


@pytest.fixture
def cap_pair(tmp_path) -> Path:
    """The capped H200 batch-1 run and a copy of it without the cap: the same cell name, two settings."""
    root = tmp_path / "cap"
    root.mkdir()
    shutil.copytree(CAPPED, root / "capped")
    edited_copy(CAPPED, root, "whole-card", uncapped)
    return root


def test_a_capped_run_is_its_own_cell_and_says_so(cap_pair):
    text = report_md(cap_pair)
    assert "2 runs on h200: 2 completed in 2 cells." in text
    rows = shown(table_of(text, "GPU: h200"))
    by_cap = {r["Mem cap"]: r for r in rows if r["Scenario"] == "default"}
    assert set(by_cap) == {"15.0 GiB", "none"}
    assert "±" not in by_cap["15.0 GiB"]["Docs/s"] and "Runs" not in rows[0], "never folded as repeats"
    assert "Mem cap: the --gpu-memory-limit the worker ran under (none: the whole card)." in text

    csv_rows = list(csv.DictReader(io.StringIO(in_process(["report", str(cap_pair), "--format", "csv"]).stdout)))
    caps = {r["run_ids"]: r["gpu_memory_limit_bytes"] for r in csv_rows if r["kind"] == "cell"}
    assert caps == {"limit-bs001": str(CAP), "whole-card": ""}
    # Where no row is capped, there is no column to read past.
    assert "Mem cap" not in report_md(AUTO) and "Mem cap" not in report_md(CPU)


def test_the_cap_is_in_plot_legends_and_the_failures_table(cap_pair):
    from runner.report.plots import Style

    labels = Style.for_cells(group_cells(find_runs([cap_pair]).runs)).labels.values()
    assert sorted(labels) == ["default", "default (15.0 GiB cap)"]
    # The published H200 report: batch 1 capped and auto on the whole card, and the capped out-of-memory run.
    text = report_md(H200)
    rows = {r["Batch"]: r["Mem cap"] for r in shown(table_of(text, "GPU: h200")) if r["Scenario"] == "default"}
    assert rows == {"1": "15.0 GiB", "auto→160": "none"}
    (failed,) = shown(table_of(text, "Failed runs"))
    assert (failed["Batch"], failed["Mem cap"], failed["Run"]) == ("5", "15.0 GiB", "limit-bs005")


def test_compare_shows_the_cap_and_the_executor_as_settings(cap_pair, tmp_path):
    """A cap is a setting like the batch size: compared, not refused, and shown in the config table."""
    proc = in_process(["compare", str(cap_pair / "whole-card"), str(cap_pair / "capped")])
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^\| GPU memory cap \| none \| 15\.0 GiB \| ≠ \|$", proc.stdout, re.M)
    assert re.search(r"^\| executor \| process \(host Python\) \| process \(host Python\) \|  \|$", proc.stdout, re.M)
    docker = edited_copy(CAPPED, tmp_path, "docker", in_docker("sha256:" + "ab" * 32))
    proc = in_process(["compare", str(cap_pair / "capped"), str(docker)])
    assert re.search(r"^\| executor \| process \(host Python\) \| docker abababababab \| ≠ \|$", proc.stdout, re.M)
    assert re.search(r"^\| peak allocated \| 13\.0 GiB \| 13\.0 GiB \|", proc.stdout, re.M)


# --- 2. the executor and the image build -----------------------------------------------------------------


def test_runs_in_other_environments_are_never_folded(tmp_path):
    root = tmp_path / "executors"
    root.mkdir()
    shutil.copytree(CAPPED, root / "process")
    edited_copy(CAPPED, root, "docker-a", in_docker("sha256:" + "a" * 64))
    text = report_md(root)
    assert "2 runs on h200: 2 completed in 2 cells." in text
    rows = shown(table_of(text, "GPU: h200"))
    assert sorted(r["Executor"] for r in rows if r["Scenario"] == "default") == ["docker", "process"]
    assert "Executor: where the worker ran" in text

    # Two builds of one image are two environments too: the column then names each build.
    edited_copy(CAPPED, root, "docker-b", in_docker("sha256:" + "b" * 64))
    rows = shown(table_of(report_md(root), "GPU: h200"))
    assert sorted(r["Executor"] for r in rows if r["Scenario"] == "default") == [
        "docker aaaaaaaaaaaa",
        "docker bbbbbbbbbbbb",
        "process",
    ]


def test_repeats_in_one_environment_keep_the_table_narrow(tmp_path):
    root = tmp_path / "same"
    root.mkdir()
    for name in ("r1", "r2"):
        edited_copy(CAPPED, root, name, in_docker("sha256:" + "c" * 64))
    text = report_md(root)
    assert "2 runs on h200: 2 completed in 1 cell." in text
    assert "Executor" not in table_of(text, "GPU: h200")[0]
    # All process runs: no column, but the Image column is said not to be where they ran.
    process = report_md(CAPPED)
    assert "Executor" not in process
    assert "Image: the process executor runs the worker in the launching machine's own Python" in process


# --- 3. which memory peak --------------------------------------------------------------------------------


def test_allocated_and_reserved_peaks_are_told_apart():
    report = build_report(find_runs([AUTO]), with_plots=False)
    results = next(s for s in report.sections if s.kind == "results")
    headers = [c.header for c in results.table.columns]
    assert "Peak mem" not in headers
    assert headers[headers.index("Peak alloc") + 1] == "Peak reserved"
    row = dict(zip(headers, results.table.cells()[0], strict=True))
    assert (row["Peak alloc"], row["Peak reserved"]) == ("77.2 GiB", "138.7 GiB")
    assert any(
        n.startswith("Peak reserved: torch's reserved memory") and "not what the run needed" in n
        for n in results.footnotes
    )
    assert any(n.startswith("Peak alloc:") and "memory plan" in n for n in results.footnotes)

    data = json.loads(in_process(["report", str(AUTO), "--format", "json"]).stdout)
    cell = data["sections"][0]["rows"][0]
    m = rundir.read_result(AUTO).metrics
    assert (cell["peak_memory_allocated_bytes"], cell["peak_memory_bytes"]) == (
        m.peak_memory_allocated_bytes,
        m.peak_memory_bytes,
    )
    assert cell["peak_memory_source"] == "torch_cuda_max_reserved"
    csv_rows = list(csv.DictReader(io.StringIO(in_process(["report", str(AUTO), "--format", "csv"]).stdout)))
    assert csv_rows[0]["peak_memory_allocated_bytes"] == str(m.peak_memory_allocated_bytes)


def test_a_cpu_table_says_its_peak_is_rss():
    text = report_md(CPU)
    head = table_of(text, "GPU: cpu")[0]
    assert "| Peak RSS |" in head and "Peak alloc" not in head
    assert "- Peak RSS: the worker process's largest resident set (on a CPU)." in text


# --- 4. the dtype that ran ----------------------------------------------------------------------------------


def as_t4_fp16(r: RunResult) -> None:
    """What a bf16 run on a T4 records: compat.adjustments configured fp16, the backend loaded fp16."""
    on_gpu("t4")(r)
    r.config.image = "hf"
    r.config.dtype = r.backend.dtype = "float16"
    r.notes.insert(0, "bf16 needs compute capability 8.0; NVIDIA T4 runs it as fp16")


def out_of_memory(r: RunResult) -> None:
    r.status, r.error = "failed", ErrorInfo(error_class="OutOfMemoryError", message="CUDA out of memory")
    r.metrics.documents = 0


def test_a_scenario_that_ran_another_dtype_is_marked(tmp_path):
    root = tmp_path / "dtype"
    root.mkdir()
    edited_copy(CPU_BF16, root, "t4-bf16", as_t4_fp16)
    edited_copy(CPU_BF16, root, "t4-bf16-oom", chain(as_t4_fp16, out_of_memory))
    text = report_md(root)
    (row,) = [r for r in shown(table_of(text, "GPU: t4")) if r["Scenario"] != "lead-3 baseline"]
    assert row["Scenario"] == "bf16→fp16"
    note = (
        "bf16→fp16: scenario bf16 asks for bfloat16, but on t4 it ran float16 (bf16 needs compute capability "
        "8.0; NVIDIA T4 runs it as fp16): its numbers are fp16's, not bf16's."
    )
    assert text.count(note) == 2, "under the results table and under the failures table"
    assert shown(table_of(text, "Failed runs"))[0]["Scenario"] == "bf16→fp16"

    from runner.report.plots import Style

    labels = set(Style.for_cells(group_cells(find_runs([root]).runs)).labels.values())
    assert labels == {"bf16→fp16"}
    json_row = json.loads(in_process(["report", str(root), "--format", "json"]).stdout)["sections"][0]["rows"][0]
    assert (json_row["scenario"], json_row["dtype"], json_row["scenario_dtype"]) == ("bf16", "float16", "bfloat16")
    # bf16 on a CPU runs bf16: nothing to mark.
    text = report_md(CPU_BF16)
    assert re.search(r"^\| bf16 \| cpu \|", text, re.M) and "→fp" not in text


# --- 5. output formats --------------------------------------------------------------------------------------


def test_an_unknown_out_suffix_is_refused_and_nothing_is_written(capsys, tmp_path):
    out, plots = tmp_path / "r.pdf", tmp_path / "plots"
    line = one_line(capsys, ["report", str(CPU), "--out", str(out), "--plots", str(plots)])
    assert line.startswith(f"error: --out {out}: unknown extension .pdf; use one of .md, .markdown, .html, .htm")
    assert "--format" in line
    assert not out.exists() and not plots.exists()
    # --format says what to write, whatever the name.
    proc = in_process(["report", str(CPU), "--out", str(out), "--format", "html"])
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    for name in ("r.markdown", "r.htm", "report"):  # known suffixes, and none (Markdown)
        assert in_process(["report", str(CPU_BF16), "--out", str(tmp_path / name)]).returncode == 0


def test_an_out_suffix_naming_another_format_than_format_is_refused(capsys, tmp_path):
    out = tmp_path / "x.html"
    line = one_line(capsys, ["report", str(CPU), "--format", "md", "--out", str(out)])
    assert line == (
        f"error: --format md and --out {out} disagree: .html names html; drop --format to write html, "
        f"or pass --out {tmp_path / 'x.md'}"
    )
    assert not out.exists()
    # Where they agree (.htm is html) or the suffix names no format, --format stands.
    for name, fmt in (("r.htm", "html"), ("r.MD", "md"), ("r.txt", "csv")):
        proc = in_process(["report", str(CPU_BF16), "--format", fmt, "--out", str(tmp_path / name)])
        assert proc.returncode == 0, proc.stderr


# --- 6. matrix cells that never ran ---------------------------------------------------------------------------


def test_matrix_cells_never_run_are_not_failures_in_csv_and_json(tmp_path):
    plan = in_process(
        [
            "matrix",
            "--images",
            "cpu",
            "--scenarios",
            "fp32,flash-attn",
            "--gpus",
            "cpu",
            "--batch-sizes",
            "1",
            "--model",
            "Qwen/Qwen2.5-0.5B-Instruct",
            "--data",
            str(REPO_ROOT / "data" / "howto-sample.jsonl"),
            "--results",
            str(tmp_path),
            "--matrix-id",
            "m",
            "--dry-run",
        ]
    )
    assert plan.returncode == 0, plan.stderr
    failed = CPU / "20261126-091542-cpu-cpu-fp32-bs16"
    args = ["report", str(tmp_path / "m"), str(failed)]
    rows = list(csv.DictReader(io.StringIO(in_process([*args, "--format", "csv"]).stdout)))
    kinds = {(r["table"], r["kind"], r["scenario"]) for r in rows}
    assert kinds == {("failures", "failed", "fp32"), ("not_run", "not_run", "flash-attn")}

    sections = json.loads(in_process([*args, "--format", "json"]).stdout)["sections"]
    by_kind = {s["kind"]: s["rows"] for s in sections if s["rows"]}
    assert [r["kind"] for r in by_kind["not_run"]] == ["not_run"]
    assert by_kind["not_run"][0]["reason"] and [r["kind"] for r in by_kind["failures"]] == ["failed"]
