"""GPU discovery and energy counters through NVML (nvidia-ml-py), with no torch.

The host uses it to pick a GPU of the requested type by UUID; the worker uses it to record the device
and its energy use. Every function degrades to "no GPUs" where NVML or a driver is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.contract.catalog import Gpu


@dataclass(frozen=True)
class NvmlGpu:
    index: int
    name: str
    uuid: str
    memory_bytes: int
    compute_capability: str
    driver: str
    cuda: str


@contextmanager
def _nvml() -> Iterator[object | None]:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver, no device: all mean "no NVML here"
        yield None
        return
    try:
        yield pynvml
    finally:
        pynvml.nvmlShutdown()


def unavailable() -> str | None:
    """Why NVML cannot be used here, in its own words ("NVML Shared Library Not Found": no driver), or
    None when it starts.

    ``list_gpus`` answers [] alike for no library, no driver and a driver that sees no card, which is all
    a launch needs; a person setting up a machine (``runner doctor``) needs to know which it is."""
    try:
        import pynvml
    except ImportError:
        return "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return str(exc).strip() or type(exc).__name__
    pynvml.nvmlShutdown()
    return None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def list_gpus() -> list[NvmlGpu]:
    """All GPUs the driver sees, or [] when there is no NVML."""
    with _nvml() as nv:
        if nv is None:
            return []
        driver = _text(nv.nvmlSystemGetDriverVersion())
        cuda_int = nv.nvmlSystemGetCudaDriverVersion_v2()
        cuda = f"{cuda_int // 1000}.{(cuda_int % 1000) // 10}"
        out = []
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            major, minor = nv.nvmlDeviceGetCudaComputeCapability(h)
            out.append(
                NvmlGpu(
                    index=i,
                    name=_text(nv.nvmlDeviceGetName(h)),
                    uuid=_text(nv.nvmlDeviceGetUUID(h)),
                    memory_bytes=int(nv.nvmlDeviceGetMemoryInfo(h).total),
                    compute_capability=f"{major}.{minor}",
                    driver=driver,
                    cuda=cuda,
                )
            )
        return out


def energy_millijoules(index: int) -> int | None:
    """Total energy the GPU has used since the driver loaded, in mJ; None where unsupported (pre-Volta)."""
    with _nvml() as nv:
        if nv is None:
            return None
        try:
            return int(nv.nvmlDeviceGetTotalEnergyConsumption(nv.nvmlDeviceGetHandleByIndex(index)))
        except Exception:
            return None


@contextmanager
def memory_reader(index: int) -> Iterator[Callable[[], int | None] | None]:
    """A function giving the GPU memory in use on the whole device (every process, CUDA contexts included,
    as nvidia-smi shows it), for as long as the block runs; None without NVML. NVML stays initialised in
    between, so reading it many times a second costs little."""
    with _nvml() as nv:
        try:
            handle = nv.nvmlDeviceGetHandleByIndex(index) if nv is not None else None
        except Exception:
            handle = None
        if handle is None:
            yield None
            return

        def read() -> int | None:
            try:
                return int(nv.nvmlDeviceGetMemoryInfo(handle).used)
            except Exception:
                return None

        yield read


def select_gpu(gpu: Gpu, found: list[NvmlGpu], where: str, other_fix: str) -> str:
    """The UUID of the first of ``found`` that the catalog calls ``gpu``; a UserError that lists what
    ``where`` has otherwise, ending with ``other_fix`` (what else the user can do).

    One card per run: the worker runs on one device."""
    from runner.contract.catalog import match_gpu
    from runner.contract.errors import UserError

    kinds = [match_gpu(g.name, g.memory_bytes) for g in found]
    for g, kind in zip(found, kinds, strict=True):
        if kind is not None and kind.key == gpu.key:
            return g.uuid
    present = ", ".join(f"{g.uuid} {g.name} (--gpu {k.key if k else '?'})" for g, k in zip(found, kinds, strict=True))
    there = f"it has {present}; ask for one of those, or" if found else "it shows no NVIDIA GPU;"
    raise UserError(f"no {gpu.name} (--gpu {gpu.key}) on {where}: {there} {other_fix}")
