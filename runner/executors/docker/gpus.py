"""Which GPUs the engine's host has, its NVIDIA driver, and which card a cell gets.

For a remote engine local NVML would describe the wrong machine, so the cards are listed by
``nvidia-smi`` in a short container on that engine, and described with the same ``NvmlGpu`` rows as
NVML gives for a local one; the choice by catalog type is the same for both. The NVIDIA Container
Toolkit puts ``nvidia-smi`` into any container that asks for the ``utility`` capability, so any image
the engine already holds can answer: a cell's GPU is checked in an image that is there before anyone is
asked to build or pull a 5 GB one for a card the host does not have.

Each image's torch build needs a minimum NVIDIA driver (``images.toml``); the driver comes with the same
listing, so an old one is refused before the container starts rather than failing inside CUDA's
initialisation with a message about a "driver too old" that names no image that would run.
"""

from __future__ import annotations

from typing import Any

from runner import compat
from runner.contract import catalog
from runner.contract.catalog import Gpu, Image
from runner.contract.errors import UserError
from runner.contract.nvml import NvmlGpu, select_gpu, unavailable
from runner.executors.docker.engine import first_line
from runner.executors.docker.running import remove
from runner.scenarios import get_scenario

NVIDIA_SMI_FIELDS = ("name", "uuid", "memory.total", "compute_cap", "driver_version")
NVIDIA_SMI = ["nvidia-smi", f"--query-gpu={','.join(NVIDIA_SMI_FIELDS)}", "--format=csv,noheader,nounits"]
NVIDIA_RUNTIME = "nvidia"
IMAGE_LABEL = "io.sumbench.image"  # every sumbench image carries it (images/*/Dockerfile)
TOOLKIT_FIX = (
    "install the NVIDIA Container Toolkit on that host "
    "(`sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker`)"
)
# What Docker answers when a container asks for a GPU and no device driver is registered: dockerd found
# no NVIDIA Container Toolkit hook when it started (or the host has no NVIDIA stack at all).
NO_DEVICE_DRIVER = "could not select device driver"


def parse_nvidia_smi(text: str) -> list[NvmlGpu]:
    """Rows of ``NVIDIA_SMI``'s output (csv, no header, no units), first field the name."""
    gpus = []
    for line in filter(str.strip, text.splitlines()):
        # From the right: a GPU's name is the one field that could hold a comma.
        name, uuid, memory_mib, capability, driver = (f.strip() for f in line.rsplit(",", len(NVIDIA_SMI_FIELDS) - 1))
        gpus.append(
            NvmlGpu(
                index=len(gpus),
                name=name,
                uuid=uuid,
                memory_bytes=int(float(memory_mib)) * 1024 * 1024,
                compute_capability=capability,
                driver=driver,
                cuda="",
            )
        )
    return gpus


def select_gpus(gpu: Gpu, found: list[NvmlGpu], engine: str, why_none: str = "") -> list[str]:
    """The first GPU of type ``gpu`` on the engine's host. Two runs at once on one host pick the same
    card; give each its own with --gpu-uuid.

    A host without any NVIDIA GPU gets its own message: pinning a card (--gpu-uuid) or --force cannot
    help there, another host or the CPU can. ``why_none`` is what NVML said, where it was asked."""
    if not found:
        said = f" ({why_none})" if why_none else ""
        raise UserError(
            f"no {gpu.name} (--gpu {gpu.key}) for {engine}: its host shows no NVIDIA GPU{said}; run GPU cells "
            "on an engine whose host has one (--docker-host ssh://user@host), or this one on the CPU "
            "(--image cpu --gpu cpu)"
        )
    return [select_gpu(gpu, found, engine, "pin a card with --gpu-uuid")]


def local_gpus() -> tuple[list[NvmlGpu], str]:
    """This machine's GPUs through NVML, with NVML's reason when it lists none."""
    from runner.contract.nvml import list_gpus

    found = list_gpus()
    return found, "" if found else f"NVML: {unavailable() or 'no device'}"


def probe_gpus(client, ref: str, engine: str, gpu: Gpu | None = None) -> list[NvmlGpu]:
    """The engine's GPUs, as nvidia-smi sees them in a throwaway container of ``ref``."""
    from docker.types import DeviceRequest

    try:
        output = run_once(
            client,
            image=ref,
            entrypoint=NVIDIA_SMI[:1],
            command=NVIDIA_SMI[1:],
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu", "utility"]])],
            network_mode="none",
        )
    except Exception as exc:
        if NO_DEVICE_DRIVER in str(exc):
            wanted = f"a --gpu {gpu.key} card" if gpu else "a GPU"
            raise UserError(
                f"{engine} cannot give containers a GPU ({first_line(exc)}): its host has no NVIDIA GPU or no "
                f"NVIDIA Container Toolkit; {TOOLKIT_FIX}, or run the cell on an engine whose host has {wanted} "
                "(--docker-host ssh://user@host)"
            ) from None
        raise UserError(
            f"could not list the GPUs of {engine} with nvidia-smi ({first_line(exc)}): is the NVIDIA "
            "Container Toolkit installed there? Or name the card with --gpu-uuid"
        ) from None
    return parse_nvidia_smi(output)


def gpu_runtime(client) -> bool:
    """Whether the engine registers the ``nvidia`` runtime (``docker info``): proof that the NVIDIA
    Container Toolkit is installed there. Its absence proves nothing: Docker's --gpus only needs the
    toolkit's hook on dockerd's PATH, which installing the toolkit provides without registering a runtime."""
    try:
        return NVIDIA_RUNTIME in (client.info().get("Runtimes") or {})
    except Exception:
        return False


def probe_image(client, ref: str) -> str | None:
    """An image on the engine to run nvidia-smi in: ``ref`` itself, else any sumbench image it holds."""
    import docker

    try:
        return client.images.get(ref).id
    except docker.errors.ImageNotFound:
        pass
    held = client.images.list(filters={"label": IMAGE_LABEL})
    return held[0].id if held else None


def driver_of(found: list[NvmlGpu]) -> str:
    """The host's driver version (one per host, whichever card reports it)."""
    return next((g.driver for g in found if g.driver), "")


def driver_problem(image: Image, scenario: str, gpu: Gpu, driver: str, where: str) -> str | None:
    """Why ``image`` cannot run on a host with NVIDIA driver ``driver``, naming images that would
    (the cell's scenario first), in one line; None when it can or the driver is not known."""
    if not driver or image.runs_on_driver(driver):
        return None
    same, other = [], []
    for alt in catalog.images().values():
        if alt.device != "cuda" or alt.key == image.key or not alt.runs_on_driver(driver):
            continue
        if scenario in alt.scenarios and not compat.check(alt, get_scenario(scenario), gpu):
            same.append(f"--image {alt.key}")
        elif not compat.check(alt, get_scenario(alt.default_scenario), gpu):
            other.append(f"--image {alt.key} --scenario {alt.default_scenario}")
    runs = same or other
    instead = f", or run an image built for older drivers ({' or '.join(runs)})" if runs else ""
    return (
        f"{where} has NVIDIA driver {driver}, and image {image.key} (CUDA {image.cuda} torch) needs "
        f"{image.min_driver} or newer: upgrade the driver there{instead}"
    )


def run_once(client, **kwargs: Any) -> str:
    """Run a short container to the end and return its output; it is removed whatever happens."""
    container = client.containers.create(**kwargs)
    try:
        container.start()
        code = container.wait().get("StatusCode")
        output = container.logs().decode("utf-8", "replace")
        if code != 0:
            raise RuntimeError(f"exit code {code}: {output.strip()[-300:]}")
        return output
    finally:
        remove(container)
