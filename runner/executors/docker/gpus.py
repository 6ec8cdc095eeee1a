"""Which GPUs the engine's host has, and which of them a cell gets.

For a remote engine local NVML would describe the wrong machine, so the cards are listed by
``nvidia-smi`` in a short container of the cell's image on that engine, and described with the same
``NvmlGpu`` rows as NVML gives for a local one; the choice by catalog type is the same for both.
"""

from __future__ import annotations

from typing import Any

from runner.catalog import Gpu
from runner.errors import UserError
from runner.executors.docker.engine import first_line
from runner.executors.docker.running import remove
from runner.nvml import NvmlGpu, select_gpu

NVIDIA_SMI = ["nvidia-smi", "--query-gpu=name,uuid,memory.total,compute_cap", "--format=csv,noheader,nounits"]


def parse_nvidia_smi(text: str) -> list[NvmlGpu]:
    """Rows of ``nvidia-smi --query-gpu=name,uuid,memory.total,compute_cap --format=csv,noheader,nounits``."""
    gpus = []
    for line in filter(str.strip, text.splitlines()):
        name, uuid, memory_mib, capability = (field.strip() for field in line.rsplit(",", 3))
        gpus.append(
            NvmlGpu(
                index=len(gpus),
                name=name,
                uuid=uuid,
                memory_bytes=int(float(memory_mib)) * 1024 * 1024,
                compute_capability=capability,
                driver="",
                cuda="",
            )
        )
    return gpus


def select_gpus(gpu: Gpu, found: list[NvmlGpu], engine: str) -> list[str]:
    """The first GPU of type ``gpu`` on the engine's host. Two runs at once on one host pick the same
    card; give each its own with --gpu-uuid."""
    return [select_gpu(gpu, found, engine, "pin a card with --gpu-uuid")]


def probe_gpus(client, ref: str, engine: str) -> list[NvmlGpu]:
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
        raise UserError(
            f"could not list the GPUs of {engine} with nvidia-smi ({first_line(exc)}): is the NVIDIA "
            "Container Toolkit installed there? Or name the card with --gpu-uuid"
        ) from None
    return parse_nvidia_smi(output)


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
