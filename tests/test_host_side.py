"""The host side stays light: no torch at import, instant help, one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from runner.contract.catalog import gpus, images
from runner.paths import REPO_ROOT
from runner.scenarios import SCENARIOS

HOST_MODULES = [
    "runner.cli",
    "runner.cli.launch",
    "runner.cli.data",
    "runner.cli.model",
    "runner.cli.catalog",
    "runner.cli.schema",
    "runner.launching",
    "runner.executors.process",
    "runner.contract.datasets",
    "runner.contract.rundir",
    "runner.contract.aggregate",
    "runner.contract.catalog",
    "runner.compat",
    "runner.contract.nvml",
    "runner.console",
]


def test_host_side_never_imports_torch():
    code = (
        "import importlib, sys\n"
        f"for m in {HOST_MODULES!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'vllm'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_command_has_help():
    from click.testing import CliRunner

    from runner.cli import COMMANDS, cli

    runner = CliRunner()
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in cli.list_commands(None):
        assert name in result.output
        sub = runner.invoke(cli, [name, "--help"])
        assert sub.exit_code == 0, sub.output
        assert COMMANDS[name][2].split()[0].lower() in sub.output.lower() or "Usage" in sub.output


def test_unknown_scenario_is_one_line_with_suggestions(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "launch",
            "--model",
            "tiny-llama",
            "--synthetic-weights",
            "--scenario",
            "fp23",
            "--results",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown scenario 'fp23'" in proc.stderr and "fp32" in proc.stderr
    assert not any(tmp_path.iterdir()), "nothing is written for a refused launch"


CATALOG = {"images": list(images()), "gpus": list(gpus()), "scenarios": list(SCENARIOS)}


@pytest.mark.parametrize("kind", CATALOG)
@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal-60-columns"])
def test_catalog_prints_whole_names_on_stdout(cli, kind, terminal):
    """The first column is what --image/--gpu/--scenario take: on stdout, never cut, in a pipe or a narrow terminal."""
    env = {"TTY_COMPATIBLE": "1", "COLUMNS": "60"} if terminal else {"TTY_COMPATIBLE": "0"}
    proc = cli(["catalog", kind], env=env)
    assert proc.returncode == 0 and proc.stderr == ""
    keys = [m.group(1) for m in re.finditer(r"^│ (\S+)\s+│", proc.stdout, re.M)]
    assert keys == CATALOG[kind]
    assert "…" not in "".join(line.split("│")[1] for line in proc.stdout.splitlines() if line.startswith("│"))


def test_schema_check_on_a_missing_file_says_it_is_missing(cli, tmp_path):
    missing = tmp_path / "nope.json"
    proc = cli(["schema", "--check", "--out", str(missing)])
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {missing} does not exist: run `runner schema --out {missing}` to write it"


def test_mistyped_command_gets_a_suggestion(cli):
    proc = cli(["lauch"])
    assert proc.returncode == 2
    assert "No such command 'lauch'. Did you mean 'launch'?" in proc.stderr
    assert "Did you mean" not in cli(["zzz"]).stderr


def test_quick_start_uses_the_model_make_demo_builds(cli):
    tiny = re.search(r"^TINY := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M).group(1)
    help_text = cli(["--help"]).stdout
    assert f"runner model tiny {tiny}" in help_text and f"runner launch --model {tiny}" in help_text
    assert f"runner launch --model {tiny}" in (REPO_ROOT / "README.md").read_text()
