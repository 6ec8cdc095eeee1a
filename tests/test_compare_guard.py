"""`runner compare` refuses what no test can fix: runs that did different work, a run without documents,
and folders that hold no finished run; and it says when A and B are one run.

Every case is a real run folder from the shared bench (see ``test_report.build_bench``), or an edited copy
of one, read through the real CLI entry point so that exit codes and stderr are what a user gets.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from test_report import build_bench, edited_copy

from runner.cli import main
from runner.contract.schema import RunResult
from runner.report.compare import compare_runs
from runner.report.loading import load_run


@pytest.fixture(scope="session")
def bench(tiny_model, tmp_path_factory):
    return build_bench(tiny_model, tmp_path_factory)


def runner(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """`runner ARGS` through ``runner.cli.main``, as the console script runs it: (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def other_dataset(r: RunResult) -> None:
    r.dataset.sha256 = "0" * 64


def longer_output(r: RunResult) -> None:
    r.config.max_new_tokens = 16


def other_model(r: RunResult) -> None:
    r.config.model = "/models/other-llama"


def forced_output(r: RunResult) -> None:
    r.config.force_output_length = True


def own_prompt(r: RunResult) -> None:
    r.config.prompt_template = "Summarize this   how-to article in three sentences:\n\n{document}"


@pytest.mark.parametrize(
    ("edit", "difference"),
    [
        (other_dataset, r"datasets \(sha [0-9a-f]{12}… vs sha 000000000000…\)"),
        (longer_output, r"output lengths \(8 new tokens vs 16 new tokens\)"),
        (other_model, r"models \(tiny-llama vs other-llama\)"),
        (forced_output, r"output lengths \(8 new tokens vs 8 forced new tokens\)"),
        (own_prompt, r"prompts \(model's own prompt vs 'Summarize this how-to article in…'\)"),
    ],
)
def test_runs_that_did_different_work_are_refused(bench, tmp_path, capsys, edit, difference):
    other = edited_copy(bench.repeats[1], tmp_path, "other", edit)
    code, out, err = runner(capsys, "compare", bench.repeats[0], other)
    assert code == 2 and out == ""
    assert re.fullmatch(
        rf"error: fp32-bs1-r1 and other ran different {difference}: their speeds and scores are not "
        r"comparable; pass --allow-different to compare anyway\n",
        err,
    ), err

    code, out, err = runner(capsys, "compare", bench.repeats[0], other, "--allow-different")
    assert code == 0, err
    warning = re.search(r"^- \*\*warning:\*\* the runs used different (.*)$", out, re.M)
    assert warning and re.match(difference, warning[1]), out
    assert re.search(r"^\| docs/s \| [\d.]+ \| [\d.]+ \|", out, re.M)


def test_a_partial_run_against_a_complete_one_is_refused(bench, tmp_path, capsys):
    """An interrupted run summarized fewer documents than the run it is set against: other work."""

    def interrupted(r: RunResult) -> None:
        r.status = "partial"
        r.metrics.documents = 2
        del r.metrics.batches[2:]

    part = edited_copy(bench.repeats[1], tmp_path, "part", interrupted)
    code, out, err = runner(capsys, "compare", bench.repeats[0], part)
    assert code == 2 and out == ""
    assert err == (
        "error: fp32-bs1-r1 and part ran different documents (8 vs 2 summarized; part is partial): their speeds "
        "and scores are not comparable; pass --allow-different to compare anyway\n"
    )

    code, out, err = runner(capsys, "compare", bench.repeats[0], part, "--allow-different")
    assert code == 0, err
    assert "- **warning:** the runs summarized different documents (8 vs 2 summarized; B is partial)" in out


def test_several_differences_are_named_in_one_line(bench, tmp_path, capsys):
    def both(r: RunResult) -> None:
        other_dataset(r)
        longer_output(r)

    code, _, err = runner(capsys, "compare", bench.repeats[0], edited_copy(bench.repeats[1], tmp_path, "both", both))
    assert code == 2 and err.count("\n") == 1
    assert "ran different datasets (sha " in err and "…) and output lengths (8 new tokens vs 16 new tokens):" in err


def test_what_a_comparison_is_for_is_shown_not_refused(bench, capsys):
    """Scenario, batch size (and image, GPU) are what one compares: a difference is a ≠, not an error."""
    code, out, err = runner(capsys, "compare", bench.repeats[0], bench.bf16_bs4)
    assert code == 0, err
    assert re.search(r"^\| scenario \| fp32 \| bf16 \| ≠ \|$", out, re.M)
    assert re.search(r"^\| batch \| 1 \| 4 \| ≠ \|$", out, re.M)
    assert "warning" not in err


def test_one_checkpoint_in_another_folder_is_the_same_model(bench, tmp_path, capsys):
    """Two machines keep a checkpoint in different folders; a cross-GPU comparison must not be refused."""

    def moved(r: RunResult) -> None:
        r.config.model = f"/data/elsewhere/{Path(r.config.model).name}"

    code, _, err = runner(capsys, "compare", bench.repeats[0], edited_copy(bench.repeats[1], tmp_path, "moved", moved))
    assert code == 0, err


def test_a_run_without_documents_is_refused_then_shown_without_verdicts(bench, capsys):
    code, out, err = runner(capsys, "compare", bench.fp32_bs4, bench.failed)
    assert code == 2 and out == ""
    assert err == (
        "error: oom-bs2 (failed, OutOfMemoryError) has no documents, so there is no speed or score to compare; "
        "pass --allow-different to compare anyway\n"
    )

    code, out, err = runner(capsys, "compare", bench.fp32_bs4, bench.failed, "--allow-different")
    assert code == 0, err
    # The failed run's generate time is a default 0.0, not a measurement: "-", no change, no verdict.
    assert re.search(r"^\| generate time \| [\d.]+ s \| - \| - \| - \|  \|$", out, re.M), out
    assert re.search(r"^\| docs/s \| [\d.]+ \| - \| - \| - \|  \|$", out, re.M)
    assert "- **warning:** no verdicts: oom-bs2 (failed, OutOfMemoryError) has no documents" in out
    cmp = compare_runs(load_run(bench.fp32_bs4), load_run(bench.failed))
    assert {m.direction for m in cmp.metrics} == {""}
    assert next(m for m in cmp.metrics if m.spec.name == "model load").b is not None  # what it did measure


def test_a_run_compared_with_itself_is_warned_about(bench, tmp_path, capsys):
    run = bench.fp32_bs4
    code, _, err = runner(capsys, "compare", run, run)
    assert (
        code == 0 and err == f"warning: {run} is compared with itself (the same folder twice): every change is zero\n"
    )

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    _, _, err = runner(capsys, "compare", run, copy)
    assert err == f"warning: {run} and {copy} are copies of one run (fp32-bs4): this compares a run with itself\n"

    def renamed(r: RunResult) -> None:
        r.run_id = "fp32-bs1-r1"

    same_id = edited_copy(bench.repeats[1], tmp_path, "same-id", renamed)
    _, _, err = runner(capsys, "compare", bench.repeats[0], same_id)
    assert err.startswith(f"warning: {bench.repeats[0]} and {same_id} both hold run id fp32-bs1-r1: ")

    _, _, err = runner(capsys, "compare", *bench.repeats)
    assert err == ""


def test_an_unfinished_run_is_named_with_how_to_resume_it(bench, tmp_path, capsys):
    killed = tmp_path / "killed"
    shutil.copytree(bench.fp32_bs4, killed)
    (killed / "result.json").unlink()  # config.json and docs.jsonl stay: a worker killed before the end
    code, _, err = runner(capsys, "compare", bench.fp32_bs4, killed)
    assert code == 2
    assert err == (
        f"error: {killed}: the run did not finish (8 documents done, no result.json: its worker was stopped or "
        f"killed); finish it with `runner launch --resume {killed}`\n"
    )
    (killed / "config.json").unlink()
    _, _, err = runner(capsys, "compare", bench.fp32_bs4, killed)
    assert err == f"error: {killed} is not a sumbench run folder (no result.json or config.json)\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"run_id": ', "not a valid sumbench result (Invalid JSON: EOF while parsing"),
        (b'{"schema_version": 1}', "not a valid sumbench result (run_id: Field required; 6 more errors)"),
        (b"\xff\xfe{}", "not a valid sumbench result (Invalid JSON"),
        (None, "cannot be read (Is a directory)"),
    ],
)
def test_a_corrupt_result_is_named_with_its_problem(bench, tmp_path, capsys, content, problem):
    broken = tmp_path / "broken"
    shutil.copytree(bench.fp32_bs4, broken)
    path = broken / "result.json"
    if content is None:
        path.unlink()
        path.mkdir()
    else:
        path.write_bytes(content)
    code, _, err = runner(capsys, "compare", bench.fp32_bs4, broken)
    assert code == 2 and err.startswith(f"error: {path}: {problem}") and err.count("\n") == 1, err
