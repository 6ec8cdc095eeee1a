"""Trackers: peak memory and GPU energy, measured around generation, apart from any backend."""

from __future__ import annotations

import resource
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from runner.contract.nvml import energy_millijoules, list_gpus, memory_reader

Reader = Callable[[int], AbstractContextManager[Callable[[], int | None] | None]]


class DeviceMemorySampler:
    """The most GPU memory in use on the device between ``start`` and ``stop``, read through NVML by a
    background thread every ``interval`` seconds.

    torch's counters see only this process's allocator, and neither a CUDA context nor another process:
    vLLM V1 keeps its weights and KV cache in its engine-core process. NVML sees the card as nvidia-smi
    does, so this peak compares across backends. Samples miss spikes shorter than the interval; the large
    allocations (weights, a KV cache) live far longer.
    """

    def __init__(self, index: int | None, interval: float = 0.05, reader: Reader = memory_reader) -> None:
        self.index, self.interval, self.reader = index, interval, reader
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.index is None or self._thread is not None:
            return
        self._stop.clear()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(ready,), name="device-memory", daemon=True)
        self._thread.start()
        ready.wait(5)  # the first sample is taken before generation starts

    def stop(self) -> int | None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        return self.peak

    def _sample(self, ready: threading.Event) -> None:
        try:
            with self.reader(self.index) as read:  # type: ignore[arg-type]
                while True:
                    value = read() if read is not None else None
                    if value is not None:
                        self.peak = max(self.peak or 0, value)
                    ready.set()
                    if read is None or self._stop.wait(self.interval):
                        break
                if read is not None and (value := read()) is not None:
                    self.peak = max(self.peak or 0, value)  # the state at the end, however short the run
        finally:
            ready.set()


class MemoryTracker:
    """Peak memory: torch's CUDA allocator on a GPU (NVML's device-wide peak when the backend's engine runs
    in another process), the process's max RSS on a CPU; and the device-wide peak beside it on any GPU."""

    def __init__(self, device: str, sampler: DeviceMemorySampler | None = None) -> None:
        self.device = device
        self.sampler = sampler or DeviceMemorySampler(nvml_index(device))
        self.in_process = True

    def limit(self, limit_bytes: int | None) -> None:
        """Cap usable GPU memory, so a smaller card's out-of-memory can be reproduced on a big one."""
        if limit_bytes is None or self.device == "cpu":
            return
        import torch

        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, limit_bytes / total), 0)

    def reset(self, in_process: bool = True) -> None:
        """Start measuring; ``in_process`` False for a backend whose GPU memory belongs to another process."""
        self.in_process = in_process
        if self.device != "cpu" and in_process:
            import torch

            torch.cuda.reset_peak_memory_stats()
        self.sampler.start()

    def peak(self) -> tuple[int | None, int | None, str]:
        """(peak bytes, peak allocated bytes or None, what was measured); stops the device sampler."""
        device_peak = self.sampler.stop()
        if self.device == "cpu":
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return rss * (1 if sys.platform == "darwin" else 1024), None, "process_max_rss"
        if not self.in_process:
            return device_peak, None, "nvml_device_used"
        import torch

        return torch.cuda.max_memory_reserved(), torch.cuda.max_memory_allocated(), "torch_cuda_max_reserved"

    @property
    def device_peak(self) -> int | None:
        return self.sampler.peak


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
    except Exception:  # energy and the device peak are a bonus: never fail a run over finding their counters
        return 0


class EnergyTracker:
    """GPU energy from NVML's cumulative counter (Volta and newer) of the GPU at NVML ``index``
    (``nvml_index``); nothing without one (a CPU run)."""

    def __init__(self, index: int | None) -> None:
        self.index = index
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
