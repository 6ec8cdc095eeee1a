"""Following a started container to its end: its output line by line, its exit status, stopping it on a
timeout or Ctrl-C, and removing it afterwards.

The worker's only live channel to the host is its output (``runner/contract/events.py``); this module turns the
engine's byte stream into those lines, the same whether the engine is local or at the end of an ssh link.
"""

from __future__ import annotations

import codecs
import contextlib
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path

from runner.executors.base import ExitInfo, LineHandler, deadline, output_log, stop_signal

STOP_GRACE_S = 30  # as the process executor: time for the worker to write its partial result


def follow(container, on_line: LineHandler, log_path: Path, timeout: float | None) -> ExitInfo:
    """Stream the container's output to ``on_line`` and ``output.log`` until it exits.

    Ctrl-C stops the container as the process executor stops its worker (SIGTERM, then SIGKILL after
    the grace period), so the worker writes a partial result; the lines it prints meanwhile are read
    back from the engine's log, which holds all of them.
    """
    interrupted = False
    seen = 0
    with deadline(timeout, lambda: _stop(container)) as timed_out, output_log(log_path, on_line) as write:

        def emit(line: str) -> None:
            nonlocal seen
            seen += 1
            write(line)

        try:
            for line in iter_lines(container.logs(stream=True, follow=True)):
                emit(line)
        except KeyboardInterrupt as exc:
            interrupted = True
            _stop(container, stop_signal(exc))
            for line in all_lines(container)[seen:]:
                emit(line)
        status = _wait(container)
    container.reload()
    return ExitInfo(
        exit_code=status.get("StatusCode"),
        oom_killed=bool(container.attrs.get("State", {}).get("OOMKilled")),
        oom_reported="OOMKilled" in container.attrs.get("State", {}),
        timed_out=timed_out.is_set(),
        interrupted=interrupted,
    )


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines from a stream of byte chunks that may split lines and UTF-8 characters anywhere."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line.rstrip("\r")
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending.rstrip("\r")


def all_lines(container) -> list[str]:
    """The container's whole output so far, split the way ``iter_lines`` splits it."""
    return list(iter_lines([container.logs()]))


def remove(container) -> None:
    with contextlib.suppress(Exception):
        container.remove(force=True)


def _wait(container) -> dict:
    """The exit status. The log stream ends when the container stops, or when a connection drops
    (an ssh link): keep waiting then, the container may still be working."""
    import requests

    while True:
        try:
            return container.wait(timeout=60)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            continue


def _stop(container, sig: int = signal.SIGTERM) -> None:
    """``sig`` (the host's own stop signal; SIGTERM for a timeout), SIGKILL after the grace period; a second
    Ctrl-C meanwhile kills at once."""
    with contextlib.suppress(Exception):
        try:
            if sig == signal.SIGTERM:
                container.stop(timeout=STOP_GRACE_S)
                return
            container.kill(signal=signal.Signals(sig).name)
            try:
                container.wait(timeout=STOP_GRACE_S)
            except Exception:  # still running after the grace period
                container.kill()
        except KeyboardInterrupt:
            container.kill()
