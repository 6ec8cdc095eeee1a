"""What sumbench knows before it launches: images (``images.toml``) and GPUs (``gpus.toml``).

Both are data files so that adding a GPU or an image is an edit, not a code change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import tomllib

from runner import __version__
from runner.contract.errors import unknown_name

_HERE = Path(__file__).parent


@dataclass(frozen=True)
class Gpu:
    key: str
    name: str
    memory_mib: int
    compute_capability: str
    bf16: bool
    fp8: bool
    bandwidth_gbs: float
    fp16_tflops: float
    price_usd_per_hour: float
    price_source: str
    price_cloud: str = ""  # the SkyPilot cloud the price was read from (aws, lambda, azure, ...)
    nvml_names: tuple[str, ...] = ()
    k8s_products: tuple[str, ...] = ()  # every nvidia.com/gpu.product value of this card (SXM and PCIe forms)
    gke_accelerators: tuple[str, ...] = ()
    skypilot: str = ""

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * 1024 * 1024

    @property
    def capability(self) -> tuple[int, int] | None:
        if not self.compute_capability:
            return None
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)

    @property
    def is_cpu(self) -> bool:
        return self.key == "cpu"


@dataclass(frozen=True)
class Image:
    key: str
    repository: str
    backend: str
    device: str
    scenarios: tuple[str, ...]
    default_scenario: str
    cuda_archs: tuple[str, ...] = ()
    cuda: str = ""
    """The CUDA version of the image's torch build; "" for a CPU image."""
    min_driver: str = ""
    """The oldest NVIDIA driver that runs that build (images.toml says where the numbers come from)."""
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def bake_target(self) -> str:
        return self.key

    def runs_on_driver(self, driver: str) -> bool:
        """Whether a host with NVIDIA driver ``driver`` (as NVML or nvidia-smi print it) runs this image.

        An image without a minimum, or a driver version that cannot be read, is not refused: the check is
        there to say early what CUDA would say late, never to block a host it cannot judge."""
        needed, found = driver_version(self.min_driver), driver_version(driver)
        return needed is None or found is None or found >= needed

    def reference(self, registry: str = "", tag: str = __version__) -> str:
        """The image reference docker-bake.hcl tags this image with."""
        prefix = f"{registry.rstrip('/')}/" if registry else ""
        return f"{prefix}{self.repository}:{tag}"


def driver_version(text: str) -> tuple[int, ...] | None:
    """``"580.65.06"`` as ``(580, 65, 6, 0)``, padded so that ``"580"`` compares as ``580.0.0``; None when
    ``text`` is no dotted version."""
    if not re.fullmatch(r"\d+(\.\d+)*", text.strip()):
        return None
    parts = tuple(int(part) for part in text.strip().split("."))
    return parts + (0,) * (4 - len(parts))


def _load(name: str) -> dict:
    with (_HERE / name).open("rb") as f:
        return tomllib.load(f)


@cache
def gpus() -> dict[str, Gpu]:
    out = {}
    for key, entry in _load("gpus.toml").items():
        for name in ("nvml_names", "k8s_products", "gke_accelerators"):
            entry[name] = tuple(entry.get(name, ()))
        out[key] = Gpu(key=key, **entry)
    return out


@cache
def images() -> dict[str, Image]:
    out = {}
    for key, entry in _load("images.toml").items():
        entry["scenarios"] = tuple(entry["scenarios"])
        entry["cuda_archs"] = tuple(entry.get("cuda_archs", ()))
        out[key] = Image(key=key, **entry)
    return out


def get_gpu(key: str) -> Gpu:
    try:
        return gpus()[key.lower()]
    except KeyError:
        raise unknown_name("GPU", key, gpus()) from None


def get_image(key: str) -> Image:
    try:
        return images()[key]
    except KeyError:
        raise unknown_name("image", key, images()) from None


def match_gpu(nvml_name: str, memory_bytes: int | None) -> Gpu | None:
    """The catalog entry for a device NVML reports, using memory to tell 16/32 GB or 40/80 GB apart.

    The entry naming the device most closely wins: "NVIDIA H100 PCIe" holds the token "H100" of the SXM
    entry and "H100 PCIe" of its own, and a PCIe card given the SXM's bandwidth and price would be
    planned and priced as a card it is not.
    """

    def names_it(token: str) -> bool:
        # Whole tokens only: "L4" must not match "L40S", nor "A10G" match "A100".
        return re.search(rf"(?<![A-Za-z0-9]){re.escape(token)}(?![A-Za-z0-9])", nvml_name, re.I) is not None

    closeness = {g.key: max((len(n) for n in g.nvml_names if names_it(n)), default=0) for g in gpus().values()}
    best = max(closeness.values())
    candidates = [g for g in gpus().values() if best and closeness[g.key] == best]
    if not candidates:
        return None
    if memory_bytes is None:
        return candidates[0]
    return min(candidates, key=lambda g: abs(g.memory_bytes - memory_bytes))


def price_for(gpu: Gpu, given: float | None) -> tuple[float | None, str]:
    """The price per GPU-hour a run records, and where it comes from (``RunConfig.price_source``).

    A given price wins. The catalog's is a list price on one cloud, so its source goes with it; a GPU
    without one (a CPU) records no price rather than a made-up zero, and a cost of ``None`` shows as
    missing in reports.
    """
    if given is not None:
        return given, "given: --price-per-hour"
    if gpu.price_usd_per_hour:
        return gpu.price_usd_per_hour, f"catalog: {gpu.price_source}"
    return None, f"none: the catalog has no price for {gpu.key}; pass --price-per-hour"
