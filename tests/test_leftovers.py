"""What a run leaves behind and how it words its end: an earlier attempt's error.log, the lock file, the
signal a person sent (also to a job started in the background), SIGKILL without a reported OOM, plurals,
and the hint for the SkyPilot client that lives in its own environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import read_docs, read_result, run_cli, stopped_after_one_batch, wait_for

from runner.contract.errors import UserError
from runner.executors.base import ExitInfo
from runner.launching import LaunchRequest, dead_worker_error, prepare
from runner.paths import REPO_ROOT
from runner.targets import require


def test_a_completed_resume_moves_the_earlier_error_log_aside(make_run_dir, run_worker, monkeypatch):
    run_dir = stopped_after_one_batch(make_run_dir, run_worker, monkeypatch)
    traceback = (run_dir / "error.log").read_text()
    assert "RuntimeError" in traceback

    proc = run_cli(["launch", "--resume", str(run_dir)])

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_result(run_dir)["status"] == "completed"
    assert not (run_dir / "error.log").exists(), "no traceback beside a completed result"
    (aside,) = run_dir.glob("error.previous-*.log")
    assert aside.read_text() == traceback


def test_no_lock_file_is_left_after_a_run(make_run_dir, run_worker):
    run_dir = make_run_dir()
    assert run_worker(run_dir) == 0
    assert not (run_dir / ".lock").exists()


def test_one_kept_document_is_one_document(make_run_dir, run_worker, monkeypatch, tmp_path):
    run_dir = stopped_after_one_batch(make_run_dir, run_worker, monkeypatch, batch_size=1)
    assert len(read_docs(run_dir)) == 1
    notes = prepare(LaunchRequest(model="", data=""), resume=run_dir).notes
    assert any(n.startswith("resumed: 1 document was already done and is kept") for n in notes), notes


def slow_launch(tiny_model, small_dataset, results, run_id, ignore_sigint: bool = False) -> subprocess.Popen:
    args = ["launch", "--model", str(tiny_model), "--data", str(small_dataset), "--batch-size", "2",
            "--max-new-tokens", "4", "--results", str(results), "--run-id", run_id]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "SUMBENCH_INJECT_DELAY_S": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # What a shell does to a job it starts with `&` in a script: SIGINT ignored, inherited by children.
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None,
    )


@pytest.mark.parametrize("background", [False, True], ids=["foreground", "background"])
def test_sigint_to_the_host_is_recorded_as_sigint(tiny_model, small_dataset, tmp_path, background):
    """`kill -INT` of the host alone (or Ctrl-C where the worker does not see it) is passed on as SIGINT,
    not SIGTERM; a host started in the background, with SIGINT ignored, hears it too."""
    results = tmp_path / "results"
    host = slow_launch(tiny_model, small_dataset, results, "sigint", ignore_sigint=background)
    try:
        wait_for(lambda: len(read_docs(results / "sigint")) >= 2, timeout=180, what="the first batch")
        os.kill(host.pid, signal.SIGINT)
        host.communicate(timeout=120)
    finally:
        if host.poll() is None:
            host.kill()
    assert host.returncode == 130
    error = read_result(results / "sigint")["error"]
    assert error["error_class"] == "Interrupted" and "stopped by signal SIGINT" in error["message"]


def test_sigkill_blames_memory_only_where_no_engine_ruled_it_out():
    bare = dead_worker_error(ExitInfo(exit_code=-9)).message
    assert "SIGKILL" in bare and "out-of-memory killer" in bare
    engine = dead_worker_error(ExitInfo(exit_code=137, oom_reported=True)).message
    assert "engine reported no out-of-memory kill" in engine and "out-of-memory killer" not in engine
    assert dead_worker_error(ExitInfo(exit_code=137, oom_killed=True, oom_reported=True)).error_class == (
        "ContainerOOMKilled"
    )


def test_the_skypilot_hint_names_its_own_environment():
    with pytest.raises(UserError) as info:
        require("sumbench_no_such_module", "sky", "--target sky")
    said = str(info.value)
    assert "cannot share this environment" in said and "make sky-env" in said and ".cache/venv-sky" in said
    assert "pip install 'sumbench[sky]'" not in said
