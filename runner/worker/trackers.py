"""Trackers: peak memory and GPU energy, measured around generation, apart from any backend."""

from __future__ import annotations

import resource
import sys

from runner.nvml import energy_millijoules


class MemoryTracker:
    """Peak memory: torch's CUDA allocator on a GPU, the process's max RSS on a CPU."""

    def __init__(self, device: str) -> None:
        self.device = device

    def limit(self, limit_bytes: int | None) -> None:
        """Cap usable GPU memory, so a smaller card's out-of-memory can be reproduced on a big one."""
        if limit_bytes is None or self.device == "cpu":
            return
        import torch

        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, limit_bytes / total), 0)

    def reset(self) -> None:
        if self.device != "cpu":
            import torch

            torch.cuda.reset_peak_memory_stats()

    def peak(self) -> tuple[int, int | None, str]:
        """(peak bytes, peak allocated bytes or None, what was measured)."""
        if self.device == "cpu":
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return rss * (1 if sys.platform == "darwin" else 1024), None, "process_max_rss"
        import torch

        return torch.cuda.max_memory_reserved(), torch.cuda.max_memory_allocated(), "torch_cuda_max_reserved"


class EnergyTracker:
    """GPU energy from NVML's cumulative counter (Volta and newer); None elsewhere."""

    def __init__(self, device: str) -> None:
        self.index = 0 if device != "cpu" else None
        self.joules = 0.0
        self._start: int | None = None

    def start(self) -> None:
        self._start = energy_millijoules(self.index) if self.index is not None else None

    def stop(self) -> None:
        if self._start is None or self.index is None:
            return
        end = energy_millijoules(self.index)
        if end is not None:
            self.joules += (end - self._start) / 1000
        self._start = None

    @property
    def available(self) -> bool:
        return self.index is not None and energy_millijoules(self.index) is not None
