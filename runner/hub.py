"""Whether this machine can get a model or a dataset from the Hugging Face hub, answered in a second.

Offline, the hub client retries every download with backoff for half a minute or more and ends in a
traceback; a run that would download here would load nothing and leave a failed run folder behind. So
the commands that download on this machine (``data fetch``; ``launch`` with the process executor or a
local Docker engine, which share this machine's network and Hugging Face cache) ask first: is the model
already in the local cache, and if not, does one request to the hub come back?

It uses huggingface_hub's own endpoint and cache settings (``HF_ENDPOINT``, ``HF_HOME``,
``HF_HUB_OFFLINE``), so it sees what the download would; without huggingface_hub installed (a host that
only talks to remote engines) it cannot tell, and says nothing.
"""

from __future__ import annotations


def unreachable(timeout: float | None = None) -> str | None:
    """Why the hub does not answer from here (endpoint and error), or None when it does or we cannot tell.

    ``timeout`` defaults to the client's own (``HF_HUB_ETAG_TIMEOUT``), what a download would wait;
    ``runner doctor`` waits less, as a network that drops packets would otherwise hold up its report."""
    try:
        from huggingface_hub import constants
        from huggingface_hub.utils import get_session
    except ImportError:
        return None
    try:
        get_session().head(constants.ENDPOINT, timeout=constants.HF_HUB_ETAG_TIMEOUT if timeout is None else timeout)
    except Exception as exc:  # the client's transport errors (DNS, refused, timeout) share no stdlib base
        return f"{constants.ENDPOINT}: {str(exc).strip() or type(exc).__name__}"
    return None


def offline_mode() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def cached(repo_id: str) -> bool:
    """Whether the model's config.json is in the local Hugging Face cache (a download already happened)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # a malformed id or cache: the download would say more than we can
        return False


def download_problem(repo_id: str) -> str | None:
    """Why ``repo_id`` cannot be downloaded on this machine now, as a one-line message; None when it is
    cached or the hub answers."""
    if cached(repo_id):
        return None
    fix = "pass a local checkpoint folder as --model, or run where the hub is reachable"
    if offline_mode():
        return f"{repo_id} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: {fix}"
    if reason := unreachable():
        return f"cannot reach the Hugging Face hub to download {repo_id} ({reason}): {fix}"
    return None
