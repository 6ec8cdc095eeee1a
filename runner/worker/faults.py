"""Fault injection for tests of the recovery paths, switched on by environment variables only.

SUMBENCH_INJECT_OOM_AT_BATCH=N raises the backend's out-of-memory error for any generate call of N or
more prompts, so the auto batch size's halving can be exercised on a CPU exactly as a GPU triggers it.
SUMBENCH_INJECT_DELAY_S=S sleeps S seconds per batch, so a test can kill a worker mid-run.
"""

from __future__ import annotations

import os
import time


def before_generate(batch_size: int) -> None:
    threshold = os.environ.get("SUMBENCH_INJECT_OOM_AT_BATCH")
    if threshold and batch_size >= int(threshold):
        import torch

        raise torch.OutOfMemoryError(f"injected: CUDA out of memory at batch size {batch_size}")
    if delay := os.environ.get("SUMBENCH_INJECT_DELAY_S"):
        time.sleep(float(delay))
