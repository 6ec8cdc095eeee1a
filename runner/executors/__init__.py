"""Executors start a worker somewhere and stream its output back: a local process or a Docker container.

Scale-out engines (SkyPilot, Kubernetes) are targets of ``runner matrix``, not executors: they run the
same image with the same worker entry point, and their results are collected into the same folders.
"""

from __future__ import annotations

from runner.contract.errors import unknown_name
from runner.executors.base import Executor, ExitInfo

__all__ = ["EXECUTORS", "Executor", "ExitInfo", "create_executor"]

EXECUTORS = ("process", "docker")


def create_executor(name: str, **options) -> Executor:
    if name == "process":
        from runner.executors.process import ProcessExecutor

        return ProcessExecutor()
    if name == "docker":
        from runner.executors.docker import DockerExecutor

        return DockerExecutor(**options)
    raise unknown_name("executor", name, EXECUTORS)
