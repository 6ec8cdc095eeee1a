"""The Docker executor: the cell's image in a container, on a local engine or on one reached over ssh.

The worker inside reads and writes only the run folder, as with the process executor; what this module
adds is how files get in and out, which GPU the container gets, and cleaning up afterwards.

Files. Inside the container the run folder is ``/results/<run-id>``, the dataset ``/inputs/data/<name>``,
a local checkpoint ``/inputs/model``: fixed paths, so no host path can shadow the image's own files.
The worker reads ``config.json``, so the container sees a copy with those paths
(``container-config.json``, kept in the run folder as a record) in its place, and afterwards
``result.json`` gets the host's config and dataset path back: a result is valid on the host, like one
from the process executor. How the files travel depends on the engine:

- a local engine (unix socket, or tcp to localhost) shares this machine's disk: bind mounts, the run
  folder read-write and the inputs read-only, and the container runs as this user's uid:gid so
  everything it writes stays this user's;
- a remote engine (``ssh://user@gpu-vm``) sees its own disk, not ours: the inputs are copied into the
  created container before it starts and the run folder is copied back when it ends, however it ends.

GPUs. A GPU cell gets the GPUs of the requested catalog type, chosen by UUID: from NVML on this machine
for a local engine; for a remote one from ``nvidia-smi`` in a short container of the same image on that
engine (local NVML would describe the wrong machine). ``--gpu-uuid`` skips the discovery and pins cards.

Network. ``none`` unless the model is a hub id, which has to be downloaded: then ``host`` rather than
``bridge``, because an engine need not have a bridge network (``dockerd --bridge=none``, some rootless
set-ups) while every engine has the host's, and a worker exposes no ports. Hub downloads go to a cache
that outlives the container: the host's Hugging Face cache for a local engine, a named volume on a
remote one.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from runner import __version__, rundir
from runner.catalog import Gpu, Image, match_gpu
from runner.errors import UserError
from runner.executors.base import Executor, ExitInfo, LineHandler, deadline
from runner.nvml import NvmlGpu, list_gpus
from runner.schema import LaunchInfo, RunConfig
from runner.secrets import redact

RESULTS_ROOT = "/results"
DATA_DIR = "/inputs/data"
MODEL_DIR = "/inputs/model"
HF_CACHE = "/hf-cache"
HF_CACHE_VOLUME = "sumbench-hf-cache"
CONTAINER_CONFIG = "container-config.json"
CONTAINER_LOG = "container.log"
RUN_LABEL = "sumbench.run-id"
REVISION_LABEL = "org.opencontainers.image.revision"
STOP_GRACE_S = 30  # as the process executor: time for the worker to write its partial result
# vLLM's processes share tensors through /dev/shm, which Docker sizes at 64 MB unless told otherwise.
VLLM_SHM_SIZE = "8g"
# compute for CUDA, utility for NVML (the worker records the device and its energy through it).
GPU_CAPABILITIES = [["gpu", "compute", "utility"]]
NVIDIA_SMI = ["nvidia-smi", "--query-gpu=name,uuid,memory.total,compute_cap", "--format=csv,noheader,nounits"]
PASSED_THROUGH = ("SUMBENCH_INJECT_",)  # fault injection reaches a containerised worker too
LOOPBACK = ("localhost", "127.0.0.1", "::1")


# --- where things are ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """The run's files inside the container, and where each comes from on the host."""

    run_dir: str
    data: str
    model: str  # a container path, or the hub id / built-in name unchanged
    host_data: Path
    host_model: Path | None = None  # the folder that is mounted or copied for the model
    hub_model: bool = False  # a hub id: the container downloads it

    def container_config(self, config: RunConfig) -> RunConfig:
        return config.model_copy(update={"data": self.data, "model": self.model})


def plan_layout(config: RunConfig, run_name: str, copy: bool) -> Layout:
    data = Path(config.data)
    common = {"run_dir": f"{RESULTS_ROOT}/{run_name}", "data": f"{DATA_DIR}/{data.name}", "host_data": data}
    model = Path(config.model)
    if not model.is_dir():
        return Layout(model=config.model, hub_model=not config.synthetic_weights, **common)
    # A copy follows symlinks; a mount must include their targets (a hub snapshot links into ../../blobs).
    root = model if copy else link_root(model)
    inside = PurePosixPath(MODEL_DIR, *model.relative_to(root).parts)
    return Layout(model=str(inside), host_model=root, **common)


def link_root(folder: Path) -> Path:
    """The closest folder that holds ``folder`` and every file its symlinks point to."""
    root = folder
    for path in folder.rglob("*"):
        if path.is_symlink():
            root = Path(os.path.commonpath([root, path.resolve()]))
    if root == Path(root.anchor):
        raise UserError(f"model folder {folder} links to files all over the disk: copy it to a plain folder first")
    return root


def host_hf_cache(environ: Mapping[str, str]) -> Path:
    if home := environ.get("HF_HOME"):
        return Path(home)
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"


def host_user() -> str:
    return f"{os.getuid()}:{os.getgid()}"


# --- what the container is given ----------------------------------------------------------------------


def cache_target(copy: bool, image_hf_home: str | None) -> str:
    """Where the hub cache goes in the container.

    Locally, /hf-cache, a bind mount of the host's cache that this user owns. Remotely, the image's
    own HF_HOME: a new named volume takes the owner of the folder it is mounted over, so the image's
    non-root user can write it (mounted anywhere else it would belong to root).
    """
    return (image_hf_home or HF_CACHE) if copy else HF_CACHE


def mounts(layout: Layout, run_dir: Path, copy: bool, hf_cache: Path, cache_at: str = HF_CACHE) -> list:
    """Bind mounts for a local engine; for a remote one only the hub cache volume (files are copied)."""
    from docker.types import Mount

    out = []
    if layout.hub_model:
        if copy:
            out.append(Mount(cache_at, HF_CACHE_VOLUME, type="volume"))
        else:
            out.append(Mount(cache_at, str(hf_cache), type="bind"))
    if copy:
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
) -> dict[str, str]:
    """The worker's environment. A Hugging Face token travels here only, never into a file."""
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
    cache_at = cache_target(copy, image_hf_home)
    return {
        "image": config.launch.image_id,
        "command": [layout.run_dir],
        "name": container_name(run_dir.name),
        "labels": {RUN_LABEL: config.run_id},
        "mounts": mounts(layout, run_dir, copy, host_hf_cache(environ), cache_at),
        "device_requests": device_requests(config.launch.gpu_uuids),
        "user": None if copy else host_user(),
        "environment": container_env(
            layout, network=network, copy=copy, revision=revision, environ=environ, cache_at=cache_at
        ),
        "network_mode": network,
        "shm_size": VLLM_SHM_SIZE if config.backend == "vllm" else None,
    }


def container_name(run_name: str) -> str:
    return "sumbench-" + re.sub(r"[^A-Za-z0-9_.-]", "-", run_name)


# --- which engine, image and GPUs ---------------------------------------------------------------------


def is_remote(url: str | None) -> bool:
    """Whether the engine at ``url`` sees another machine's disk and GPUs than this one."""
    if not url or url.startswith(("unix://", "npipe://")):
        return False
    return urlparse(url).hostname not in LOOPBACK


def engine_label(url: str | None) -> str:
    return url or "the local Docker engine"


def ssh_config_port(ssh_g_output: str) -> int | None:
    """The ``port`` line of ``ssh -G HOST`` (the options ssh would use for HOST, config applied)."""
    for line in ssh_g_output.splitlines():
        key, _, value = line.partition(" ")
        if key == "port" and value.strip().isdigit():
            return int(value)
    return None


def with_ssh_port(url: str) -> str:
    """``url`` with the port the user's ssh config gives its host, when the URL names none.

    docker-py runs ``ssh -p 22`` for a URL without a port, which overrides a ``Port`` line in
    ~/.ssh/config; the docker CLI does not. Asking ``ssh -G`` keeps the two in step.
    """
    parsed = urlparse(url)
    if parsed.port or not parsed.hostname:
        return url
    try:
        out = subprocess.run(["ssh", "-G", parsed.netloc], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return url
    port = ssh_config_port(out.stdout) if out.returncode == 0 else None
    return url if port in (None, 22) else parsed._replace(netloc=f"{parsed.netloc}:{port}").geturl()


def connect(url: str | None):
    """A client for the engine at ``url`` (default: DOCKER_HOST, else the local socket).

    ``use_ssh_client`` runs the ``ssh`` command for ssh:// URLs, so the user's ssh config, keys and
    agent apply as they do for the docker CLI.
    """
    import docker

    if url and url.startswith("ssh://") and not _has_module("paramiko"):
        # docker-py's ssh transport imports paramiko even when it runs the ssh command instead.
        raise UserError(f"{url} needs the Docker SDK's ssh support: pip install 'sumbench[ssh]'")
    try:
        if url and url.startswith("ssh://"):
            client = docker.DockerClient(base_url=with_ssh_port(url), use_ssh_client=True)
        else:  # from_env, so DOCKER_TLS_VERIFY and DOCKER_CERT_PATH apply to a tcp:// engine
            client = docker.from_env(environment={**os.environ, **({"DOCKER_HOST": url} if url else {})})
        client.ping()
    except Exception as exc:  # DockerException, requests' errors, OSError: all mean "no engine there"
        raise UserError(
            f"cannot reach {engine_label(url)} ({_first_line(exc)}): start Docker, or point DOCKER_HOST or "
            "--docker-host at a running engine"
        ) from None
    return client


def missing_image_message(ref: str, image: Image, engine: str, registry: str, tag: str) -> str:
    settings = (f"REGISTRY={registry} " if registry else "") + (f"TAG={tag} " if tag != __version__ else "")
    hint = f"build it with `{settings}docker buildx bake {image.bake_target}`"
    if registry:
        hint += f" or pull it with `docker pull {ref}`"
    return f"image {ref} not found on {engine}: {hint}"


def repo_digest(digests: Iterable[str], ref: str) -> str | None:
    """The registry digest of the image as pushed under ``ref``'s repository; None for a local build."""
    last = ref.rsplit("/", 1)[-1]
    repository = ref[: ref.rindex(":")] if ":" in last else ref
    digests = list(digests)
    return next((d for d in digests if d.split("@", 1)[0] == repository), digests[0] if digests else None)


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
    """The UUID of the first GPU of type ``gpu``; an error that lists what is there otherwise.

    One card per run: the worker runs on one device. Two runs at once on one host pick the same card;
    give each its own with --gpu-uuid.
    """
    kinds = [match_gpu(g.name, g.memory_bytes) for g in found]
    for g, kind in zip(found, kinds, strict=True):
        if kind is not None and kind.key == gpu.key:
            return [g.uuid]
    present = ", ".join(f"{g.uuid} {g.name} (--gpu {k.key if k else '?'})" for g, k in zip(found, kinds, strict=True))
    raise UserError(
        f"no {gpu.name} (--gpu {gpu.key}) on {engine}: "
        + (f"it has {present}; ask for one of those" if found else "it shows no NVIDIA GPU")
        + ", or pin a card with --gpu-uuid"
    )


# --- the executor -------------------------------------------------------------------------------------


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
        found = self._probe_gpus(ref) if is_remote(self.url) else list_gpus()
        return select_gpus(gpu, found, self.engine)

    def _probe_gpus(self, ref: str) -> list[NvmlGpu]:
        """The engine's GPUs, as nvidia-smi sees them in a throwaway container of ``ref``."""
        from docker.types import DeviceRequest

        try:
            output = self._run_once(
                image=ref,
                entrypoint=NVIDIA_SMI[:1],
                command=NVIDIA_SMI[1:],
                device_requests=[DeviceRequest(count=-1, capabilities=[["gpu", "utility"]])],
                network_mode="none",
            )
        except Exception as exc:
            raise UserError(
                f"could not list the GPUs of {self.engine} with nvidia-smi ({_first_line(exc)}): is the NVIDIA "
                "Container Toolkit installed there? Or name the card with --gpu-uuid"
            ) from None
        return parse_nvidia_smi(output)

    def _run_once(self, **kwargs: Any) -> str:
        """Run a short container to the end and return its output; it is removed whatever happens."""
        container = self.client.containers.create(**kwargs)
        try:
            container.start()
            code = container.wait().get("StatusCode")
            output = container.logs().decode("utf-8", "replace")
            if code != 0:
                raise RuntimeError(f"exit code {code}: {output.strip()[-300:]}")
            return output
        finally:
            _remove(container)

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
            exit_info = follow(container, on_line, run_dir / CONTAINER_LOG, timeout)
        finally:
            try:
                if copy:
                    download(container, layout, run_dir)
            finally:
                _remove(container)
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
        _remove(stale)
        return self.client.containers.create(**kwargs)

    def _start(self, container) -> None:
        import docker

        try:
            container.start()
        except docker.errors.APIError as exc:
            if "device driver" in str(exc):  # Docker has no GPU runtime registered
                raise UserError(
                    f"{self.engine} cannot give containers GPUs ({_first_line(exc)}): install the NVIDIA "
                    "Container Toolkit there"
                ) from None
            raise


# --- running, following and cleaning up ---------------------------------------------------------------


def follow(container, on_line: LineHandler, log_path: Path, timeout: float | None) -> ExitInfo:
    """Stream the container's output to ``on_line`` and ``container.log`` until it exits.

    Ctrl-C stops the container as the process executor stops its worker (SIGTERM, then SIGKILL after
    the grace period), so the worker writes a partial result; the lines it prints meanwhile are read
    back from the engine's log, which holds all of them.
    """
    interrupted = False
    seen = 0
    with deadline(timeout, lambda: _stop(container)) as timed_out:
        with log_path.open("a", encoding="utf-8") as log:

            def emit(line: str) -> None:
                nonlocal seen
                seen += 1
                line = redact(line)
                log.write(line + "\n")
                log.flush()
                on_line(line)

            try:
                for line in iter_lines(container.logs(stream=True, follow=True)):
                    emit(line)
            except KeyboardInterrupt:
                interrupted = True
                _stop(container)
                for line in all_lines(container)[seen:]:
                    emit(line)
        status = _wait(container)
    container.reload()
    return ExitInfo(
        exit_code=status.get("StatusCode"),
        oom_killed=bool(container.attrs.get("State", {}).get("OOMKilled")),
        timed_out=timed_out.is_set(),
        interrupted=interrupted,
    )


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines from a stream of byte chunks that may split lines and UTF-8 characters anywhere."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        pending += decoder.decode(chunk)
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line.rstrip("\r")
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending.rstrip("\r")


def all_lines(container) -> list[str]:
    """The container's whole output so far, split the way ``iter_lines`` splits it."""
    return list(iter_lines([container.logs()]))


def _wait(container) -> dict:
    """The exit status. The log stream ends when the container stops, or when a connection drops
    (an ssh link): keep waiting then, the container may still be working."""
    import requests

    while True:
        try:
            return container.wait(timeout=60)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            continue


def _stop(container) -> None:
    """SIGTERM, SIGKILL after the grace period; a second Ctrl-C meanwhile kills at once."""
    with contextlib.suppress(Exception):
        try:
            container.stop(timeout=STOP_GRACE_S)
        except KeyboardInterrupt:
            container.kill()


def _remove(container) -> None:
    with contextlib.suppress(Exception):
        container.remove(force=True)


def restore_host_paths(run_dir: Path, config: RunConfig) -> None:
    """Give ``result.json`` the host's config and dataset path in place of the container's."""
    if not (run_dir / rundir.RESULT).exists():
        return
    result = rundir.read_result(run_dir)
    update: dict[str, Any] = {"config": config}
    if result.dataset is not None:
        update["dataset"] = result.dataset.model_copy(update={"path": config.data})
    rundir.write_result(run_dir, result.model_copy(update=update))


# --- copying files for a remote engine ----------------------------------------------------------------

# Files of the run folder that belong to the host: never sent over, never copied back.
_HOST_ONLY = (rundir.CONFIG, CONTAINER_CONFIG, CONTAINER_LOG)


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def _owned_by_root(mode_file: int, mode_dir: int):
    def set_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = mode_dir if info.isdir() else mode_file
        return info

    return set_owner


def upload(container, layout: Layout, run_dir: Path, inner: RunConfig) -> None:
    """Copy the run folder (container config in place of the host's), dataset and model into the
    created container. The run folder is world-writable there, whatever user the image runs as."""
    writable, read_only = _owned_by_root(0o666, 0o777), _owned_by_root(0o444, 0o555)
    run = layout.run_dir.lstrip("/")
    with tempfile.TemporaryFile() as buffer:
        with tarfile.open(fileobj=buffer, mode="w", dereference=True) as tar:
            for folder in (PurePosixPath(run).parent, PurePosixPath(run)):
                tar.addfile(writable(_dir_info(str(folder))))
            for path in sorted(run_dir.iterdir()):
                if path.is_file() and not path.name.startswith(".") and path.name not in _HOST_ONLY:
                    tar.add(path, arcname=f"{run}/{path.name}", filter=writable)
            config_bytes = inner.model_dump_json(indent=2).encode()
            info = writable(tarfile.TarInfo(f"{run}/{rundir.CONFIG}"))
            info.size = len(config_bytes)
            tar.addfile(info, io.BytesIO(config_bytes))
            tar.add(layout.host_data, arcname=layout.data.lstrip("/"), filter=read_only)
            if layout.host_model is not None:
                tar.add(layout.host_model, arcname=MODEL_DIR.lstrip("/"), filter=read_only)
        buffer.seek(0)
        container.put_archive("/", buffer)


def download(container, layout: Layout, run_dir: Path) -> None:
    """Copy the run folder's files back from the container; the host keeps its own config.json."""
    import docker

    try:
        chunks, _ = container.get_archive(layout.run_dir)
    except docker.errors.NotFound:
        return
    prefix = PurePosixPath(layout.run_dir).name + "/"
    with tempfile.TemporaryFile() as buffer:
        for chunk in chunks:
            buffer.write(chunk)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            for member in tar:
                name = member.name.removeprefix(prefix)
                if not member.isfile() or name == member.name or "/" in name or name.startswith("."):
                    continue
                if name in _HOST_ONLY:
                    continue
                source = tar.extractfile(member)
                if source is not None:
                    _write_atomic(run_dir / name, source.read())


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _first_line(exc: BaseException) -> str:
    """The useful part of an error: the engine's own words for an API error, not the HTTP request."""
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
