"""The embedded default: the worker in a subprocess of the current Python environment."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from runner.executors.base import Executor, ExitInfo, LineHandler
from runner.schema import LaunchInfo, RunConfig

STOP_GRACE_S = 30  # long enough for a worker to flush its records and write result.json


class ProcessExecutor(Executor):
    name = "process"

    def prepare(self, config, image, gpu) -> RunConfig:
        return config.model_copy(update={"launch": LaunchInfo(executor=self.name)})

    def execute(self, config: RunConfig, run_dir: Path, on_line: LineHandler, timeout: float | None) -> ExitInfo:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner.worker", str(run_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=None,
        )
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            _stop(proc)

        timer = threading.Timer(timeout, on_timeout) if timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        interrupted = False
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                on_line(line.rstrip("\n"))
            proc.wait()
        except KeyboardInterrupt:
            interrupted = True
            _stop(proc)
            assert proc.stdout is not None
            for line in proc.stdout:
                on_line(line.rstrip("\n"))
        finally:
            if timer:
                timer.cancel()
        return ExitInfo(exit_code=proc.returncode, timed_out=timed_out.is_set(), interrupted=interrupted)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM first, so the worker writes a partial result; SIGKILL if it does not stop in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
