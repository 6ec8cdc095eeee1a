"""torch's CUDA caching allocator setting: the worker's default, and what the memory plan assumes.

With the default allocator, a long ``generate`` call leaves reserved memory cut into blocks too small to
reuse: on an H200 (Llama-2-7B shape, batch 224) the first call ran out of memory with 86.88 GiB allocated
and 51.43 GiB reserved but unallocated. ``expandable_segments:True`` grows segments in place instead, so
reserved memory stays near allocated. The worker sets it unless the user set the variable (either name);
the plan sizes ``--batch-size auto`` for whichever allocator the worker will run with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, MutableMapping

VARIABLES = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")
"""torch reads both (the second is the newer name); a user's value in either is left alone."""
EXPANDABLE = "expandable_segments:True"


def user_setting(environ: Mapping[str, str]) -> str | None:
    """The allocator configuration the user set, if any."""
    return next((environ[v] for v in VARIABLES if environ.get(v)), None)


def expandable(environ: Mapping[str, str]) -> bool:
    """Whether a worker started with ``environ`` runs with expandable segments (its default, or the user's)."""
    setting = user_setting(environ)
    return setting is None or EXPANDABLE.lower() in setting.replace(" ", "").lower()


@contextlib.contextmanager
def default_applied(environ: MutableMapping[str, str]) -> Iterator[str]:
    """Set expandable segments in ``environ`` unless the user configured the allocator, for the length of a
    run (a caller running several in one process sees its own environment again after each); yields the
    note a result records. Enter before torch initializes CUDA: the allocator reads the variable once."""
    setting = user_setting(environ)
    if setting is not None:
        yield f"CUDA allocator: the user's setting ({setting}) kept; the worker's default ({EXPANDABLE}) not applied"
        return
    environ[VARIABLES[0]] = EXPANDABLE
    try:
        yield f"CUDA allocator: PYTORCH_CUDA_ALLOC_CONF={EXPANDABLE} set by the worker (the user set none)"
    finally:
        environ.pop(VARIABLES[0], None)
