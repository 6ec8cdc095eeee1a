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
from runner.errors import unknown_name

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
    nvml_names: tuple[str, ...] = ()
    k8s_product: str = ""
    gke_accelerator: str = ""
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
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def bake_target(self) -> str:
        return self.key

    def reference(self, registry: str = "", tag: str = __version__) -> str:
        """The image reference docker-bake.hcl tags this image with."""
        prefix = f"{registry.rstrip('/')}/" if registry else ""
        return f"{prefix}{self.repository}:{tag}"


def _load(name: str) -> dict:
    with (_HERE / name).open("rb") as f:
        return tomllib.load(f)


@cache
def gpus() -> dict[str, Gpu]:
    out = {}
    for key, entry in _load("gpus.toml").items():
        entry["nvml_names"] = tuple(entry.get("nvml_names", ()))
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
    """The catalog entry for a device NVML reports, using memory to tell 16/32 GB or 40/80 GB apart."""

    def names_it(token: str) -> bool:
        # Whole tokens only: "L4" must not match "L40S", nor "A10G" match "A100".
        return re.search(rf"(?<![A-Za-z0-9]){re.escape(token)}(?![A-Za-z0-9])", nvml_name, re.I) is not None

    candidates = [g for g in gpus().values() if any(names_it(n) for n in g.nvml_names)]
    if not candidates:
        return None
    if memory_bytes is None:
        return candidates[0]
    return min(candidates, key=lambda g: abs(g.memory_bytes - memory_bytes))
