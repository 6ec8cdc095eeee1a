"""Whether an image was built from this checkout's source, an older revision, or one it cannot place.

An image carries the worker's code as it was when it was built (``org.opencontainers.image.revision``,
set from ``REVISION`` by docker-bake.hcl); the host runs this checkout's. A worker older than its host
can miss a field the host now writes, so an image behind the checkout is worth a rebuild before it is
trusted. Git answers in milliseconds, and is asked only about images that carry a real revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.contract.git import git
from runner.paths import REPO_ROOT

UNKNOWN = "unknown"
"""docker-bake.hcl's REVISION when none is given: the image does not say what it was built from."""

REBUILD = "REVISION=$(git rev-parse HEAD) docker buildx bake {target}"


@dataclass(frozen=True)
class Freshness:
    state: str
    """current | older | newer | diverged | unknown"""
    detail: str


def checkout_revision(root: Path = REPO_ROOT) -> str | None:
    """This checkout's commit; None for an installed package, or where git is absent."""
    if not (root / ".git").exists():
        return None
    return git(root, "rev-parse", "HEAD") or None


def freshness(image_revision: str | None, head: str | None, target: str, root: Path = REPO_ROOT) -> Freshness:
    """How the image's revision stands to ``head``, with the rebuild command where it is behind."""
    rebuild = REBUILD.format(target=target)
    if not image_revision or image_revision == UNKNOWN:
        return Freshness("unknown", f"no revision label: rebuild with `{rebuild}` to record one")
    short = image_revision[:7]
    if head is None:
        return Freshness("unknown", f"built from {short}; this checkout's revision is unknown")
    if head.startswith(image_revision) or image_revision.startswith(head):
        return Freshness("current", f"{short} (this checkout)")
    if _is_ancestor(root, image_revision, head):
        count = git(root, "rev-list", "--count", f"{image_revision}..{head}")
        behind = f"{count} commits" if count is not None else "commits"
        return Freshness("older", f"{short}: {behind} behind this checkout; rebuild: `{rebuild}`")
    if _is_ancestor(root, head, image_revision):
        return Freshness("newer", f"{short}: ahead of this checkout")
    if git(root, "cat-file", "-e", f"{image_revision}^{{commit}}") is None:
        return Freshness("unknown", f"{short}: not in this checkout's history")
    return Freshness("diverged", f"{short}: on another branch than this checkout")


def _is_ancestor(root: Path, older: str, newer: str) -> bool:
    return git(root, "merge-base", "--is-ancestor", older, newer) is not None
