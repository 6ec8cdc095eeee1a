"""What the host and the GPU did during one timed generate call: the sweep's evidence for why a call ran slow.

On the H100 sweeps the same generate call ran anywhere from 7 to 30 s: slowest in the first cell at a
batch size and in the first call of the process, whichever side (worker or bare loop) ran it. Decoding a
7B model at these batches is bound by the host: about 25 ms of Python and kernel launches per step
against a few ms of GPU work, so a slow call is one whose host thread ran slow, was kept off its CPU, or
waited on a GPU that ran slow. A probe around each call tells these apart:

- ``thread_cpu_pct``: the calling thread's CPU time over the call's wall time. CUDA spins while it waits
  for the GPU, so a thread that kept its CPU stays near 100; well under 100 means it was descheduled or
  blocked (page faults, I/O).
- ``involuntary_switches``: times the kernel took the CPU away from the thread: contention.
- ``steal_pct`` / ``iowait_pct`` / ``host_busy_pct``: the whole machine's CPU time in the call, from
  /proc/stat: a hypervisor taking the virtual CPUs, waiting disks, other work.
- ``minor_faults`` / ``major_faults``: pages the process touched for the first time or read back in.
- ``gc_collections``: Python's full (generation 2) garbage collections during the call.
- ``at_seconds``: when the call started, in seconds since the probe was made (the sweep's start), to tell
  a slowness that fades with the process's age from one that comes with each new batch size.
- ``gpu_util_pct``: the mean of NVML's utilization samples taken in the call (share of time a kernel ran);
  ``sm_clock_mhz`` at its end.

A probe costs a few system calls and, on a GPU, two NVML reads at each end: well under a millisecond
against calls of seconds.
"""

from __future__ import annotations

import gc
import resource
import time
from dataclasses import dataclass
from typing import Any

# /proc/stat's cpu line: user nice system idle iowait irq softirq steal (guest time is inside user)
_STEAL, _IOWAIT, _IDLE = 7, 4, 3


def _cpu_times() -> list[int] | None:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:  # not Linux
        return None
    return [int(x) for x in fields[1:9]] if fields and fields[0] == "cpu" else None


_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)  # per-thread counters are Linux-only


@dataclass
class _Mark:
    wall: float
    thread_cpu: float
    process_cpu: float
    thread: resource.struct_rusage
    process: resource.struct_rusage
    cpu: list[int] | None
    gc_full: int
    nvml_us: int


class CallProbe:
    """``start()`` before a call, ``stop()`` after it: one dict per call. ``gpu`` is the NVML device index
    to sample, or None off a GPU (or where NVML cannot be opened: the host readings still come)."""

    def __init__(self, gpu: int | None = None) -> None:
        self._handle = None
        self._nvml: Any = None
        if gpu is not None:
            try:
                import pynvml

                pynvml.nvmlInit()
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(gpu)
                self._nvml = pynvml
            except Exception:  # a diagnostic: without NVML the host half is still worth having
                self._handle = None
        self._mark: _Mark | None = None
        self._origin = time.perf_counter()

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.nvmlShutdown()
            self._nvml = self._handle = None

    def __enter__(self) -> CallProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._mark = _Mark(
            wall=time.perf_counter(),
            thread_cpu=time.thread_time(),
            process_cpu=time.process_time(),
            thread=resource.getrusage(_THREAD),
            process=resource.getrusage(resource.RUSAGE_SELF),
            cpu=_cpu_times(),
            gc_full=gc.get_stats()[2]["collections"],
            nvml_us=int(time.time() * 1e6),
        )

    def stop(self) -> dict[str, Any]:
        m = self._mark
        if m is None:
            raise RuntimeError("CallProbe.stop() without start()")
        wall = time.perf_counter() - m.wall
        thread, process, cpu = resource.getrusage(_THREAD), resource.getrusage(resource.RUSAGE_SELF), _cpu_times()
        out: dict[str, Any] = {
            "at_seconds": m.wall - self._origin,
            "seconds": wall,
            "thread_cpu_pct": 100 * (time.thread_time() - m.thread_cpu) / wall if wall > 0 else None,
            "process_cpu_pct": 100 * (time.process_time() - m.process_cpu) / wall if wall > 0 else None,
            "involuntary_switches": thread.ru_nivcsw - m.thread.ru_nivcsw,
            "voluntary_switches": thread.ru_nvcsw - m.thread.ru_nvcsw,
            "minor_faults": process.ru_minflt - m.process.ru_minflt,
            "major_faults": process.ru_majflt - m.process.ru_majflt,
            "gc_collections": gc.get_stats()[2]["collections"] - m.gc_full,
            **_shares(m.cpu, cpu),
            **self._gpu(m.nvml_us),
        }
        self._mark = None
        return out

    def _gpu(self, since_us: int) -> dict[str, Any]:
        if self._handle is None:
            return {"gpu_util_pct": None, "sm_clock_mhz": None}
        nv, h = self._nvml, self._handle
        try:
            _, samples = nv.nvmlDeviceGetSamples(h, nv.NVML_GPU_UTILIZATION_SAMPLES, since_us)
            values = [s.sampleValue.uiVal for s in samples if s.timeStamp >= since_us]
            util = sum(values) / len(values) if values else nv.nvmlDeviceGetUtilizationRates(h).gpu
        except Exception:  # older drivers lack the samples buffer: the last sample period instead
            try:
                util = nv.nvmlDeviceGetUtilizationRates(h).gpu
            except Exception:
                util = None
        try:
            clock = nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)
        except Exception:
            clock = None
        return {"gpu_util_pct": util, "sm_clock_mhz": clock}


def _shares(before: list[int] | None, after: list[int] | None) -> dict[str, float | None]:
    """Steal, iowait and busy time as shares of all the machine's CPU time between two /proc/stat reads."""
    if not before or not after:
        return {"steal_pct": None, "iowait_pct": None, "host_busy_pct": None}
    d = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(d)
    if total <= 0:  # the clock ticks at 100 Hz: a call shorter than a tick sees none
        return {"steal_pct": None, "iowait_pct": None, "host_busy_pct": None}
    return {
        "steal_pct": 100 * d[_STEAL] / total,
        "iowait_pct": 100 * d[_IOWAIT] / total,
        "host_busy_pct": 100 * (total - d[_IDLE] - d[_IOWAIT] - d[_STEAL]) / total,
    }


def probe_line(call: dict[str, Any]) -> str:
    """One call's readings, short enough for a table cell."""

    def num(key: str, spec: str) -> str:
        v = call.get(key)
        return "-" if v is None else format(v, spec)

    return (
        f"@{num('at_seconds', '.0f')}s cpu {num('thread_cpu_pct', '.0f')}%, invol {num('involuntary_switches', 'd')}, "
        f"steal {num('steal_pct', '.1f')}%, busy {num('host_busy_pct', '.0f')}%, "
        f"faults {num('minor_faults', 'd')}/{num('major_faults', 'd')}, gpu {num('gpu_util_pct', '.0f')}%"
    )
