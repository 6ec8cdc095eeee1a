"""Check a ``--model`` before launching: a local folder, a built-in architecture, or a hub id."""

from __future__ import annotations

import os
from pathlib import Path

from runner.architectures import BUILTIN_CONFIGS
from runner.errors import UserError

# Organisations whose checkpoints are gated on the hub: downloading them needs an accepted licence and a token.
GATED_ORGS = ("meta-llama/", "mistralai/", "google/gemma")


def check_model(model: str, synthetic: bool) -> None:
    path = Path(model).expanduser()
    if synthetic:
        if model in BUILTIN_CONFIGS or (path / "config.json").is_file():
            return
        raise UserError(
            f"--synthetic-weights needs a built-in architecture ({', '.join(BUILTIN_CONFIGS)}) "
            f"or a folder with config.json, not {model!r}"
        )
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(f"model folder {model} has no config.json: is it a Hugging Face checkpoint?")
        return
    if model.count("/") == 1 and path.parent.is_dir():
        # "models/tiny-lama" reads as a hub id; with a local models/ beside it, it is a mistyped path,
        # and taking it for a hub id would only fail after minutes of download retries.
        raise UserError(
            f"model folder {model} does not exist (though {path.parent}/ does): "
            "correct the path, or build a model there with `runner model tiny DIR`"
        )
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise UserError(
            f"model {model!r} is neither a folder nor a hub id (org/name); "
            "build a local one with `runner model tiny DIR`"
        )
    if model.startswith(GATED_ORGS) and not (os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")):
        raise UserError(f"{model} is gated on the Hugging Face hub: accept its licence there and set HF_TOKEN")
