"""Fault injection for tests of the recovery paths, switched on by environment variables only.

A GPU's failures cannot be summoned on a CPU, so the worker calls ``before_generate`` before every
batch and these variables make it fail the way a GPU would, at a chosen point:

SUMBENCH_INJECT_OOM_AT_BATCH=N
    raises the backend's out-of-memory error for any generate call of N or more prompts, so the auto
    batch size's halving can be exercised on a CPU exactly as a GPU triggers it.
SUMBENCH_INJECT_ERROR=KIND@B[:MESSAGE]
    raises KIND (RuntimeError, CudaError or MemoryError) before batch number B (the ``batch`` field of
    ``docs.jsonl``), after the earlier batches were written, so a mid-run crash keeps real records;
    KIND Segfault crashes the process in native code instead, as a faulty kernel library would; KIND
    EngineCoreOOM fails as vLLM V1 does when its engine process cannot fit the KV cache: a real child
    process prints vLLM's out-of-memory ValueError to stderr and exits, and the worker raises only
    "Engine core initialization failed", so the root cause is in the output, not the exception.
SUMBENCH_INJECT_DELAY_S=S
    sleeps S seconds per batch, so a test can kill or interrupt a worker mid-run.
SUMBENCH_INJECT_HOLD_AFTER_RESULT_S=S
    sleeps S seconds once ``result.json`` is written, before the worker tells the host and exits, so a
    test can kill a run in the moment between its last write and its end.

A run with any of them set says so in its result's notes: an injected failure is never mistaken for
a measured one.
"""

from __future__ import annotations

import os
import time

PREFIX = "SUMBENCH_INJECT_"
KINDS = ("RuntimeError", "CudaError", "MemoryError", "Segfault", "EngineCoreOOM")
# vLLM V1's wording, child and parent (vllm/v1/core/kv_cache_utils.py, vllm/v1/engine/core_client.py).
ENGINE_OOM = (
    "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."
)
ENGINE_DIED = "Engine core initialization failed. See root cause above. Failed core proc(s): {'EngineCore_DP0': 1}"


def active() -> dict[str, str]:
    """The fault-injection variables set in this process."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(PREFIX) and v}


def before_generate(batch_size: int, batch_no: int = 0) -> None:
    if delay := os.environ.get(f"{PREFIX}DELAY_S"):
        _sleep(float(delay))  # first: an injected out-of-memory then fails a call that took time, as a GPU's does
    threshold = os.environ.get(f"{PREFIX}OOM_AT_BATCH")
    if threshold and batch_size >= int(threshold):
        import torch

        raise torch.OutOfMemoryError(f"injected: CUDA out of memory at batch size {batch_size}")
    if spec := os.environ.get(f"{PREFIX}ERROR"):
        _maybe_raise(spec, batch_no)


def _maybe_raise(spec: str, batch_no: int) -> None:
    head, _, message = spec.partition(":")
    kind, _, at = head.partition("@")
    if kind not in KINDS or not at.isdigit():
        raise ValueError(f"{PREFIX}ERROR={spec!r}: expected KIND@BATCH[:MESSAGE], KIND one of {', '.join(KINDS)}")
    if batch_no != int(at):
        return
    message = message or f"injected {kind} before batch {batch_no}"
    if kind == "EngineCoreOOM":
        import subprocess
        import sys

        subprocess.run([sys.executable, "-c", f"raise ValueError({ENGINE_OOM!r})"], check=False)
        raise RuntimeError(ENGINE_DIED)
    if kind == "Segfault":
        import faulthandler

        faulthandler._sigsegv()  # a real SIGSEGV, raised in C
    if kind == "MemoryError":
        raise MemoryError(message)
    if kind == "CudaError":
        import torch

        # What torch raises for an illegal memory access or a kernel without an image for the GPU.
        raise getattr(torch, "AcceleratorError", RuntimeError)(f"CUDA error: {message}")
    raise RuntimeError(message)


def after_result() -> None:
    """Hold the worker after its result is written (``SUMBENCH_INJECT_HOLD_AFTER_RESULT_S``)."""
    if hold := os.environ.get(f"{PREFIX}HOLD_AFTER_RESULT_S"):
        _sleep(float(hold))


SLEEP_STEP_S = 0.1


def _sleep(seconds: float) -> None:
    """Sleep in short steps. The kernel may hand a stop signal to any thread (transformers leaves a tqdm
    monitor thread behind), and Python runs its handler only when the main thread next runs Python code:
    one long ``time.sleep`` would hold Ctrl-C back until it ends, as no real batch does."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, SLEEP_STEP_S))
