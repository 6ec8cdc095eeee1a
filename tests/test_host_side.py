"""The host side stays light: no torch at import, instant help, one-line errors."""

from __future__ import annotations

import subprocess
import sys

HOST_MODULES = [
    "runner.cli",
    "runner.cli.launch",
    "runner.cli.data",
    "runner.cli.model",
    "runner.cli.catalog",
    "runner.cli.schema",
    "runner.launching",
    "runner.executors.process",
    "runner.datasets",
    "runner.rundir",
    "runner.aggregate",
    "runner.catalog",
    "runner.compat",
    "runner.nvml",
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
