"""The embedded default: the worker in a subprocess of the current Python environment.

Stopping is the part that needs care. Ctrl-C in a terminal reaches the host and the worker together;
SIGTERM from a scheduler or ``kill`` reaches the host alone. Either way the host asks the worker to
stop with SIGTERM, waits while it writes its partial result, and only then returns, so the run folder
always ends with a ``result.json`` that says ``Interrupted``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from runner.contract import rundir
from runner.contract.catalog import Image
from runner.contract.errors import UserError
from runner.contract.nvml import list_gpus, select_gpu
from runner.contract.schema import LaunchInfo, RunConfig
from runner.doctor.stack import WORKER_STACK, install_hint, scenario_needs, survey_stack
from runner.executors.base import Executor, ExitInfo, LineHandler, deadline, output_log, stop_signal
from runner.scenarios import get_scenario

STOP_GRACE_S = 30  # long enough for a worker to flush its records and write result.json


class ProcessExecutor(Executor):
    name = "process"

    def prepare(self, config, image, gpu) -> RunConfig:
        """A GPU cell needs a card of its type on this machine, found now rather than after the worker
        loaded; the worker sees that card alone. Where CUDA_VISIBLE_DEVICES is set, the user chose the
        card and the worker keeps that choice. Then the packages its scenario imports, in this Python."""
        uuids = []
        if not gpu.is_cpu and "CUDA_VISIBLE_DEVICES" not in os.environ:
            uuids = [
                select_gpu(
                    gpu,
                    list_gpus(),
                    "this machine",
                    "run the cell where there is one (--executor docker --docker-host URL, or runner matrix "
                    "--target sky or k8s)",
                )
            ]
        _check_packages(config, image)
        return config.model_copy(update={"launch": LaunchInfo(executor=self.name, gpu_uuids=uuids)})

    def execute(self, config: RunConfig, run_dir: Path, on_line: LineHandler, timeout: float | None) -> ExitInfo:
        with _sigterm_interrupts():
            proc = subprocess.Popen(
                worker_command(run_dir),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
                env=_worker_env(config),
            )
            interrupted = False
            with (
                deadline(timeout, lambda: _stop(proc)) as timed_out,
                output_log(run_dir / rundir.OUTPUT_LOG, on_line) as on_line,
            ):
                try:
                    assert proc.stdout is not None
                    for line in proc.stdout:
                        on_line(line.rstrip("\n"))
                    proc.wait()
                except KeyboardInterrupt as exc:
                    interrupted = True
                    with _ignoring_stop_signals():  # a second Ctrl-C must not cut the worker's result short
                        _stop(proc, stop_signal(exc))
                        assert proc.stdout is not None
                        for line in proc.stdout:
                            on_line(line.rstrip("\n"))
        return ExitInfo(exit_code=proc.returncode, timed_out=timed_out.is_set(), interrupted=interrupted)


def _check_packages(config: RunConfig, image: Image) -> None:
    """Refuse a cell whose worker would import a package this Python lacks (the worker's stack: a host
    installed without the ``worker`` extra; or the scenario's engine: vLLM, bitsandbytes, flash-attn):
    the worker would fail on that import only after its run folder was made. What needs what is the
    doctor's knowledge (``runner doctor`` says the same). --force does not pass it: no rule is bent
    here, the import would fail anyway."""
    if config.serving is not None and config.serving.endpoint:
        return  # the client of a server already running imports no engine
    needs = [*WORKER_STACK, *scenario_needs(get_scenario(config.scenario))]
    if missing := survey_stack().missing(needs):
        them = "it" if len(missing) == 1 else "them"
        hint = install_hint(missing, cpu=image.device == "cpu")
        raise UserError(
            f"--image {image.key} --scenario {config.scenario} imports {', '.join(missing)} in the worker, and this "
            f"Python ({sys.executable}) lacks {them}: {hint}, or pass --executor docker"
        )


SAFE_START = (
    "import sys\n"
    "if sys.path[:1] == ['']: del sys.path[0]\n"
    "import runpy\n"
    "runpy.run_module('runner.worker', run_name='__main__', alter_sys=True)\n"
)
"""``python -m runner.worker`` for Python 3.10, which lacks ``-P``: ``-c`` puts the current folder first on
sys.path as ``''``; it is dropped before anything but ``sys`` (built in, never read from a folder) is imported."""


def worker_command(run_dir: Path) -> list[str]:
    """The command that starts the worker on ``run_dir`` with this Python, the current folder kept off its
    sys.path: ``-m`` alone puts it first, so a ``runner/`` folder there (another checkout) would replace
    the installed package and run other code than the host's. Not ``-I``, which also drops PYTHONPATH."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-m", "runner.worker", str(run_dir)]
    return [sys.executable, "-c", SAFE_START, str(run_dir)]


def _worker_env(config: RunConfig) -> dict[str, str] | None:
    """This process's environment, with the worker pinned to the card ``prepare`` chose (by UUID: NVML's
    order and CUDA's can differ); None (inherit as is) for a CPU run or a user's own CUDA_VISIBLE_DEVICES."""
    if not config.launch.gpu_uuids:
        return None
    return {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(config.launch.gpu_uuids)}


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _ignore(signum, frame) -> None:
    pass


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While the worker runs, SIGTERM to the host stops it the way Ctrl-C does, instead of killing the host
    and leaving an orphaned worker to run on unwatched."""
    if not _main_thread():  # signal handlers can only be set from the main thread
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _ignoring_stop_signals() -> Iterator[None]:
    if not _main_thread():
        yield
        return
    # A Python no-op rather than SIG_IGN: a signal already pending when the handler changes would make
    # Python print "ignored due to race condition" with a traceback.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """``sig`` first (the host's own stop signal; SIGTERM for a timeout), so the worker writes a partial
    result; SIGKILL if it does not stop in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
