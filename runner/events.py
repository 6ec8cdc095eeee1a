"""Progress events from a worker to the host, as marked JSON lines on the worker's stdout.

Stdout is the one channel every executor has (a subprocess pipe, Docker's log stream, a Kubernetes
pod log), so progress and the final result line travel the same way everywhere.
"""

from __future__ import annotations

import json
import sys
from typing import Any

MARK = "::sumbench::"


def emit(kind: str, **fields: Any) -> None:
    sys.stdout.write(f"{MARK} {json.dumps({'event': kind, **fields})}\n")
    sys.stdout.flush()


def parse(line: str) -> dict[str, Any] | None:
    """The event in a line of worker output, or None for an ordinary log line."""
    if not line.startswith(MARK):
        return None
    try:
        event = json.loads(line[len(MARK) :])
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None
