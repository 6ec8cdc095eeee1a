"""What a run's inputs were, in a form a resumed run can check cheaply: the model folder's fingerprint.

A 13 GB checkpoint cannot be hashed on every launch, and does not need to be to notice that it changed:
its files' names and sizes, the full content of its small files (config, index, tokenizer), and the first
MiB of each large one (a safetensors file starts with its header: every tensor's name, dtype, shape and
offset) change when another checkpoint, another quantization or another shard layout takes its place.
Retrained weights of the same shapes saved in place would pass; that is the price of a cheap check.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

SMALL_FILE = 16 << 20
"""Files up to this size (configs, indexes, tokenizers: a Llama-3 tokenizer.json is 9 MB) are hashed whole."""
HEAD_BYTES = 1 << 20
"""Of a larger file (a weight shard) only this much of its start is read, after its name and size."""
PREFIX = "sha256:"


def model_files(folder: Path) -> list[Path]:
    """The model's files, symlinks followed (a hub snapshot links into its blobs), hidden ones left out:
    ``.cache/`` metadata that a download tool rewrites is not the model."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def model_fingerprint(model: str) -> str | None:
    """``sha256:…`` of a local model folder (see the module's docstring); None for a hub id or a built-in
    name, whose files this machine does not hold."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in model_files(folder):
        size = path.stat().st_size
        digest.update(json.dumps([path.relative_to(folder).as_posix(), size]).encode() + b"\n")
        with path.open("rb") as handle:
            digest.update(handle.read(size if size <= SMALL_FILE else HEAD_BYTES))
    return PREFIX + digest.hexdigest()
