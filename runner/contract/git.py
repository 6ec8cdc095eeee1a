"""Asking git about a checkout, for what a result or ``runner doctor`` records of the source."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(cwd: Path, *args: str) -> str | None:
    """``git ARGS`` in ``cwd``: its stripped output, or None when git is missing, slow or fails (an
    installed package, no checkout, an unknown commit), where the answer is simply not known."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
