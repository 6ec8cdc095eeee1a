"""The command line's own promises, beyond datasets and launch options (tests/test_bad_input.py):
an output that cannot be written, a mistyped option value and a clash of options are each one
``error:`` line naming the input and the fix, with exit code 2; --help shows examples and says what
every option means; `runner catalog` has forms for scripts and documents and fits a narrow terminal.

Most cases call the real entry point (``runner.cli.main``) in the test process; a few run the whole
program in a subprocess, to show nothing else reaches the terminal.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import pytest
from conftest import one_line, run_cli

from runner.cli import main
from runner.contract.catalog import gpus, images
from runner.paths import REPO_ROOT, SCHEMA_FILE
from runner.scenarios import SCENARIOS

# Three committed runs of the tiny model: a report on them takes well under a second.
RUNS = REPO_ROOT / "results" / "reference" / "cpu-tiny-2026-11-26"


def help_text(capsys, args: list[str]) -> str:
    """``runner ARGS --help`` with its lines joined, so a phrase the formatter wrapped still reads whole."""
    main_exit([*args, "--help"])
    return " ".join(capsys.readouterr().out.split())


def main_exit(args: list[str]) -> None:
    """Run ``runner ARGS`` in-process and assert it succeeded."""
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code


@pytest.fixture
def a_file(tmp_path) -> Path:
    """A regular file: a path under it cannot be created, by root either (tests run as root in CI)."""
    path = tmp_path / "afile"
    path.write_text("keep me\n")
    return path


# --- outputs that cannot be written ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["report", str(RUNS), "--out", "/proc/nope/x.md"],
            "error: cannot write /proc/nope/x.md: /proc/nope: No such file or directory; pass another --out",
        ),
        (
            ["report", str(RUNS), "--out", "AFILE/r.md"],
            "error: cannot write AFILE/r.md: AFILE is a file, not a folder; pass another --out",
        ),
        (
            ["report", str(RUNS), "--plots", "AFILE/plots"],
            "error: cannot write AFILE/plots: AFILE is a file, not a folder; pass another --plots",
        ),
        (
            ["schema", "--out", "/proc/x/s.json"],
            "error: cannot write /proc/x/s.json: /proc/x: No such file or directory; pass another --out",
        ),
        (
            ["model", "tiny", "AFILE/tiny"],
            "error: cannot write AFILE/tiny: AFILE is a file, not a folder; pass another OUT_DIR",
        ),
        (
            ["model", "tiny", "/proc/x"],
            "error: cannot write /proc/x: No such file or directory; pass another OUT_DIR",
        ),
    ],
    ids=["report-out-proc", "report-out-under-file", "report-plots-under-file", "schema", "model-tiny", "model-proc"],
)
def test_an_output_that_cannot_be_written_is_one_line(capsys, a_file, args, expected):
    args = [arg.replace("AFILE", str(a_file)) for arg in args]
    assert one_line(capsys, args) == expected.replace("AFILE", str(a_file))
    assert a_file.read_text() == "keep me\n"


def test_data_fetch_into_a_folder_that_cannot_be_made(capsys, a_file, tmp_path):
    source = tmp_path / "xsum.jsonl"
    rows = [{"id": str(i), "document": f"Document {i}.", "summary": f"Summary {i}."} for i in range(3)]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "fetch", "xsum", "--n", "2", "--source", str(source), "--out", str(a_file / "d")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    # Above the error, the datasets library's own progress bar ("Generating test split"), as on success.
    assert err.strip().splitlines()[-1] == (
        f"error: cannot write {a_file / 'd'}: {a_file} is a file, not a folder; pass another --out"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_report_into_a_read_only_folder(capsys, tmp_path):
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o555)
    line = one_line(capsys, ["report", str(RUNS), "--out", str(read_only / "r.md")])
    assert line == f"error: cannot write {read_only / 'r.md'}: Permission denied; pass another --out"


def test_the_program_prints_one_line_for_an_unwritable_output():
    proc = run_cli(["report", str(RUNS), "--out", "/proc/nope/x.md"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: cannot write /proc/nope/x.md: /proc/nope: No such file or directory; pass another --out"
    ]


def test_schema_check_of_a_folder_is_a_read_error(capsys, tmp_path):
    """--check reads --out: a failure there is no failure to write."""
    line = one_line(capsys, ["schema", "--check", "--out", str(tmp_path)])
    assert "--out" in line and "is a directory" in line and "cannot write" not in line


# --- usage errors: one line, naming the option ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["launch", "--batch-size", "0"], "error: --batch-size: '0' must be at least 1 (see runner launch --help)"),
        (
            ["launch", "--executor", "podman"],
            "error: --executor: 'podman' is not one of 'process', 'docker' (see runner launch --help)",
        ),
        (["report"], "error: Missing argument 'RESULTS...' (see runner report --help)"),
        (["catalog", "gpus", "--json", "--markdown"], "error: --json and --markdown: choose one"),
    ],
)
def test_usage_errors_are_one_line(capsys, args, expected):
    assert one_line(capsys, args).startswith(expected)


def test_a_bad_batch_size_in_a_matrix_names_the_option(capsys):
    line = one_line(capsys, ["matrix", "--images", "cpu", "--model", "m", "--batch-sizes", "1,0"])
    assert line.startswith("error: --batch-sizes: '0' must be at least 1")


def test_batch_sizes_type_names_the_option():
    """The type matrix.py can adopt: a bad item fails while click knows the option."""
    import click

    from runner.cli.types import BATCH_SIZES

    @click.command()
    @click.option("--batch-sizes", type=BATCH_SIZES, default="1")
    def command(batch_sizes):
        click.echo(repr(batch_sizes))

    assert command.main(["--batch-sizes", "1, auto,dynamic"], standalone_mode=False) is None
    with pytest.raises(click.BadParameter) as bad:
        command.main(["--batch-sizes", "1,0"], standalone_mode=False)
    assert bad.value.param.name == "batch_sizes" and "'0' must be at least 1" in bad.value.message


def test_the_program_prints_one_line_for_a_usage_error():
    proc = run_cli(["launch", "--batch-size", "0"])
    assert proc.returncode == 2
    expected = "error: --batch-size: '0' must be at least 1 (see runner launch --help)"
    assert proc.stderr.strip().splitlines() == [expected]


# --- sizes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("16G", "'16G' is ambiguous: write 16GiB (powers of 1024) or 16GB (powers of 1000)"),
        ("16 gigs", "B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"),
    ],
)
def test_a_size_without_a_known_unit_lists_the_units(capsys, value, expected):
    line = one_line(capsys, ["plan", "--model", "llama-2-7b", "--gpu", "t4", "--gpu-memory-limit", value])
    assert line.startswith("error: --gpu-memory-limit: ") and expected in line


def test_a_size_keeps_the_words_it_was_given():
    """So that a message can echo `16GB`, not `14.9 GiB`, back to whoever typed 16GB."""
    from runner.cli.types import BYTE_SIZE

    size = BYTE_SIZE.convert("16GB", None, None)
    assert size == 16 * 10**9 and size.text == "16GB"
    assert pickle.loads(pickle.dumps(size)).text == "16GB"
    assert json.dumps({"limit": size}) == '{"limit": 16000000000}'


# --- help -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "example"),
    [
        (["launch"], "runner launch --model .cache/tiny-llama --batch-size 4"),
        (["report"], "runner report results/ --out report.md --plots plots/"),
        (["compare"], "runner compare results/RUN-A results/RUN-B"),
        (["matrix"], "runner matrix --images cpu"),
    ],
)
def test_help_shows_examples(capsys, command, example):
    text = help_text(capsys, command)
    assert "Examples:" in text and example in text


@pytest.mark.parametrize(("command", "instead"), [("launch", "--resume"), ("matrix", "--collect")])
def test_help_says_when_model_is_required(capsys, command, instead):
    assert f"[required unless {instead}]" in help_text(capsys, [command])


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["launch"], "--max-new-tokens"),
        (["plan"], "--max-new-tokens"),
        (["matrix"], "--max-new-tokens"),
        (["data", "inspect"], "--text-field"),
        (["data", "inspect"], "--summary-field"),
        (["data", "inspect"], "--id-field"),
        (["data", "fetch"], "--out"),
        (["schema"], "--out"),
    ],
)
def test_options_have_help(command, option):
    from runner.cli import cli

    ctx = cli.make_context("runner", [*command, "--help"], resilient_parsing=True)
    for name in command:
        cmd = ctx.command.get_command(ctx, name)
        ctx = cmd.make_context(name, [], parent=ctx, resilient_parsing=True)
    param = next(p for p in ctx.command.params if option in p.opts)
    assert param.help, f"runner {' '.join(command)} {option} has no help"


def test_schema_help_shows_no_machine_path(capsys):
    text = help_text(capsys, ["schema"])
    assert "the repository's schema/result.schema.json" in text
    assert str(REPO_ROOT) not in text


def test_schema_check_passes_from_any_folder(tmp_path):
    proc = run_cli(["schema", "--check"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{SCHEMA_FILE} is up to date"


# --- runner model tiny ---------------------------------------------------------------------------------


def test_model_tiny_refuses_a_folder_that_holds_other_things(capsys, tmp_path):
    folder = tmp_path / "results"
    (folder / "run").mkdir(parents=True)
    line = one_line(capsys, ["model", "tiny", str(folder)])
    assert line == (
        f"error: {folder} is not empty and holds no model (no config.json): give a new or empty folder, "
        "or pass --force to write into it anyway"
    )
    assert [p.name for p in folder.iterdir()] == ["run"]


@pytest.mark.slow
def test_model_tiny_with_force_prints_one_line_and_no_progress_bars(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    proc = run_cli(["model", "tiny", str(folder), "--force"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == f"tiny Llama written to {folder}\n"
    assert "Writing model shards" not in proc.stderr and "it/s" not in proc.stderr, proc.stderr
    assert (folder / "config.json").is_file() and (folder / "notes.txt").read_text() == "mine\n"
    # A model folder is rebuilt without --force.
    again = run_cli(["model", "tiny", str(folder)])
    assert again.returncode == 0, again.stderr[-2000:]


# --- runner catalog ---------------------------------------------------------------------------------------

CATALOG = {"images": ("image", list(images())), "gpus": ("gpu", list(gpus())), "scenarios": ("scenario", [*SCENARIOS])}


@pytest.mark.parametrize("kind", CATALOG)
def test_catalog_json_lists_every_name(capsys, kind):
    main_exit(["catalog", kind, "--json"])
    key, names = CATALOG[kind]
    rows = json.loads(capsys.readouterr().out)
    assert [row[key] for row in rows] == names


@pytest.mark.parametrize("kind", CATALOG)
def test_catalog_markdown_is_a_table(capsys, kind):
    main_exit(["catalog", kind, "--markdown"])
    lines = capsys.readouterr().out.splitlines()
    key, names = CATALOG[kind]
    assert lines[0].startswith(f"| {key} |") and re.fullmatch(r"(\| --- )+\|", lines[1])
    assert [line.split(" | ")[0].removeprefix("| ") for line in lines[2:]] == names


@pytest.mark.parametrize("kind", CATALOG)
def test_catalog_table_fits_columns_in_a_pipe(kind):
    proc = run_cli(["catalog", kind], env={"COLUMNS": "80", "TTY_COMPATIBLE": "0"})
    assert proc.returncode == 0, proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    keys = [m.group(1) for m in re.finditer(r"^│ (\S+)\s+│", proc.stdout, re.M)]
    assert keys == CATALOG[kind][1], "names are never cut or wrapped"
