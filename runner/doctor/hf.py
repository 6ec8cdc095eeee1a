"""The Hugging Face side of a machine: token, cache, and whether the hub answers.

The token is reported as set or not, never shown: the doctor's output is meant to be pasted into an
issue. The hub is asked once, through ``runner.hub`` (the same request ``launch`` makes before a
download), with a short timeout: offline, a report must not wait on a network that drops packets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runner import hub
from runner.executors.docker.spec import host_hf_cache
from runner.model_names import TOKEN_VARIABLES

HUB_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class HubSurvey:
    token_variable: str | None
    """Which variable holds a token; None when neither is set."""
    cache: str
    cache_exists: bool
    endpoint: str | None
    offline_mode: bool
    reachable: bool | None
    """None: not asked (HF_HUB_OFFLINE is set, or huggingface_hub is not installed to ask with)."""
    problem: str | None


def survey_hub() -> HubSurvey:
    token_variable = next((name for name in TOKEN_VARIABLES if os.environ.get(name)), None)
    cache, endpoint = _cache_and_endpoint()
    offline = hub.offline_mode()
    reachable: bool | None = None
    problem = None
    if offline:
        problem = "HF_HUB_OFFLINE is set: only cached models and local folders load"
    elif endpoint is None:
        problem = "huggingface_hub is not installed here, so the hub cannot be asked"
    else:
        problem = hub.unreachable(timeout=HUB_TIMEOUT_S)
        reachable = problem is None
    return HubSurvey(token_variable, str(cache), cache.is_dir(), endpoint, offline, reachable, problem)


def _cache_and_endpoint() -> tuple[Path, str | None]:
    """The hub cache a download would fill (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME applied), and the endpoint."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return host_hf_cache(os.environ) / "hub", None
    return Path(constants.HF_HUB_CACHE), constants.ENDPOINT
