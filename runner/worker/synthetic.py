"""Random-weight checkpoints written to disk, so every scenario loads synthetic weights with ``from_pretrained``.

``from_config`` builds a model but cannot quantize it: bitsandbytes (4-bit, 8-bit) quantizes while
``from_pretrained`` loads. A synthetic run of a quantized scenario therefore loads a random checkpoint
that ``materialize`` wrote once into a cache folder keyed by the architecture's config, the seed and the
dtype; later runs reuse it. ``runner model synthetic`` writes the same checkpoint (with a tokenizer) into
a folder of the user's choosing. Either one is marked random in its ``config.json``
(``runner.contract.weights.RANDOM_WEIGHTS_KEY``), like ``runner model tiny``'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from runner.contract.weights import RANDOM_WEIGHTS_KEY

CACHE_ENV = "SUMBENCH_SYNTHETIC_CACHE"
"""Folder for cached random checkpoints; default: ``$HF_HOME/sumbench-synthetic`` or ``~/.cache/sumbench/synthetic``."""


def cache_root() -> Path:
    if folder := os.environ.get(CACHE_ENV):
        return Path(folder)
    if hf_home := os.environ.get("HF_HOME"):
        return Path(hf_home) / "sumbench-synthetic"
    return Path.home() / ".cache" / "sumbench" / "synthetic"


def checkpoint_key(config, seed: int, dtype: str) -> str:
    """Name of the cache folder for ``config`` (a transformers config), ``seed`` and ``dtype``: the same
    architecture and seed find the checkpoint written before, any other shape gets its own."""
    shape = json.dumps(config.to_diff_dict(), sort_keys=True, default=str)
    digest = hashlib.sha256(f"{shape}|{seed}|{dtype}".encode()).hexdigest()[:16]
    return f"{config.model_type}-{digest}"


def materialize(config, out_dir: Path, *, seed: int, dtype: str, device: str) -> Path:
    """Build a random-weight model of ``config`` on ``device`` (a GPU initialises a 7B model in seconds),
    save it with ``save_pretrained`` to ``out_dir`` marked random, and return ``out_dir``. Written into a
    temporary folder beside it and renamed, so a reader never sees half a checkpoint."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    # transformers 5 renamed torch_dtype to dtype.
    dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the checkpoint is for whoever runs the worker
    try:
        setattr(config, RANDOM_WEIGHTS_KEY, True)
        torch.manual_seed(seed)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, **{dtype_key: getattr(torch, dtype)})
        model.save_pretrained(tmp)
        del model
        if torch.cuda.is_available():  # the quantized load that follows needs the memory back
            torch.cuda.empty_cache()
        if out_dir.exists():  # another worker finished the same key first: keep theirs
            shutil.rmtree(tmp)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def cached_checkpoint(config, *, seed: int, dtype: str, device: str) -> tuple[Path, bool]:
    """The cached random checkpoint for ``config``, written now if missing; and whether it was written now."""
    folder = cache_root() / checkpoint_key(config, seed, dtype)
    if (folder / "config.json").is_file():
        return folder, False
    return materialize(config, folder, seed=seed, dtype=dtype, device=device), True
