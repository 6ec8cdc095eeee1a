"""Check a ``--model`` before launching: a local folder, a built-in architecture, or a hub id."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from runner.architectures import ALIASES, BUILTIN_CONFIGS
from runner.errors import UserError

# Organisations whose checkpoints are gated on the hub: downloading them needs an accepted licence and a token.
GATED_ORGS = ("meta-llama/", "mistralai/", "google/gemma")

# Whether check_model asks for this machine's HF_TOKEN. A worker that `runner launch` starts inherits it;
# `runner matrix` turns the check off while it plans, because its targets get the token elsewhere (a
# Kubernetes Secret, a SkyPilot secret) or download nothing (--dry-run), and asks its target instead.
_LOCAL_TOKEN_CHECK: ContextVar[bool] = ContextVar("local_token_check", default=True)


def local_hf_token() -> str | None:
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")


def is_hub_id(model: str, synthetic: bool = False) -> bool:
    """Whether running ``model`` downloads it from the hub: an org/name that is not a local path."""
    path = Path(model).expanduser()
    return not synthetic and model.count("/") == 1 and not model.startswith((".", "/", "~")) and not path.exists()


def is_gated(model: str, synthetic: bool = False) -> bool:
    """Whether running ``model`` downloads a gated checkpoint from the hub (a licence and a token needed)."""
    return is_hub_id(model, synthetic) and model.startswith(GATED_ORGS)


def gated_error(model: str, fix: str = "set HF_TOKEN") -> UserError:
    return UserError(f"{model} is gated on the Hugging Face hub: accept its licence there and {fix}")


@contextmanager
def token_checked_elsewhere() -> Iterator[None]:
    """Within the block, check_model leaves the Hugging Face token to the caller."""
    token = _LOCAL_TOKEN_CHECK.set(False)
    try:
        yield
    finally:
        _LOCAL_TOKEN_CHECK.reset(token)


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
    if model in BUILTIN_CONFIGS:  # a name `runner plan` takes; a launch needs weights for it
        hub = next((h for h, name in ALIASES.items() if name == model), None)
        raise UserError(
            f"{model} is a built-in architecture, not a checkpoint: add --synthetic-weights to run its shape with "
            "random weights (speed and memory; quality is noise)"
            + (
                f", or pass the hub id {hub} for the real weights"
                if hub
                else ", or build a local tiny checkpoint with `runner model tiny DIR`"
            )
        )
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise UserError(
            f"model {model!r} is neither a folder nor a hub id (org/name); "
            "build a local one with `runner model tiny DIR`"
        )
    if _LOCAL_TOKEN_CHECK.get() and is_gated(model) and not local_hf_token():
        raise gated_error(model)
