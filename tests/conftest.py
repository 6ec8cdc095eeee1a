"""Shared fixtures: a real tiny Llama built locally, a CLI runner, and one finished real run.

Everything here is real: the model is trained and saved with the same code as `runner model tiny`, and
runs go through the real `runner` command in a subprocess, as a user would start them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.datasets import load_dataset
from runner.paths import REPO_ROOT, SAMPLE_DATASET


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random-weight Llama with a tokenizer trained on the bundled sample, saved with save_pretrained."""
    from runner.worker.models import build_tiny

    out = tmp_path_factory.mktemp("models") / "tiny-llama"
    texts = [d.text for d in load_dataset(SAMPLE_DATASET).documents]
    return build_tiny(out, texts)


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m runner ARGS` in a subprocess, from the repo root, capturing text output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=kwargs.pop("cwd", REPO_ROOT),
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


@pytest.fixture(scope="session")
def cli():
    """The `run_cli` helper as a fixture."""
    return run_cli


@pytest.fixture(scope="session")
def finished_run(tiny_model, tmp_path_factory) -> Path:
    """One completed run of the tiny model on the first 6 bundled documents, batch size 2."""
    results = tmp_path_factory.mktemp("results")
    proc = run_cli([
        "launch", "--model", str(tiny_model), "--limit", "6", "--batch-size", "2",
        "--max-new-tokens", "12", "--results", str(results), "--run-id", "e2e",
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results / "e2e"
