"""Progress events from a worker to the host, as marked JSON lines on the worker's stdout.

Stdout is the one channel every executor has (a subprocess pipe, Docker's log stream, a Kubernetes
pod log), so progress and the final result line travel the same way everywhere.

It is also how a worker learns that its host went away: when the process that started it dies (``kill -9``
of ``runner launch``), the pipe has no reader left and the next event fails to write.
"""

from __future__ import annotations

import json
import os
import select
import sys
from typing import Any

MARK = "::sumbench::"


class HostGone(Exception):
    """The host stopped reading the worker's output: the process that started the run went away."""


def emit(kind: str, **fields: Any) -> None:
    """Write one event; raises ``HostGone`` when stdout is a pipe whose reader has gone."""
    try:
        sys.stdout.write(f"{MARK} {json.dumps({'event': kind, **fields})}\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_output()
        raise HostGone("the host process that started this run went away (its end of the output pipe closed)") from None


def host_gone() -> bool:
    """Whether stdout is a pipe nobody reads any more, checked without writing (Linux's poll reports an
    error on such a pipe); if so, stdout is discarded from now on, as after a failed ``emit``.

    For a ``BrokenPipeError`` raised by someone else's write: a progress bar of a library that loads the
    model writes to stderr, the same pipe, before the worker's next event would have noticed."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        gone = any(mask & select.POLLERR for _, mask in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() on this platform, or no real descriptor
        return False
    if gone:
        _discard_output()
    return gone


def _discard_output() -> None:
    """Send stdout, and stderr where it is the same pipe (the process executor joins them), to /dev/null.

    Whatever the worker still prints after its host went away (its last log lines, the rest of this
    event in the buffer, Python's flush at exit) must not fail again on the closed pipe; ``worker.log``
    and ``result.json`` keep the record.
    """
    try:
        fds = [sys.stdout.fileno()]
        out = os.fstat(fds[0])
    except (OSError, ValueError):  # not a real descriptor (a caller that replaced sys.stdout): nothing to do
        return
    try:
        err = os.fstat(sys.stderr.fileno())
        if (err.st_dev, err.st_ino) == (out.st_dev, out.st_ino):
            fds.append(sys.stderr.fileno())
    except (OSError, ValueError):
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        for fd in fds:
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def parse(line: str) -> dict[str, Any] | None:
    """The event in a line of worker output, or None for an ordinary log line."""
    if not line.startswith(MARK):
        return None
    try:
        event = json.loads(line[len(MARK) :])
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None
