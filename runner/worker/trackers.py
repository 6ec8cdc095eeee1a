"""Trackers: peak memory and GPU energy, measured around generation, apart from any backend."""

from __future__ import annotations

import resource
import sys

from runner.nvml import energy_millijoules, list_gpus


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


def nvml_index(device: str) -> int | None:
    """NVML's index of the GPU torch calls device 0.

    NVML numbers every GPU in the machine while CUDA numbers only those CUDA_VISIBLE_DEVICES lets the
    process see, so the same card can be 0 to torch and 3 to NVML; the UUID both report settles it.
    """
    if device == "cpu":
        return None
    try:
        import torch

        uuid = getattr(torch.cuda.get_device_properties(0), "uuid", None)
        wanted = f"GPU-{uuid}" if uuid is not None else None
        return next((g.index for g in list_gpus() if g.uuid == wanted), 0)
    except Exception:  # energy is a bonus: never fail a run over finding its counter
        return 0


class EnergyTracker:
    """GPU energy from NVML's cumulative counter (Volta and newer); None elsewhere."""

    def __init__(self, device: str) -> None:
        self.index = nvml_index(device)
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
