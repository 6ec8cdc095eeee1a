"""The executor interface."""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.catalog import Gpu, Image
from runner.schema import RunConfig

LineHandler = Callable[[str], None]


@dataclass(frozen=True)
class ExitInfo:
    """How a worker ended, as seen from outside it."""

    exit_code: int | None
    oom_killed: bool = False
    timed_out: bool = False
    interrupted: bool = False


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
