"""Who the worker runs as in a container, and who owns the run folder while it does.

A container never runs as root. A host user who is not root runs the worker under their own uid, so the
files it writes into the mounted run folder are theirs. Root on the host gets the images' own non-root
user instead; the run folder is lent to that user while the container runs and given back to root after,
so results come back owned by whoever launched, whatever happened in between.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

WORKER_UID = 1000
"""The images' non-root ``sumbench`` user and group (images/common/install.sh, APP_UID)."""


def container_user(copy: bool) -> str:
    """``uid:gid`` for the container: the host user's own when files are shared (mounts) and that user is
    not root; else the images' user, who owns what the image and a copied-in run folder hold."""
    uid, gid = os.getuid(), os.getgid()
    return f"{uid}:{gid}" if not copy and uid != 0 else f"{WORKER_UID}:{WORKER_UID}"


def lends_folder(copy: bool) -> bool:
    """Whether the mounted run folder must be handed to the container's user (root launching, mounts)."""
    return not copy and os.getuid() == 0


def private_input(paths: list[Path]) -> Path | None:
    """For root on the host: the first input file or folder the images' user could not read through a
    mount (a checkpoint saved 0600, a folder 0700); None when all can be, or the host user is not root
    (then the container runs as that user, who reads what they read)."""
    if os.getuid() != 0:
        return None
    for root in paths:
        for path in [root, *(root.rglob("*") if root.is_dir() else [])]:
            try:
                mode = path.stat().st_mode
            except OSError:
                continue
            need = 0o005 if path.is_dir() else 0o004
            if mode & need != need:
                return path
    return None


def _chown_folder(folder: Path, uid: int, gid: int) -> None:
    for path in [folder, *folder.iterdir()]:
        with contextlib.suppress(FileNotFoundError):
            os.chown(path, uid, gid, follow_symlinks=False)


@contextlib.contextmanager
def lent(folder: Path, copy: bool) -> Iterator[None]:
    """The run folder owned by the container's user inside the block, by the host user after it."""
    if not lends_folder(copy):
        yield
        return
    _chown_folder(folder, WORKER_UID, WORKER_UID)
    try:
        yield
    finally:
        _chown_folder(folder, os.getuid(), os.getgid())
