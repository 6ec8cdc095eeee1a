"""The ``DockerExecutor``: the order of things for one run in a container, and nothing else.

``prepare`` resolves the image and the GPUs on the chosen engine and records them in the config;
``execute`` creates the container, gets the files in, follows it to its end, gets the files out and
removes it. What each step does lives in the modules beside this one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runner import __version__, rundir
from runner.catalog import Gpu, Image
from runner.errors import UserError
from runner.executors.base import Executor, ExitInfo, LineHandler
from runner.executors.docker.engine import (
    connect,
    engine_label,
    first_line,
    is_remote,
    missing_image_message,
    repo_digest,
)
from runner.executors.docker.files import download, restore_host_paths, upload
from runner.executors.docker.gpus import probe_gpus, select_gpus
from runner.executors.docker.layout import CONTAINER_CONFIG, plan_layout
from runner.executors.docker.running import follow, remove
from runner.executors.docker.spec import container_spec, host_hf_cache, image_env
from runner.nvml import list_gpus
from runner.schema import LaunchInfo, RunConfig

REVISION_LABEL = "org.opencontainers.image.revision"


class DockerExecutor(Executor):
    """Runs ``python -m runner.worker /results/<run-id>`` (the images' entry point) in a container."""

    name = "docker"

    def __init__(
        self,
        docker_host: str | None = None,
        *,
        registry: str | None = None,
        tag: str | None = None,
        network: str | None = None,
        gpu_uuids: Iterable[str] = (),
        files: str | None = None,
    ) -> None:
        """``files``: "mount" or "copy" (default: mount for a local engine, copy for a remote one)."""
        if files not in (None, "mount", "copy"):
            raise UserError(f"files must be 'mount' or 'copy', not {files!r}")
        self.docker_host = docker_host
        self.registry = registry if registry is not None else os.environ.get("SUMBENCH_REGISTRY", "")
        self.tag = tag or os.environ.get("SUMBENCH_TAG") or __version__
        self.network = network
        self.gpu_uuids = tuple(gpu_uuids)
        self.files = files
        self._client = None

    @property
    def url(self) -> str | None:
        return self.docker_host or os.environ.get("DOCKER_HOST") or None

    @property
    def engine(self) -> str:
        return engine_label(self.url)

    @property
    def copy(self) -> bool:
        return self.files == "copy" if self.files else is_remote(self.url)

    @property
    def client(self):
        if self._client is None:
            self._client = connect(self.url)
        return self._client

    def prepare(self, config: RunConfig, image: Image, gpu: Gpu) -> RunConfig:
        if self.docker_host is None and config.launch.executor == self.name:
            self.docker_host = config.launch.docker_host  # a resumed run goes back to its engine
        if gpu.is_cpu and self.gpu_uuids:
            raise UserError("--gpu-uuid picks cards for a GPU type: pass --gpu t4 (or another GPU) too")
        ref = image.reference(self.registry, self.tag)
        found = self._image(ref, image)
        uuids = [] if gpu.is_cpu else list(self.gpu_uuids) or self._find_gpus(gpu, ref)
        launch = LaunchInfo(
            executor=self.name,
            image=ref,
            image_id=found.id,
            image_digest=repo_digest(found.attrs.get("RepoDigests") or [], ref),
            docker_host=self.url,
            gpu_uuids=uuids,
        )
        return config.model_copy(update={"launch": launch})

    def _image(self, ref: str, image: Image):
        import docker

        try:
            return self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            raise UserError(missing_image_message(ref, image, self.engine, self.registry, self.tag)) from None

    def _find_gpus(self, gpu: Gpu, ref: str) -> list[str]:
        found = probe_gpus(self.client, ref, self.engine) if is_remote(self.url) else list_gpus()
        return select_gpus(gpu, found, self.engine)

    def execute(self, config: RunConfig, run_dir: Path, on_line: LineHandler, timeout: float | None) -> ExitInfo:
        run_dir = run_dir.resolve()
        copy = self.copy
        layout = plan_layout(config, run_dir.name, copy)
        inner = layout.container_config(config)
        rundir.write_json_atomic(run_dir / CONTAINER_CONFIG, inner.model_dump_json(indent=2))
        if layout.hub_model and not copy:
            host_hf_cache(os.environ).mkdir(parents=True, exist_ok=True)
        image = self.client.images.get(config.launch.image_id)  # exactly the image prepare() resolved
        spec = container_spec(
            config,
            layout,
            run_dir,
            copy=copy,
            network=self.network,
            revision=(image.labels or {}).get(REVISION_LABEL),
            environ=os.environ,
            image_hf_home=image_env(image).get("HF_HOME"),
        )
        container = self._create(config.run_id, **spec)
        try:
            if copy:
                upload(container, layout, run_dir, inner)
            self._start(container)
            exit_info = follow(container, on_line, run_dir / rundir.OUTPUT_LOG, timeout)
        finally:
            try:
                if copy:
                    download(container, layout, run_dir)
            finally:
                remove(container)
        restore_host_paths(run_dir, config)
        return exit_info

    def _create(self, run_id: str, **kwargs: Any):
        """Create the container; a stopped leftover of the same run is replaced, a running one refused."""
        import docker

        try:
            return self.client.containers.create(**kwargs)
        except docker.errors.ImageNotFound:
            raise UserError(f"image {kwargs['image']} is gone from {self.engine}: launch again") from None
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
        stale = self.client.containers.get(kwargs["name"])
        if stale.status == "running":
            raise UserError(f"run {run_id} is already running in container {stale.name} on {self.engine}")
        remove(stale)
        return self.client.containers.create(**kwargs)

    def _start(self, container) -> None:
        import docker

        try:
            container.start()
        except docker.errors.APIError as exc:
            if "device driver" in str(exc):  # Docker has no GPU runtime registered
                raise UserError(
                    f"{self.engine} cannot give containers GPUs ({first_line(exc)}): install the NVIDIA "
                    "Container Toolkit there"
                ) from None
            raise
