"""What ``containers.create`` is given for a run: name, labels, mounts, GPUs, user, environment, network.

Kept apart from the executor so that every request the engine receives is built by plain functions of
the config and can be checked in unit tests without an engine (GPU requests cannot be run without a GPU).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from runner.contract import rundir
from runner.contract.schema import RunConfig
from runner.executors.docker.layout import CONTAINER_CONFIG, MODEL_DIR, Layout
from runner.executors.docker.ownership import container_user

HF_CACHE = "/hf-cache"
HF_CACHE_VOLUME = "sumbench-hf-cache"
RUN_LABEL = "sumbench.run-id"
# vLLM's processes share tensors through /dev/shm, which Docker sizes at 64 MB unless told otherwise.
VLLM_SHM_SIZE = "8g"
# compute for CUDA, utility for NVML (the worker records the device and its energy through it).
GPU_CAPABILITIES = [["gpu", "compute", "utility"]]
PASSED_THROUGH = ("SUMBENCH_INJECT_",)  # fault injection reaches a containerised worker too


def host_hf_cache(environ: Mapping[str, str]) -> Path:
    if home := environ.get("HF_HOME"):
        return Path(home)
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"


def private_cache(copy: bool) -> bool:
    """Whether the hub cache is a named volume on the engine rather than the host's own cache: on a remote
    engine, and for root on the host, whose cache the container's non-root user could not write."""
    return copy or os.getuid() == 0


def cache_target(private: bool, image_hf_home: str | None) -> str:
    """Where the hub cache goes in the container.

    Shared, /hf-cache, a bind mount of the host's cache that this user owns. Private, the image's own
    HF_HOME: a new named volume takes the owner of the folder it is mounted over, so the image's
    non-root user can write it (mounted anywhere else it would belong to root).
    """
    return (image_hf_home or HF_CACHE) if private else HF_CACHE


def mounts(layout: Layout, run_dir: Path, copy: bool, hf_cache: Path, cache_at: str = HF_CACHE) -> list:
    """Bind mounts for a local engine; for a remote one only the hub cache volume (files are copied)."""
    from docker.types import Mount

    out = []
    if layout.hub_model:
        if private_cache(copy):
            out.append(Mount(cache_at, HF_CACHE_VOLUME, type="volume"))
        else:
            out.append(Mount(cache_at, str(hf_cache), type="bind"))
    if copy:
        if layout.model_volume:
            out.append(Mount(MODEL_DIR, layout.model_volume, type="volume"))
        return out
    out += [
        Mount(layout.run_dir, str(run_dir), type="bind"),
        # Over the host's config.json, inside the mounted run folder: the worker reads container paths.
        Mount(f"{layout.run_dir}/{rundir.CONFIG}", str(run_dir / CONTAINER_CONFIG), type="bind", read_only=True),
        Mount(layout.data, str(layout.host_data), type="bind", read_only=True),
    ]
    if layout.host_model is not None:
        out.append(Mount(MODEL_DIR, str(layout.host_model), type="bind", read_only=True))
    return out


def device_requests(gpu_uuids: Iterable[str]) -> list:
    from docker.types import DeviceRequest

    uuids = list(gpu_uuids)
    return [DeviceRequest(device_ids=uuids, capabilities=GPU_CAPABILITIES)] if uuids else []


def container_env(
    layout: Layout,
    *,
    network: str,
    copy: bool,
    revision: str | None,
    environ: Mapping[str, str],
    cache_at: str = HF_CACHE,
    api_key_env: str | None = None,
) -> dict[str, str]:
    """The worker's environment. A Hugging Face token, and a serving run's API key (``--api-key-env``),
    travel here only, never into a file."""
    env = {"PYTHONUNBUFFERED": "1"}
    if not copy:
        env["HOME"] = "/tmp"  # this user's uid has no home folder in the image
    if revision and revision != "unknown":  # bake's default when REVISION is not given
        env["SUMBENCH_REVISION"] = revision
    if layout.hub_model:
        env["HF_HOME"] = cache_at
    if network == "none":
        env["HF_HUB_OFFLINE"] = "1"  # fail at once instead of waiting on a network that is not there
    if token := environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN"):
        env["HF_TOKEN"] = token
    env.update({k: v for k, v in environ.items() if k.startswith(PASSED_THROUGH)})
    if api_key_env and api_key_env in environ:
        env[api_key_env] = environ[api_key_env]
    return env


def image_env(image) -> dict[str, str]:
    """The environment an image sets (its ENV lines)."""
    pairs = (entry.partition("=") for entry in (image.attrs.get("Config") or {}).get("Env") or [])
    return {key: value for key, _, value in pairs}


def default_network(layout: Layout) -> str:
    return "host" if layout.hub_model else "none"


def container_spec(
    config: RunConfig,
    layout: Layout,
    run_dir: Path,
    *,
    copy: bool,
    network: str | None,
    revision: str | None,
    environ: Mapping[str, str],
    image_hf_home: str | None = None,
) -> dict[str, Any]:
    """Everything ``containers.create`` is given for a run, in one place (and one unit test)."""
    network = network or default_network(layout)
    cache_at = cache_target(private_cache(copy), image_hf_home)
    return {
        "image": config.launch.image_id,
        "command": [layout.run_dir],
        "name": container_name(run_dir.name),
        "labels": {RUN_LABEL: config.run_id},
        "mounts": mounts(layout, run_dir, copy, host_hf_cache(environ), cache_at),
        "device_requests": device_requests(config.launch.gpu_uuids),
        "user": container_user(copy),
        # Nothing the worker does needs a capability or a setuid program: the k8s pods' settings too.
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "environment": container_env(
            layout,
            network=network,
            copy=copy,
            revision=revision,
            environ=environ,
            cache_at=cache_at,
            api_key_env=config.serving.api_key_env if config.serving else None,
        ),
        "network_mode": network,
        "shm_size": VLLM_SHM_SIZE if config.backend == "vllm" else None,
    }


def container_name(run_name: str) -> str:
    return "sumbench-" + re.sub(r"[^A-Za-z0-9_.-]", "-", run_name)
