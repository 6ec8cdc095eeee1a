"""Where a run's files are inside the container, and where each one comes from on the host.

The worker must find its run folder, dataset and model at fixed container paths, whatever the engine;
this module decides those paths once, so the spec (mounts) and the copies (remote engines) agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from runner.contract.errors import UserError
from runner.contract.schema import RunConfig

RESULTS_ROOT = "/results"
DATA_DIR = "/inputs/data"
MODEL_DIR = "/inputs/model"
CONTAINER_CONFIG = "container-config.json"


@dataclass(frozen=True)
class Layout:
    """The run's files inside the container, and where each comes from on the host."""

    run_dir: str
    data: str
    model: str  # a container path, or the hub id / built-in name unchanged
    host_data: Path
    host_model: Path | None = None  # the folder that is mounted or copied for the model
    hub_model: bool = False  # a hub id: the container downloads it
    model_volume: str | None = None  # copied once into this named volume, kept on the engine for later runs

    def container_config(self, config: RunConfig) -> RunConfig:
        return config.model_copy(update={"data": self.data, "model": self.model})


HOST_ONLY_FIELDS = {"model_fingerprint", "dataset_sha256"}
"""Config fields only the host reads (resume checks); the worker never needs them, so an image built before
they existed still accepts the container's config. The result gets them back with the host's config."""


def container_config_json(inner: RunConfig) -> str:
    return inner.model_dump_json(indent=2, exclude=HOST_ONLY_FIELDS)


def plan_layout(config: RunConfig, run_name: str, copy: bool) -> Layout:
    data = Path(config.data)
    common = {"run_dir": f"{RESULTS_ROOT}/{run_name}", "data": f"{DATA_DIR}/{data.name}", "host_data": data}
    model = Path(config.model)
    if not model.is_dir():
        return Layout(model=config.model, hub_model=not config.synthetic_weights, **common)
    # A copy follows symlinks; a mount must include their targets (a hub snapshot links into ../../blobs).
    root = model if copy else link_root(model)
    inside = PurePosixPath(MODEL_DIR, *model.relative_to(root).parts)
    volume = model_volume(config.model_fingerprint) if copy else None
    return Layout(model=str(inside), host_model=root, model_volume=volume, **common)


MODEL_VOLUME_PREFIX = "sumbench-model-"
MODEL_MARKER = ".sumbench-fingerprint"
"""Written into a model volume after the model's last file: a volume without it holds a cut-short copy."""


def model_volume(fingerprint: str | None) -> str | None:
    """The named volume that keeps a copied model on its engine, one per content fingerprint: a second run
    (or a resume) of the same model there uploads nothing. None without a fingerprint (a run from before)."""
    if not fingerprint:
        return None
    return MODEL_VOLUME_PREFIX + fingerprint.removeprefix("sha256:")[:24]


def link_root(folder: Path) -> Path:
    """The closest folder that holds ``folder`` and every file its symlinks point to."""
    root = folder
    for path in folder.rglob("*"):
        if path.is_symlink():
            root = Path(os.path.commonpath([root, path.resolve()]))
    if root == Path(root.anchor):
        raise UserError(f"model folder {folder} links to files all over the disk: copy it to a plain folder first")
    return root
