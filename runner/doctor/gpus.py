"""This machine's NVIDIA GPUs as the catalog names them, or why none can be listed.

Discovery is ``runner.contract.nvml`` (the same list the executors choose a card from) and the naming is
``catalog.match_gpu`` (the same mapping ``--gpu`` is checked against), so what the doctor calls an
``a100-80gb`` is what a launch with ``--gpu a100-80gb`` finds.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.contract import catalog, nvml

NO_DRIVER_SIGNS = ("Library Not Found", "Driver Not Loaded")
"""NVML's words when there is no driver to talk to, as opposed to a driver that refuses (permissions)."""


@dataclass(frozen=True)
class Card:
    """One GPU. ``catalog`` is the ``--gpu`` name, None when the catalog does not know the card."""

    index: int
    name: str
    uuid: str
    catalog: str | None
    memory_bytes: int
    compute_capability: str
    driver: str
    cuda: str


@dataclass(frozen=True)
class GpuSurvey:
    cards: list[Card]
    problem: str | None
    """Why NVML listed nothing ("no NVIDIA driver (NVML: ...)"), None when it answered."""


def describe(found: list[nvml.NvmlGpu]) -> list[Card]:
    """NVML (or ``nvidia-smi``) rows with their catalog names."""
    cards = []
    for g in found:
        kind = catalog.match_gpu(g.name, g.memory_bytes)
        cards.append(
            Card(
                index=g.index,
                name=g.name,
                uuid=g.uuid,
                catalog=kind.key if kind else None,
                memory_bytes=g.memory_bytes,
                compute_capability=g.compute_capability,
                driver=g.driver,
                cuda=g.cuda,
            )
        )
    return cards


def survey_gpus() -> GpuSurvey:
    found = nvml.list_gpus()
    if found:
        return GpuSurvey(describe(found), None)
    reason = nvml.unavailable()
    if reason is None:
        return GpuSurvey([], "the NVIDIA driver sees no GPU")
    if "not installed" in reason:
        return GpuSurvey([], f"cannot look for GPUs: {reason} (pip install nvidia-ml-py)")
    if any(sign in reason for sign in NO_DRIVER_SIGNS):
        return GpuSurvey([], f"no NVIDIA driver (NVML: {reason})")
    return GpuSurvey([], f"the NVIDIA driver cannot be used (NVML: {reason})")
