"""Backends by name. Each module imports its library lazily, so an image needs only its own."""

from __future__ import annotations

from runner.contract.schema import RunConfig
from runner.worker.backends.base import Backend, Generation

__all__ = ["Backend", "Generation", "create_backend"]


def create_backend(config: RunConfig, device: str, texts: list[str]) -> Backend:
    if config.backend == "hf":
        from runner.worker.backends.hf import HFBackend

        return HFBackend(config, device, texts)
    if config.backend == "vllm":
        from runner.worker.backends.vllm import VLLMBackend

        return VLLMBackend(config, device, texts)
    raise ValueError(f"unknown backend {config.backend!r}")
