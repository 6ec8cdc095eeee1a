"""`runner report` on result folders made by real tiny-model runs.

The runs are real: `runner launch` in subprocesses on the tiny Llama, fp32 and bf16 at two batch sizes,
two repeats of one cell, and one run that fails with an (injected) out-of-memory error. Only the quality
gate needs ROUGE values a random model cannot produce, so those tests edit copies of real results.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runner.contract import rundir
from runner.contract.errors import UserError
from runner.contract.schema import Rouge, RunResult
from runner.paths import REPO_ROOT
from runner.report.build import build_report
from runner.report.cells import group_cells
from runner.report.document import Report, Section
from runner.report.gate import quality_gate
from runner.report.loading import find_runs
from runner.report.plots import pareto_front
from runner.report.render_html import render_html
from runner.scenarios import get_scenario

RUN_ARGS = ["--limit", "8", "--max-new-tokens", "8", "--price-per-hour", "0.5"]


@dataclass(frozen=True)
class Bench:
    """The folder of real runs every report, compare and repeats test reads."""

    root: Path
    repeat_output: str  # what `runner launch --repeat 2` printed: its summaries go to stdout

    @property
    def repeats(self) -> list[Path]:
        return [self.root / "fp32-bs1-r1", self.root / "fp32-bs1-r2"]

    @property
    def fp32_bs4(self) -> Path:
        return self.root / "fp32-bs4"

    @property
    def bf16_bs4(self) -> Path:
        return self.root / "bf16-bs4"

    @property
    def failed(self) -> Path:
        return self.root / "oom-bs2"


_BENCHES: dict[Path, Bench] = {}


def _launch(model: Path, root: Path, run_id: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "launch",
            "--model",
            str(model),
            "--results",
            str(root),
            "--run-id",
            run_id,
            *RUN_ARGS,
            *args,
        ],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def build_bench(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Bench:
    """Run the cells once per test session, whichever test file asks first."""
    key = tmp_path_factory.getbasetemp()
    if key in _BENCHES:
        return _BENCHES[key]
    root = tmp_path_factory.mktemp("bench")
    # Three independent cells at once to save time; the failed one dies right after loading the model.
    procs = {
        "fp32-bs4": _launch(tiny_model, root, "fp32-bs4", "--scenario", "fp32", "--batch-size", "4"),
        "bf16-bs4": _launch(tiny_model, root, "bf16-bs4", "--scenario", "bf16", "--batch-size", "4"),
        "oom-bs2": _launch(
            tiny_model,
            root,
            "oom-bs2",
            "--scenario",
            "fp32",
            "--batch-size",
            "2",
            env={"SUMBENCH_INJECT_OOM_AT_BATCH": "1"},
        ),
    }
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == (1 if name == "oom-bs2" else 0), f"{name}: {err[-3000:]}"
    # The repeats run alone, so both see the same quiet machine and their comparison is fair.
    proc = _launch(tiny_model, root, "fp32-bs1", "--scenario", "fp32", "--batch-size", "1", "--repeat", "2")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    _BENCHES[key] = Bench(root, out)
    return _BENCHES[key]


@pytest.fixture(scope="session")
def bench(tiny_model, tmp_path_factory) -> Bench:
    return build_bench(tiny_model, tmp_path_factory)


def in_process(args: list[str]) -> subprocess.CompletedProcess:
    """Run a host-side `runner` command in this process (no interpreter start), as the CLI would."""
    from click.testing import CliRunner

    from runner.cli import cli as group

    result = CliRunner().invoke(group, args, catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def edited_copy(src: Path, dest_root: Path, name: str, edit: Callable[[RunResult], None] = lambda r: None) -> Path:
    """A copy of a real run folder under a new run id, with ``edit`` (if any) applied to its result."""
    dest = dest_root / name
    shutil.copytree(src, dest)
    result = rundir.read_result(dest)
    result.run_id = result.config.run_id = name
    edit(result)
    rundir.write_result(dest, result)
    return dest


def set_rouge(value: float) -> Callable[[RunResult], None]:
    """Scores as a trained model's: the tiny model's own are marked not meaningful (random weights)."""

    def edit(r: RunResult) -> None:
        r.metrics.rouge = Rouge(rouge1=value, rouge2=value / 2, rougeL=value * 0.8)
        r.quality_meaningful = True

    return edit


def section(report: Report, kind: str) -> Section:
    return next(s for s in report.sections if s.kind == kind)


def result_of(path: Path) -> RunResult:
    return rundir.read_result(path)


# --- tables from the real runs -------------------------------------------------------------------


def test_results_table_has_every_cell_fastest_first_and_lead3_last(bench):
    report = build_report(find_runs([bench.root]), with_plots=False)
    table = section(report, "results").table
    cells = [r for r in table.rows if r["kind"] == "cell"]
    assert {(r["scenario"], r["batch"]) for r in cells} == {("fp32", "1"), ("fp32", "4"), ("bf16", "4")}
    speeds = [r["docs_per_second"] for r in cells]
    assert speeds == sorted(speeds, reverse=True)
    lead3 = table.rows[-1]
    assert lead3["kind"] == "lead3" and lead3.get("docs_per_second") is None
    expected = result_of(bench.fp32_bs4).metrics.lead3_rouge
    assert lead3["rouge1"] == pytest.approx(expected.rouge1)
    assert lead3["rougeL"] == pytest.approx(expected.rougeL)

    fp32_bs4 = next(r for r in cells if r["scenario"] == "fp32" and r["batch"] == "4")
    m = result_of(bench.fp32_bs4).metrics
    assert fp32_bs4["docs_per_second"] == pytest.approx(m.docs_per_second)
    assert fp32_bs4["output_tokens_per_second"] == pytest.approx(m.output_tokens_per_second)
    assert fp32_bs4["documents"] == 8
    assert fp32_bs4["avg_input_tokens"] == pytest.approx(m.avg_input_tokens)
    assert fp32_bs4["avg_output_tokens"] == pytest.approx(m.avg_output_tokens)
    assert fp32_bs4["peak_memory_bytes"] == m.peak_memory_bytes > 0
    # --price-per-hour 0.5: $ per 1k docs is the price of the generate time, per document, times 1000.
    assert fp32_bs4["cost_per_1k_docs_usd"] == pytest.approx(0.5 * m.generate_seconds / 3600 / 8 * 1000)
    assert fp32_bs4["energy_per_doc_joules"] is None  # no GPU energy counter on a CPU
    # fp32 is the CPU reference when no fp16 run exists; with random weights its ROUGE gates nothing.
    assert fp32_bs4["gate"] == "not gated" and fp32_bs4["gate_label"] == "not gated (random weights)"

    # The tiny model's weights are random (its config.json says so): no gate verdict, and the table says why.
    bf16 = next(r for r in cells if r["scenario"] == "bf16")
    assert bf16["gate_label"] == "n/a (random weights)" and not bf16["quality_meaningful"]
    footnotes = section(report, "results").footnotes
    random_note = "† random weights: the model is a random checkpoint (runner model tiny or synthetic)"
    assert any(n.startswith(random_note) for n in footnotes)

    shown = table.cells()
    headers = [c.header for c in table.columns]
    assert headers[:3] == ["Scenario", "Image", "Batch"]
    assert shown[-1][0] == "lead-3 baseline"


def test_repeats_fold_into_one_row_with_mean_and_stdev(bench):
    report = build_report(find_runs([bench.root]), with_plots=False)
    row = next(r for r in section(report, "results").table.rows if r.get("batch") == "1")
    speeds = [result_of(p).metrics.docs_per_second for p in bench.repeats]
    assert row["runs"] == 2
    assert row["docs_per_second"] == pytest.approx(statistics.fmean(speeds))
    assert row["docs_per_second_stdev"] == pytest.approx(statistics.stdev(speeds))
    assert row["run_ids"] == ["fp32-bs1-r1", "fp32-bs1-r2"]
    table = section(report, "results").table
    shown = dict(zip([c.key for c in table.columns], table.cells()[table.rows.index(row)], strict=True))
    assert re.fullmatch(r"\d+\.\d{3} ± \d+\.\d{3}", shown["docs_per_second"])
    assert shown["runs"] == "2"
    # Every ROUGE column shows its spread alike (marked †: the tiny model's weights are random); peak memory
    # is the largest repeat, and the footnote says so.
    for key in ("rouge1", "rouge2", "rougeL"):
        assert re.fullmatch(r"\d\.\d{4} ± \d\.\d{4}†", shown[key]), (key, shown[key])
    peaks = [result_of(p).metrics.peak_memory_bytes for p in bench.repeats]
    assert row["peak_memory_bytes"] == max(peaks)
    assert any("Peak RSS: the largest of the repeats" in n for n in section(report, "results").footnotes)


def test_results_show_latency_p50_and_p90(bench):
    report = build_report(find_runs([bench.root]), with_plots=False)
    table = section(report, "results").table
    row = next(r for r in table.rows if r.get("run_ids") == ["fp32-bs4"])
    m = result_of(bench.fp32_bs4).metrics
    assert row["latency_p50_s"] == pytest.approx(m.latency_p50_s)
    assert row["latency_p90_s"] == pytest.approx(m.latency_p90_s)
    shown = dict(zip([c.header for c in table.columns], table.cells()[table.rows.index(row)], strict=True))
    assert shown["Call s p50/p90"] == f"{m.latency_p50_s:.3f} / {m.latency_p90_s:.3f}"
    assert table.cells()[-1][[c.header for c in table.columns].index("Call s p50/p90")] == "-"  # lead-3

    rows = list(csv.DictReader(io.StringIO(in_process(["report", str(bench.root), "--format", "csv"]).stdout)))
    fp32 = next(r for r in rows if r["run_ids"] == "fp32-bs4")
    assert float(fp32["latency_p50_s"]) == pytest.approx(m.latency_p50_s)
    assert float(fp32["latency_p90_s"]) == pytest.approx(m.latency_p90_s)


def test_json_rows_keep_run_ids_as_a_list_and_batch_sizes_as_numbers(bench):
    data = json.loads(in_process(["report", str(bench.root), "--format", "json"]).stdout)
    results, failures = (s["rows"] for s in data["sections"])
    repeats = next(r for r in results if r.get("batch") == "1")
    assert repeats["run_ids"] == ["fp32-bs1-r1", "fp32-bs1-r2"]
    assert (repeats["batch_requested"], repeats["batch_final"]) == (1, 1)
    assert next(r for r in results if r["run_ids"] == ["fp32-bs4"])["batch_requested"] == 4
    (failed,) = failures
    assert failed["batch_requested"] == 2 and "batch_final" in failed
    assert all("batch_requested" in r and "batch_final" in r for r in results)
    csv_rows = list(csv.DictReader(io.StringIO(in_process(["report", str(bench.root), "--format", "csv"]).stdout)))
    cells = {r["run_ids"] for r in csv_rows if r["kind"] == "cell"}
    assert cells == {"fp32-bs1-r1 fp32-bs1-r2", "fp32-bs4", "bf16-bs4"}


def test_failed_run_is_listed_with_its_error(bench):
    report = build_report(find_runs([bench.root]), with_plots=False)
    rows = section(report, "failures").table.rows
    assert len(rows) == 1
    row = rows[0]
    assert row["run_id"] == "oom-bs2" and row["status"] == "failed"
    assert row["error_class"] == "OutOfMemoryError"
    assert "out of memory at batch size 2" in row["error_message"]
    assert (row["scenario"], row["image"], row["gpu"], row["batch"]) == ("fp32", "cpu", "cpu", "2")
    assert row["documents_done"] == 0 and row["documents_total"] == 8
    # Failed runs are not cells: the results table holds only what completed.
    assert all("oom-bs2" not in r.get("run_ids", []) for r in section(report, "results").table.rows)


def test_markdown_cli_with_plot_files(bench, tmp_path):
    out = tmp_path / "report" / "report.md"
    proc = in_process(["report", str(bench.root), "--out", str(out), "--plots", str(tmp_path / "report" / "plots")])
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.startswith("# sumbench report")
    assert "## GPU: cpu" in text and "## Failed runs" in text
    assert re.search(r"^\| fp32 \| cpu \| 4 \| \d+\.\d{3} \|", text, re.M)
    assert "| lead-3 baseline |" in text and "OutOfMemoryError" in text
    pngs = sorted(p.name for p in (tmp_path / "report" / "plots").iterdir())
    assert pngs == ["cost-per-1k-docs.png", "quality-vs-speed-cpu.png", "throughput-cpu.png"]
    assert all((tmp_path / "report" / "plots" / p).read_bytes().startswith(b"\x89PNG") for p in pngs)
    assert "](plots/throughput-cpu.png)" in text  # links relative to the report, so the folder can move


def test_csv_and_json_keep_raw_numbers(bench):
    proc = in_process(["report", str(bench.root), "--format", "csv"])
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert {r["kind"] for r in rows} == {"cell", "lead3", "failed"}
    fp32 = next(r for r in rows if r["kind"] == "cell" and r["batch"] == "4" and r["scenario"] == "fp32")
    assert float(fp32["docs_per_second"]) == pytest.approx(result_of(bench.fp32_bs4).metrics.docs_per_second)
    assert next(r for r in rows if r["kind"] == "failed")["error_class"] == "OutOfMemoryError"

    proc = in_process(["report", str(bench.root), "--format", "json"])
    data = json.loads(proc.stdout)
    kinds = [s["kind"] for s in data["sections"]]
    assert kinds == ["results", "failures"]
    assert len(data["sections"][0]["rows"]) == 4


# --- HTML ----------------------------------------------------------------------------------------


class _Checker(HTMLParser):
    """Collects tags and checks that every non-void element is closed in order."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.images: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def test_html_is_self_contained_and_parses(bench, tmp_path):
    out = tmp_path / "report.html"
    proc = in_process(["report", str(bench.root), "--out", str(out)])  # format from the suffix
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert "<table" in page and '<img src="data:image/png;base64,' in page
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors and not checker.stack
    assert checker.tags.count("table") == 2  # results, failures
    assert len(checker.images) == 3
    for src in checker.images:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert "http://" not in page and "https://" not in page and "<script" not in page and "<link" not in page


# --- the quality gate on edited copies of real results -------------------------------------------


def chain(*edits: Callable[[RunResult], None]) -> Callable[[RunResult], None]:
    def edit(r: RunResult) -> None:
        for one in edits:
            one(r)

    return edit


def on_gpu(gpu: str) -> Callable[[RunResult], None]:
    """Relabel a real CPU result as measured on ``gpu``: the report groups and gates runs by GPU."""

    def edit(r: RunResult) -> None:
        r.config.gpu = r.environment.device.catalog_gpu = gpu

    return edit


def as_scenario(name: str) -> Callable[[RunResult], None]:
    """Relabel a real result as a run of scenario ``name``, with the dtype such a run records: a fp32 run
    renamed "default" would otherwise be reported as default that ran fp32 ("default→fp32")."""

    def edit(r: RunResult) -> None:
        r.config.scenario = name
        r.config.dtype = get_scenario(name).dtype
        if r.backend is not None:
            r.backend.dtype = r.config.dtype

    return edit


@pytest.fixture
def gate_tree(bench, tmp_path) -> Path:
    """Real results relabelled as GPU runs: a fp16 reference, a pass, a fail, a synthetic run, and another dataset."""
    root = tmp_path / "gate"
    root.mkdir()

    def synthetic(r: RunResult) -> None:
        as_scenario("eager")(r)
        set_rouge(0.41)(r)
        r.config.synthetic_weights = True
        r.quality_meaningful = False

    def other_dataset(r: RunResult) -> None:
        as_scenario("eager")(r)
        r.config.batch_size = 2
        r.dataset.sha256 = "f" * 64
        set_rouge(0.30)(r)

    gpu = on_gpu("a100-80gb")
    edited_copy(bench.fp32_bs4, root, "ref-default", chain(gpu, as_scenario("default"), set_rouge(0.40)))
    edited_copy(bench.bf16_bs4, root, "bf16-pass", chain(gpu, set_rouge(0.398)))
    edited_copy(bench.fp32_bs4, root, "fp32-fail", chain(gpu, set_rouge(0.38)))
    edited_copy(bench.fp32_bs4, root, "eager-synthetic", chain(gpu, synthetic))
    edited_copy(bench.bf16_bs4, root, "eager-other-data", chain(gpu, other_dataset))
    return root


def _gates(root: Path, reference: str | None = None) -> dict[str, object]:
    cells = group_cells(find_runs([root]).runs)
    gates = quality_gate(cells, reference)
    return {c.runs[0].result.run_id: gates[c.key] for c in cells}


def test_gate_passes_fails_and_explains(gate_tree):
    gates = _gates(gate_tree)
    assert gates["ref-default"].verdict == "reference"
    assert gates["bf16-pass"].verdict == "pass" and gates["bf16-pass"].ratio == pytest.approx(0.995)
    assert gates["bf16-pass"].label() == "pass 99.5%"
    assert gates["fp32-fail"].verdict == "fail" and gates["fp32-fail"].ratio == pytest.approx(0.95)
    assert gates["fp32-fail"].label() == "FAIL 95.0%"
    assert gates["eager-synthetic"].label() == "n/a (synthetic weights)"
    assert gates["eager-other-data"].verdict == "no reference"


def test_reference_option_switches_the_baseline(gate_tree):
    gates = _gates(gate_tree, reference="fp32")
    assert gates["fp32-fail"].verdict == "reference"
    assert gates["ref-default"].verdict == "pass" and gates["ref-default"].ratio == pytest.approx(0.40 / 0.38)
    assert gates["bf16-pass"].ratio == pytest.approx(0.398 / 0.38)


def test_report_shows_gate_synthetic_mark_and_dataset_warning(gate_tree):
    proc = in_process(["report", str(gate_tree)])
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "## Warning: runs used different datasets" in text
    assert "ffffffffffff" in text and result_of(gate_tree / "ref-default").dataset.sha256[:12] in text
    assert re.search(r"^\| bf16 \|.*\| pass 99\.5% \|", text, re.M)
    assert re.search(r"^\| fp32 \|.*\| FAIL 95\.0% \|", text, re.M)
    assert re.search(r"^\| eager \|.*0\.4100† \|.*\| n/a \(synthetic weights\) \|", text, re.M)
    assert "† synthetic weights" in text
    assert re.search(r"^\| eager \|.*\| no reference \|", text, re.M)
    # One lead-3 row per dataset, since lead-3 depends on the documents.
    assert text.count("| lead-3 baseline |") == 2


def test_cpu_gate_takes_fp32_as_the_reference_even_beside_default(bench, tmp_path):
    """On a CPU `default` still runs fp16; the reference there is fp32, as the help and footnote say."""
    root = tmp_path / "cpu-gate"
    root.mkdir()
    edited_copy(bench.fp32_bs4, root, "cpu-fp32", set_rouge(0.40))
    edited_copy(bench.fp32_bs4, root, "cpu-default", chain(as_scenario("default"), set_rouge(0.38)))
    edited_copy(bench.bf16_bs4, root, "cpu-bf16", set_rouge(0.398))
    gates = _gates(root)
    assert gates["cpu-fp32"].verdict == "reference"
    assert gates["cpu-default"].label() == "FAIL 95.0%" and gates["cpu-default"].reference == "fp32"
    assert gates["cpu-bf16"].label() == "pass 99.5%"
    text = in_process(["report", str(root)]).stdout
    assert re.search(r"^\| fp32 \| cpu \|.*\| reference \|", text, re.M)
    assert re.search(r"^\| default \| cpu \|.*\| FAIL 95\.0% \|", text, re.M)
    assert "reference scenario (default (fp16) on a GPU, fp32 on a CPU)" in text

    # Without an fp32 run on the CPU, default is the reference after all.
    shutil.rmtree(root / "cpu-fp32")
    gates = _gates(root)
    assert gates["cpu-default"].verdict == "reference"
    assert gates["cpu-bf16"].ratio == pytest.approx(0.398 / 0.38)


def test_summary_counts_runs_and_cells_in_plain_words(bench):
    """Repeats fold into one cell; a failed run makes none. "1 cell", never "1 completed cells"."""
    assert build_report(find_runs([bench.root]), with_plots=False).summary[0] == (
        "5 runs on cpu: 4 completed in 3 cells, 1 failed."
    )
    assert build_report(find_runs([bench.fp32_bs4]), with_plots=False).summary[0] == (
        "1 run on cpu: 1 completed in 1 cell."
    )
    assert build_report(find_runs([bench.failed]), with_plots=False).summary[0] == "1 run on cpu: 1 failed."


def test_runs_that_did_different_work_are_told_apart(bench, tmp_path):
    """Two cells that both read "fp32 | cpu | 4" but wrote 8 and 16 new tokens, and a third with another
    model: the report warns, names what differs, and shows it in columns that a plain report does not have."""
    root = tmp_path / "work"
    root.mkdir()
    shutil.copytree(bench.fp32_bs4, root / "short")

    def longer(r: RunResult) -> None:
        r.config.max_new_tokens = 16
        r.metrics.docs_per_second *= 10  # the fastest row, to show that rows group by work before speed

    def other_model(r: RunResult) -> None:
        r.config.model = "/models/other-llama"

    edited_copy(bench.fp32_bs4, root, "long", longer)
    edited_copy(bench.fp32_bs4, root, "other-model", other_model)
    proc = in_process(["report", str(root)])
    assert proc.returncode == 0, proc.stderr
    warning = (
        "the runs did not all do the same work (models: other-llama, tiny-llama; output lengths: 8 new tokens, "
        "16 new tokens). Rows that differ in it do not compare: the tables show it (Model, New tokens) and keep "
        "such rows apart."
    )
    assert f"Warning: {warning}" in proc.stdout
    assert f"warning: {warning}" in proc.stderr
    assert json.loads(in_process(["report", str(root), "--format", "json"]).stdout)["warnings"] == [warning]
    head = next(line for line in proc.stdout.splitlines() if line.startswith("| Model"))
    assert head.startswith("| Model | Scenario | Image | Batch | New tokens | Docs/s |")
    rows = re.findall(r"^\| ([\w-]+) \| fp32 \| cpu \| 4 \| (\d+) \|", proc.stdout, re.M)
    assert rows == [("other-llama", "8"), ("tiny-llama", "8"), ("tiny-llama", "16")]

    plain = in_process(["report", str(bench.root)])
    assert "New tokens" not in plain.stdout and "| Model |" not in plain.stdout
    assert "| Prompt |" not in plain.stdout
    assert "did not all do the same work" not in plain.stdout + plain.stderr


def test_runs_with_another_prompt_template_are_other_cells(bench, tmp_path):
    """A --prompt-template run is not a repeat of a run with the model's own prompt: its own row, in a
    Prompt column, and a warning that the rows do not compare."""
    root = tmp_path / "prompts"
    root.mkdir()
    shutil.copytree(bench.fp32_bs4, root / "own")

    def templated(r: RunResult) -> None:
        r.config.prompt_template = "Summary of:\n{document}"

    edited_copy(bench.fp32_bs4, root, "templated", templated)
    report = build_report(find_runs([root]), with_plots=False)
    table = section(report, "results").table
    assert "Prompt" in [c.header for c in table.columns]
    shown = {r["run_ids"][0]: cells for r, cells in zip(table.rows, table.cells(), strict=False) if "run_ids" in r}
    assert len(shown) == 2, "the two runs were folded as repeats"
    prompt_at = [c.key for c in table.columns].index("prompt_template")
    assert shown["fp32-bs4"][prompt_at] == "model's own prompt"
    assert shown["templated"][prompt_at] == "'Summary of: {document}'"
    assert any("prompts: model's own prompt, 'Summary of: {document}'" in w for w in report.warnings)


def test_input_tokens_per_document_show_one_decimal_like_launch(bench):
    report = build_report(find_runs([bench.root]), with_plots=False)
    table = section(report, "results").table
    row = next(r for r in table.rows if r.get("run_ids") == ["fp32-bs4"])
    shown = dict(zip([c.key for c in table.columns], table.cells()[table.rows.index(row)], strict=True))
    assert shown["avg_input_tokens"] == f"{result_of(bench.fp32_bs4).metrics.avg_input_tokens:.1f}"


def test_unknown_reference_is_a_user_error(bench, cli):
    proc = cli(["report", str(bench.root), "--reference", "fp61"])
    assert proc.returncode == 2 and "unknown scenario 'fp61'" in proc.stderr


# --- loading ---------------------------------------------------------------------------------------


def test_unfinished_and_corrupt_folders_are_skipped_with_warnings(bench, tmp_path):
    root = tmp_path / "mixed"
    shutil.copytree(bench.fp32_bs4, root / "good")
    shutil.copytree(bench.fp32_bs4, root / "nested" / "running")
    (root / "nested" / "running" / "result.json").unlink()
    shutil.copytree(bench.fp32_bs4, root / "corrupt")
    (root / "corrupt" / "result.json").write_text('{"schema_version": 1}')
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text("{}")  # a checkpoint is not a run
    shutil.copytree(bench.fp32_bs4, root / "not-utf8")
    (root / "not-utf8" / "result.json").write_bytes(b"\xff\xfe")
    loaded = find_runs([root])
    assert [r.path.name for r in loaded.runs] == ["good"]
    assert len(loaded.warnings) == 3
    running = root / "nested" / "running"
    assert f"skipped {running}: the run did not finish (8 documents done, " in loaded.warnings[1]
    assert loaded.warnings[1].endswith(f"finish it with `runner launch --resume {running}`")
    assert (
        f"skipped {root / 'corrupt' / 'result.json'}: not a valid sumbench result (run_id: Field required"
        in (loaded.warnings[0])
    )
    assert f"{root / 'not-utf8' / 'result.json'}: not a valid sumbench result (Invalid JSON" in loaded.warnings[2]
    # A run folder given directly works as well as its parent, and is read once.
    assert len(find_runs([root / "good", root]).runs) == 1
    with pytest.raises(UserError, match="no sumbench results"):
        find_runs([root / "model"])


def test_a_folder_of_unfinished_runs_says_how_to_finish_them(bench, tmp_path, cli):
    """A killed worker leaves config.json and docs.jsonl: the report says the run did not finish and how
    to resume it, not that there are no results."""
    killed = tmp_path / "results" / "killed"
    shutil.copytree(bench.fp32_bs4, killed)
    (killed / "result.json").unlink()
    proc = cli(["report", str(killed.parent)])
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: no finished sumbench run under {killed.parent}: {killed}: the run did not finish (8 documents "
        f"done, no result.json: its worker was stopped or killed); finish it with `runner launch --resume "
        f"{killed}`\n"
    )


def test_pareto_front():
    points = [(1.0, 0.40), (2.0, 0.38), (3.0, 0.30), (2.5, 0.20), (0.5, 0.39), (3.0, 0.25)]
    assert pareto_front(points) == [(1.0, 0.40), (2.0, 0.38), (3.0, 0.30)]
    assert pareto_front([]) == []


def test_render_html_escapes_text(bench):
    report = build_report(find_runs([bench.root]), with_plots=False)
    report.summary.append("<script>alert(1)</script> & more")
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_gpu_memory_column_compares_backends_on_the_whole_card(bench, tmp_path):
    """An hf run's Peak mem is torch's reserved memory and a vllm run's is the whole GPU; the GPU mem
    column (NVML, every backend) is the one that compares them, and only appears when some run has it."""
    root = tmp_path / "mem"
    root.mkdir()
    gpu = on_gpu("a100-80gb")

    def hf(r: RunResult) -> None:
        r.metrics.peak_memory_bytes, r.metrics.peak_memory_source = 20 << 30, "torch_cuda_max_reserved"
        r.metrics.peak_device_memory_bytes = 21 << 30

    def vllm(r: RunResult) -> None:
        as_scenario("vllm")(r)
        r.config.image = "vllm"
        r.metrics.peak_memory_bytes = r.metrics.peak_device_memory_bytes = 72 << 30
        r.metrics.peak_memory_source = "nvml_device_used"

    edited_copy(bench.fp32_bs4, root, "hf-run", chain(gpu, as_scenario("default"), hf))
    edited_copy(bench.bf16_bs4, root, "vllm-run", chain(gpu, vllm))
    text = in_process(["report", str(root)]).stdout
    head = next(line for line in text.splitlines() if line.startswith("| Scenario"))
    assert "| Peak mem | GPU mem |" in head
    assert re.search(r"^\| default \|.*\| 20\.0 GiB \| 21\.0 GiB \|", text, re.M)
    assert re.search(r"^\| vllm \|.*\| 72\.0 GiB \| 72\.0 GiB \|", text, re.M)
    assert "compare backends on that one" in text
    assert "GPU mem" not in in_process(["report", str(bench.fp32_bs4)]).stdout, "CPU runs have no NVML peak"


def test_plot_series_keep_output_lengths_apart(bench, tmp_path):
    """Two output lengths of one scenario are two series (two kinds of work), named so; one length stays
    the bare scenario."""
    from runner.report.plots import Style

    root = tmp_path / "lengths"
    root.mkdir()
    edited_copy(bench.fp32_bs4, root, "fp32-bs4-long", lambda r: setattr(r.config, "max_new_tokens", 16))
    shutil.copytree(bench.fp32_bs4, root / "fp32-bs4")
    cells = group_cells(find_runs([root]).runs)
    labels = sorted(set(Style.for_cells(cells).labels.values()))
    assert labels == ["fp32, 16 new tokens", "fp32, 8 new tokens"]
    same = group_cells(find_runs([bench.fp32_bs4]).runs)
    assert set(Style.for_cells(same).labels.values()) == {"fp32"}


def quantized_checkpoint(base: str | None) -> Callable[[RunResult], None]:
    """A run of a pre-quantized copy of the tiny model, declared (or not) as made from it with --base-model."""

    def edit(r: RunResult) -> None:
        r.config.model = "/models/tiny-llama-awq"
        r.config.base_model = base

    return edit


def test_a_quantized_checkpoint_is_gated_and_compared_against_its_base_model(bench, tmp_path):
    """--base-model: an AWQ copy of a model did the same work as that model, so the gate holds its ROUGE
    against the model's reference run and compare sets the two side by side; without it, it is another
    model (no reference, compare refuses). Either way the table names the checkpoint each row loaded."""
    root = tmp_path / "quantized"
    root.mkdir()
    edited_copy(bench.fp32_bs4, root, "ref", set_rouge(0.40))
    declared = edited_copy(bench.bf16_bs4, root, "awq", chain(set_rouge(0.398), quantized_checkpoint("tiny-llama")))
    assert _gates(root)["awq"].label() == "pass 99.5%"
    text = in_process(["report", str(root)]).stdout
    assert re.search(r"^\| tiny-llama-awq \(of tiny-llama\) \| bf16 \|.*\| pass 99\.5% \|", text, re.M), text
    assert re.search(r"^\| tiny-llama \| fp32 \|", text, re.M)
    assert "did not all do the same work" not in text

    proc = in_process(["compare", str(root / "ref"), str(declared)])
    assert proc.returncode == 0, proc.stderr
    assert "different checkpoints of tiny-llama (tiny-llama vs tiny-llama-awq (of tiny-llama))" in proc.stdout

    shutil.rmtree(declared)
    edited_copy(bench.bf16_bs4, root, "awq", chain(set_rouge(0.398), quantized_checkpoint(None)))
    assert _gates(root)["awq"].verdict == "no reference"
    with pytest.raises(UserError, match=r"ran different models \(tiny-llama vs tiny-llama-awq\)"):
        in_process(["compare", str(root / "ref"), str(root / "awq")])
