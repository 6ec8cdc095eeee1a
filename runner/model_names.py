"""Check a ``--model`` before launching: a local folder, a built-in architecture, or a hub id."""

from __future__ import annotations

import difflib
import itertools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from runner.contract.architectures import ALIASES, BUILTIN_CONFIGS
from runner.contract.errors import UserError

# What the hub takes as a repository id: an optional organisation, then a name, each of letters, digits,
# '-', '_' and '.', not starting with a punctuation mark.
HUB_ID = re.compile(r"(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*", re.ASCII)

# Organisations whose checkpoints are gated on the hub: downloading them needs an accepted licence and a token.
GATED_ORGS = ("meta-llama/", "mistralai/", "google/gemma")

TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
"""Where a launch takes the hub token from (the second is huggingface_hub's older name), in that order."""

# Whether check_model asks for this machine's HF_TOKEN. A worker that `runner launch` starts inherits it;
# `runner matrix` turns the check off while it plans, because its targets get the token elsewhere (a
# Kubernetes Secret, a SkyPilot secret) or download nothing (--dry-run), and asks its target instead.
_LOCAL_TOKEN_CHECK: ContextVar[bool] = ContextVar("local_token_check", default=True)


def local_hf_token() -> str | None:
    return next((token for name in TOKEN_VARIABLES if (token := os.environ.get(name))), None)


def is_hub_id(model: str, synthetic: bool = False) -> bool:
    """Whether ``model`` reads as a hub repository (``org/name``, or a bare ``name`` such as ``gpt2`` or
    ``t5-small``) and is not a local path: running it would download it. A built-in architecture's name
    reads as one too, so the commands that ask this before checking the hub run ``check_model`` first,
    which refuses that name with its own fix before any memory or network check."""
    if synthetic or looks_like_path(model) or not HUB_ID.fullmatch(model):
        return False
    return not Path(model).expanduser().exists()


def looks_like_path(model: str) -> bool:
    """A name only a filesystem path can be: it starts like one (``/``, ``./``, ``~``) or has more parts
    than a hub id's ``org/name``."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1


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
    """Refuse a ``--model`` that cannot load, with the fix that fits what was typed: a missing path, a
    built-in architecture without --synthetic-weights, a name that is no hub id, a gated model without
    a token."""
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
    if model in BUILTIN_CONFIGS:  # a name `runner plan` takes; a launch needs weights for it
        raise _builtin_error(model)
    if looks_like_path(model) or (model.count("/") == 1 and path.parent.is_dir()):
        # "models/tiny-lama" reads as a hub id; with a local models/ beside it, it is a mistyped path,
        # and taking it for a hub id would only fail after minutes of download retries.
        raise UserError(
            f"model folder {model} does not exist{_what_exists(path)}: correct the path, or build a model "
            "there with `runner model tiny DIR`"
        )
    if not HUB_ID.fullmatch(model):
        raise UserError(
            f"model {model!r} is neither a folder nor a hub id (name or org/name, as gpt2 or "
            "meta-llama/Llama-2-7b-chat-hf); build a local one with `runner model tiny DIR`"
        )
    if _LOCAL_TOKEN_CHECK.get() and is_gated(model) and not local_hf_token():
        raise gated_error(model)


def _builtin_error(model: str) -> UserError:
    hub = next((h for h, name in ALIASES.items() if name == model), None)
    return UserError(
        f"{model} is a built-in architecture, not a checkpoint: add --synthetic-weights to run its shape with "
        "random weights (speed and memory; quality is noise)"
        + (
            f", or pass the hub id {hub} for the real weights"
            if hub
            else ", or build a local tiny checkpoint with `runner model tiny DIR`"
        )
    )


def _what_exists(path: Path) -> str:
    """What a missing path's message can add: the nearest folder that does exist, unless it is the root
    or the current folder (which say nothing), or a file in the way; and the path with one part
    corrected, where a near name in that folder makes the whole path exist (a typo)."""
    existing = next((parent for parent in path.parents if parent.exists()), None)
    if existing is None:
        return ""
    if not existing.is_dir():
        return f" ({existing} is a file, not a folder)"
    said = [] if existing == Path(existing.anchor) else [f"though {existing}{os.sep} does"]
    missing = path.relative_to(existing).parts
    if (near := _near_name(existing, missing[0])) and (fixed := existing.joinpath(near, *missing[1:])).exists():
        said.append(f"did you mean {fixed}?")
    return f" ({'; '.join(said)})" if said else ""


def _near_name(folder: Path, name: str) -> str | None:
    """The entry of ``folder`` nearest to ``name``, if one is close (a letter or two apart). Only the first
    thousand entries are read: a huge folder is not worth a slow error message."""
    try:
        names = [entry.name for entry in itertools.islice(folder.iterdir(), 1000)]
    except OSError:
        return None
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
    return close[0] if close else None
