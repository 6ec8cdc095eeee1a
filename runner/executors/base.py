"""The executor interface."""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.contract.catalog import Gpu, Image
from runner.contract.schema import RunConfig
from runner.contract.secrets import redact

LineHandler = Callable[[str], None]


@dataclass(frozen=True)
class ExitInfo:
    """How a worker ended, as seen from outside it."""

    exit_code: int | None
    oom_killed: bool = False
    oom_reported: bool = False
    """Whether something that knows (a container engine) said if the worker was killed for memory: then
    ``oom_killed`` False rules that out, where a bare process's SIGKILL cannot tell."""
    timed_out: bool = False
    interrupted: bool = False
    start_error: str | None = None
    """The engine's reason the worker never started (a container that could not start), with the fix."""


def stop_signal(exc: KeyboardInterrupt) -> int:
    """The signal that stopped the host, to pass on to its worker so the result names the one a person sent:
    SIGTERM when the host's SIGTERM handler raised it ("signal SIGTERM"), else SIGINT (Ctrl-C)."""
    import signal

    return signal.SIGTERM if "SIGTERM" in str(exc) else signal.SIGINT


class Executor(ABC):
    name: str

    def prepare(self, config: RunConfig, image: Image, gpu: Gpu) -> RunConfig:
        """Check the executor can run this cell (image present, GPU found) and record how it will."""
        return config

    @abstractmethod
    def execute(self, config: RunConfig, run_dir: Path, on_line: LineHandler, timeout: float | None) -> ExitInfo:
        """Run the worker on ``run_dir`` and feed each line of its output to ``on_line``."""


@contextlib.contextmanager
def deadline(timeout: float | None, stop: Callable[[], None]) -> Iterator[threading.Event]:
    """Call ``stop`` once ``timeout`` seconds pass inside the block; the event says whether it did."""
    expired = threading.Event()

    def on_timeout() -> None:
        expired.set()
        stop()

    timer = threading.Timer(timeout, on_timeout) if timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        yield expired
    finally:
        if timer:
            timer.cancel()


@contextlib.contextmanager
def output_log(path: Path, on_line: LineHandler) -> Iterator[LineHandler]:
    """A line handler that also appends every line, redacted, to ``path`` (``output.log``).

    The worker's own log has only what its logger saw; this file has everything the process printed, a
    backend's engine processes and native crash messages included. A full disk stops the file, never the
    run: the worker's records and result matter more than a copy of its output.
    """
    try:
        file = path.open("a", encoding="utf-8")
    except OSError:
        file = None

    def emit(line: str) -> None:
        nonlocal file
        line = redact(line)
        if file is not None:
            try:
                file.write(line + "\n")
                file.flush()
            except OSError:
                with contextlib.suppress(OSError):
                    file.close()
                file = None
        on_line(line)

    try:
        yield emit
    finally:
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
