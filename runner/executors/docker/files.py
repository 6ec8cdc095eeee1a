"""Moving the run's files between the host and the container when they cannot simply be shared.

A remote engine sees its own disk, not ours: the inputs are copied into the created container before it
starts and the run folder is copied back when it ends. Either way the host then puts its own config and
dataset path back into ``result.json``, so a result is valid on the host whichever engine ran it.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from runner.contract import rundir
from runner.contract.schema import RunConfig
from runner.executors.docker.layout import CONTAINER_CONFIG, MODEL_DIR, MODEL_MARKER, Layout, container_config_json

# Files of the run folder that belong to the host: never sent over, never copied back.
_HOST_ONLY = (rundir.CONFIG, CONTAINER_CONFIG, rundir.OUTPUT_LOG)


def restore_host_paths(run_dir: Path, config: RunConfig) -> None:
    """Give ``result.json`` the host's config and dataset path in place of the container's."""
    if not (run_dir / rundir.RESULT).exists():
        return
    result = rundir.read_result(run_dir)
    update: dict[str, Any] = {"config": config}
    if result.dataset is not None:
        update["dataset"] = result.dataset.model_copy(update={"path": config.data})
    rundir.write_result(run_dir, result.model_copy(update=update))


def model_on_engine(container, layout: Layout) -> bool:
    """Whether the created container's model volume already holds this model, whole (its marker is there,
    naming the same volume); False without a model volume."""
    import docker

    if layout.model_volume is None:
        return False
    try:
        chunks, _ = container.get_archive(f"{MODEL_DIR}/{MODEL_MARKER}")
    except docker.errors.NotFound:
        return False
    with tempfile.TemporaryFile() as buffer:
        for chunk in chunks:
            buffer.write(chunk)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            member = tar.extractfile(MODEL_MARKER)
            return member is not None and member.read().decode(errors="replace").strip() == layout.model_volume


def upload(container, layout: Layout, run_dir: Path, inner: RunConfig, model: bool = True) -> None:
    """Copy the run folder (container config in place of the host's), dataset and model into the
    created container. The run folder is world-writable there, whatever user the image runs as.
    ``model``: False when the model volume holds it already (``model_on_engine``)."""
    writable, read_only = _owned_by_root(0o666, 0o777), _owned_by_root(0o444, 0o555)
    run = layout.run_dir.lstrip("/")
    with tempfile.TemporaryFile() as buffer:
        with tarfile.open(fileobj=buffer, mode="w", dereference=True) as tar:
            for folder in (PurePosixPath(run).parent, PurePosixPath(run)):
                tar.addfile(writable(_dir_info(str(folder))))
            for path in sorted(run_dir.iterdir()):
                if path.is_file() and not path.name.startswith(".") and path.name not in _HOST_ONLY:
                    tar.add(path, arcname=f"{run}/{path.name}", filter=writable)
            config_bytes = container_config_json(inner).encode()
            info = writable(tarfile.TarInfo(f"{run}/{rundir.CONFIG}"))
            info.size = len(config_bytes)
            tar.addfile(info, io.BytesIO(config_bytes))
            tar.add(layout.host_data, arcname=layout.data.lstrip("/"), filter=read_only)
            if layout.host_model is not None and model:
                tar.add(layout.host_model, arcname=MODEL_DIR.lstrip("/"), filter=read_only)
                if layout.model_volume:  # last: a copy cut short leaves a volume without it
                    marker = layout.model_volume.encode()
                    info = read_only(tarfile.TarInfo(f"{MODEL_DIR.lstrip('/')}/{MODEL_MARKER}"))
                    info.size = len(marker)
                    tar.addfile(info, io.BytesIO(marker))
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


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), rundir.plain_file_mode())  # mkstemp's 0600 would hide results from others
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
