"""The ``DockerExecutor``: the order of things for one run in a container, and nothing else.

``prepare`` resolves the engine's GPUs and the image on the chosen engine and records them in the config;
``execute`` creates the container, gets the files in, follows it to its end, gets the files out and
removes it. What each step does lives in the modules beside this one.

The order of ``prepare`` is the order of what costs the user most to fix: a GPU type or driver the host
does not have is said before an image that is missing (building or pulling one takes minutes and gigabytes,
and is wasted on a host that cannot run it). ``check_ready`` asks the same questions for a whole matrix,
before its folder is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from runner import __version__
from runner.contract import catalog, rundir
from runner.contract.catalog import Gpu, Image
from runner.contract.errors import UserError
from runner.contract.nvml import NvmlGpu
from runner.contract.schema import LaunchInfo, RunConfig
from runner.executors.base import Executor, ExitInfo, LineHandler, output_log
from runner.executors.docker.engine import (
    bake_command,
    connect,
    engine_label,
    is_remote,
    missing_image_message,
    names_registry,
    pull,
    pullable_problem,
    repo_digest,
)
from runner.executors.docker.files import download, model_on_engine, restore_host_paths, upload
from runner.executors.docker.gpus import (
    NO_DEVICE_DRIVER,
    TOOLKIT_FIX,
    driver_of,
    driver_problem,
    gpu_runtime,
    local_gpus,
    probe_gpus,
    probe_image,
    select_gpus,
)
from runner.executors.docker.layout import CONTAINER_CONFIG, container_config_json, plan_layout
from runner.executors.docker.ownership import lent, private_input
from runner.executors.docker.running import follow, remove
from runner.executors.docker.spec import container_spec, host_hf_cache, image_env

REVISION_LABEL = "org.opencontainers.image.revision"
CHECK_TIMEOUT_S = 30.0
"""Seconds per API call when a matrix checks its engines: an engine that does not answer is said at once,
not after the SDK's minute per call; a run's own client keeps the minute its long calls need."""


def _stderr_line(line: str) -> None:
    from runner.console import console

    console.print(line, markup=False, highlight=False, soft_wrap=True)


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
        force: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """``files``: "mount" or "copy" (default: mount for a local engine, copy for a remote one).
        ``force``: go on past a driver older than the image needs (``--force``). ``progress``: where lines
        about slow preparations (an image pull) go; stderr by default."""
        if files not in (None, "mount", "copy"):
            raise UserError(f"files must be 'mount' or 'copy', not {files!r}")
        self.docker_host = docker_host
        self.registry = registry if registry is not None else os.environ.get("SUMBENCH_REGISTRY", "")
        self.tag = tag or os.environ.get("SUMBENCH_TAG") or __version__
        self.network = network
        self.gpu_uuids = tuple(gpu_uuids)
        self.files = files
        self.force = force
        self.progress = progress or _stderr_line
        self._client = None
        self._checking = False  # inside check_ready (a matrix's up-front check)

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
        resumed = config.launch.executor == self.name  # the folder's own config, from an earlier attempt
        if self.docker_host is None and resumed:
            self.docker_host = config.launch.docker_host  # a resumed run goes back to its engine
        if gpu.is_cpu and self.gpu_uuids:
            raise UserError("--gpu-uuid picks cards for a GPU type: pass --gpu t4 (or another GPU) too")
        self.client  # noqa: B018 (reach the engine first: nothing else can be asked of one that does not answer)
        # A resumed run continues in the image it started in, whatever --registry/--tag say now.
        ref = config.launch.image if resumed and config.launch.image else image.reference(self.registry, self.tag)
        # An earlier attempt on this engine passed the driver check, or --force went past it then.
        checked = resumed and config.launch.docker_host == self.url
        uuids = [] if gpu.is_cpu else self._gpus_before_image(image, config.scenario, gpu, ref, checked)
        found = self._image(ref, image, gpus_unknown=uuids is None)
        if uuids is None:  # a remote engine that held no image to list its GPUs in, until now
            uuids = self._gpus(image, config.scenario, gpu, probe_gpus(self.client, ref, self.engine, gpu), checked)
        if resumed and config.launch.image_id and found.id != config.launch.image_id:
            raise UserError(
                f"image {ref} on {self.engine} is not the one this run started in ({config.launch.image_id[:19]} "
                f"then, {found.id[:19]} now: rebuilt or re-pulled): its documents would mix two builds; start a "
                "new run (another --run-id), or put the original image back under that name"
            )
        self._warn_without_revision(ref, image, found)
        launch = LaunchInfo(
            executor=self.name,
            image=ref,
            image_id=found.id,
            image_digest=repo_digest(found.attrs.get("RepoDigests") or [], ref),
            docker_host=self.url,
            gpu_uuids=uuids,
        )
        return config.model_copy(update={"launch": launch})

    def _warn_without_revision(self, ref: str, image: Image, found) -> None:
        """An image built without REVISION makes its worker record no code revision: say so before the run."""
        if (found.labels or {}).get(REVISION_LABEL, "unknown") not in ("", "unknown"):
            return
        host = self.url if is_remote(self.url) else None
        self.progress(
            f"warning: image {ref} was built without REVISION, so this run's result records no code revision "
            f"(git_revision null); rebuild it with `{bake_command(image, self.registry, self.tag, docker_host=host)}`"
        )

    def _gpus_before_image(self, image: Image, scenario: str, gpu: Gpu, ref: str, checked: bool) -> list[str] | None:
        """The cell's card, found without the cell's image where that can be done; None when it cannot
        yet (a remote engine holding no image to run nvidia-smi in).

        A local engine's host is this machine: NVML answers. A remote one is asked with nvidia-smi in the
        cell's image if the engine has it, else in any sumbench image it holds."""
        if not is_remote(self.url):
            found, why_none = local_gpus()
            if self.gpu_uuids:  # pinned: no choice to make, but the driver is still this machine's
                self._check_driver(image, scenario, gpu, found, checked)
                return list(self.gpu_uuids)
            return self._gpus(image, scenario, gpu, found, checked, why_none)
        if self.gpu_uuids:  # pinned on a remote engine: discovery, and the driver it reads, are skipped
            return list(self.gpu_uuids)
        probe_with = probe_image(self.client, ref)
        if probe_with is None:
            return None
        return self._gpus(image, scenario, gpu, probe_gpus(self.client, probe_with, self.engine, gpu), checked)

    def _gpus(
        self, image: Image, scenario: str, gpu: Gpu, found: list[NvmlGpu], checked: bool, why_none: str = ""
    ) -> list[str]:
        uuids = select_gpus(gpu, found, self.engine, why_none)  # every caller has returned a pinned card
        self._check_driver(image, scenario, gpu, found, checked)
        return uuids

    def _check_driver(self, image: Image, scenario: str, gpu: Gpu, found: list[NvmlGpu], checked: bool) -> None:
        problem = driver_problem(image, scenario, gpu, driver_of(found), f"{self.engine}'s host")
        if problem is None or checked:
            return
        if self.force:
            self.progress(f"note: {problem}; going on (--force)")
            return
        # A matrix has no --force: its cells run where they can, and this one can run elsewhere.
        raise UserError(problem if self._checking else f"{problem}; --force tries anyway")

    def _image(self, ref: str, image: Image, gpus_unknown: bool = False):
        """The image on the engine: there already, or pulled from the registry its reference names.
        ``gpus_unknown``: a GPU cell whose engine could not be asked for its GPUs without this image."""
        import docker

        try:
            return self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            pass
        if names_registry(ref, self.registry):
            return pull(self.client, ref, self.engine, self.progress, image=image, registry=self.registry, tag=self.tag)
        message = missing_image_message(ref, image, self.engine, self.registry, self.tag)
        if gpus_unknown and not gpu_runtime(self.client):
            # No image to ask for its GPUs in, and nothing says it can give containers one: say so before
            # the user builds a 5 GB image there.
            message += (
                f"; note that {self.engine} registers no NVIDIA runtime (docker info), so it may not be able "
                f"to give containers a GPU either: if `docker run --gpus all IMAGE nvidia-smi` fails there, "
                f"{TOOLKIT_FIX}"
            )
        raise UserError(message)

    def check_ready(self, cells: Iterable[tuple[Image, str, Gpu]]) -> None:
        """Refuse, in one line, what would fail every cell of a matrix on this engine: an engine that does
        not answer, a GPU type or driver its host does not have, an image neither there nor pullable.

        ``cells``: each cell's image, scenario and GPU. Nothing is pulled or started but nvidia-smi in an
        image the engine already holds (a remote engine's GPUs); what needs a pull first is left to the
        cell's own launch."""
        client = connect(self.url, timeout=CHECK_TIMEOUT_S)
        try:
            self._client, self._checking = client, True
            listed: list[NvmlGpu] | None = None
            why_none = ""
            seen: set[str] = set()
            for image, scenario, gpu in cells:
                ref = image.reference(self.registry, self.tag)
                if not gpu.is_cpu and not self.gpu_uuids:
                    if listed is None:
                        listed, why_none = self._list_for_check(ref)
                    if listed is not None:
                        self._gpus(image, scenario, gpu, listed, checked=False, why_none=why_none)
                if ref not in seen:
                    seen.add(ref)
                    if problem := pullable_problem(client, ref, image, self.engine, self.registry, self.tag):
                        raise UserError(problem)
        finally:
            self._client, self._checking = None, False
            client.close()

    def _list_for_check(self, ref: str) -> tuple[list[NvmlGpu] | None, str]:
        """The engine host's GPUs for ``check_ready``; None when a remote engine holds no image to ask in."""
        if not is_remote(self.url):
            return local_gpus()
        probe_with = probe_image(self.client, ref)
        return (None, "") if probe_with is None else (probe_gpus(self.client, probe_with, self.engine), "")

    def execute(self, config: RunConfig, run_dir: Path, on_line: LineHandler, timeout: float | None) -> ExitInfo:
        run_dir = run_dir.resolve()
        copy = self.copy
        if not copy and (private := private_input(self._inputs(config))) is not None:
            self.progress(
                f"note: {private} is readable by root only, and the container does not run as root: its "
                "inputs are copied into it instead of mounted"
            )
            copy = True
        layout = plan_layout(config, run_dir.name, copy)
        inner = layout.container_config(config)
        rundir.write_json_atomic(run_dir / CONTAINER_CONFIG, container_config_json(inner))
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
                kept = model_on_engine(container, layout)
                if kept:
                    self.progress(
                        f"model {config.model} is on {self.engine} already ({layout.model_volume}): not copied"
                    )
                elif layout.model_volume:
                    self.progress(f"copying model {config.model} to {self.engine} once, into {layout.model_volume}")
                upload(container, layout, run_dir, inner, model=not kept)
            with lent(run_dir, copy):
                not_started = self._start(container, catalog.get_image(config.image))
                if not_started is not None:
                    exit_info = self._not_started(container, not_started, run_dir, on_line)
                else:
                    exit_info = follow(container, on_line, run_dir / rundir.OUTPUT_LOG, timeout)
        finally:
            try:
                if copy:
                    download(container, layout, run_dir)
            finally:
                remove(container)
        restore_host_paths(run_dir, config)
        return exit_info

    @staticmethod
    def _inputs(config: RunConfig) -> list[Path]:
        """The host's files a mount would share: the dataset, and the model folder when there is one."""
        model = plan_layout(config, "-", copy=False).host_model
        return [Path(config.data), *([model] if model is not None else [])]

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

    def _start(self, container, image: Image) -> str | None:
        """Start the container; the engine's reason, with what to do where that is known, when it cannot.

        A container that does not start is a failed run like any other (the host writes its result from
        the run folder), not an error of the launch: the folder exists by now and ``runner report`` must
        see it as what it is."""
        import docker

        try:
            container.start()
        except docker.errors.APIError as exc:
            said = " ".join(str(exc.explanation or exc).split())
            if NO_DEVICE_DRIVER in said:  # Docker found no NVIDIA Container Toolkit when it started
                return f"{said}: {self.engine}'s host has no NVIDIA GPU or no NVIDIA Container Toolkit; {TOOLKIT_FIX}"
            if "exec" in said:  # runc could not run the entry point: a broken or foreign image
                return (
                    f"{said}: the image's entry point cannot run there; build the image again "
                    f"(`{bake_command(image, self.registry, self.tag)}`) or pull it again"
                )
            return said
        return None

    def _not_started(self, container, reason: str, run_dir: Path, on_line: LineHandler) -> ExitInfo:
        """Record a start failure in ``output.log`` (and on the console) as the engine gave it; the exit
        code is the engine's (127: the entry point is not there, 126: not executable, 128: anything else)."""
        with output_log(run_dir / rundir.OUTPUT_LOG, on_line) as write:
            write(f"the container did not start: {reason}")
        try:
            container.reload()
            code = container.attrs.get("State", {}).get("ExitCode")
        except Exception:
            code = None
        return ExitInfo(exit_code=code, start_error=reason)
