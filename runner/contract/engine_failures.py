"""The root cause of a failure that happened in a backend's own engine process.

vLLM V1 runs its engine core in a child process. When that process fails to start (the usual cause: the
KV cache of one max-length sequence does not fit beside the weights), the child prints its exception to
stderr and exits, and the worker's ``LLM()`` call only raises "Engine core initialization failed. See
root cause above." The worker cannot read what its child printed, but the executor keeps every line the
worker process tree printed in ``output.log``; the host reads the root cause from there and records it,
so an out-of-memory start is filed as ``OutOfMemoryError`` beside every other one.

Shared by both sides: the worker's vLLM backend recognises the same out-of-memory wording in exceptions
it does see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from runner.contract.schema import ErrorInfo

# vLLM's start-up memory checks (V0 and V1 wording): the weights fit but the KV cache of one
# max-length sequence does not. They are ValueErrors, yet mean exactly what a CUDA OOM means here.
OOM_MESSAGES = (
    "no available memory for the cache blocks",
    "larger than the available kv cache memory",
    "maximum number of tokens that can be stored in kv cache",
    "is less than desired gpu memory utilization",
    "cuda out of memory",
)
# What the worker's exception says when the engine process died and its reason is elsewhere.
ENGINE_DIED = (
    "engine core initialization failed",
    "enginecore encountered a fatal error",
    "enginedeaderror",
    "engine process failed to start",
)
# The last line of a Python traceback, possibly behind vLLM's "(EngineCore_DP0 pid=123) " prefix and a
# logger's "ERROR 11-26 10:00:00 [core.py:12] " header.
_EXCEPTION_LINE = re.compile(
    r"^(?:\([^)]*\)\s+)?(?:[A-Z]+ \d\d-\d\d [\d:]+ \[[^\]]*\]\s+)?"
    r"(?P<cls>[A-Za-z_][\w.]*(?:Error|Exception|Exit)): (?P<msg>\S.*)$"
)


def mentions_out_of_memory(text: str) -> bool:
    lowered = text.lower()
    return any(message in lowered for message in OOM_MESSAGES)


def engine_died(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in ENGINE_DIED)


def root_cause(lines: Iterable[str], worker_message: str) -> tuple[str, str] | None:
    """(exception class, message) of the last exception printed in ``lines`` that is not the worker's own
    report of the engine's death, or None when there is none."""
    found = None
    for line in lines:
        match = _EXCEPTION_LINE.match(line.strip())
        if match and not engine_died(match["msg"]) and match["msg"].strip() not in worker_message:
            found = (match["cls"].rsplit(".", 1)[-1], match["msg"].strip())
    return found


def explain(error: ErrorInfo, output_lines: Iterable[str]) -> ErrorInfo | None:
    """The worker's error restated with the engine process's root cause, or None when the error is not an
    engine's death or no cause was printed."""
    if not engine_died(error.message):
        return None
    cause = root_cause(output_lines, error.message)
    if cause is None:
        return None
    cls, message = cause
    if mentions_out_of_memory(message) or cls == "OutOfMemoryError":
        return ErrorInfo(
            error_class="OutOfMemoryError",
            message=f"{cls}: {message} (printed by the engine process, which failed to start): the model and "
            "one max-length sequence's KV cache do not fit; try a quantized scenario, a larger GPU, or a "
            "shorter --max-input-tokens",
        )
    return ErrorInfo(
        error_class=cls, message=f"{message} (printed by the engine process; the worker saw: {error.message})"
    )
