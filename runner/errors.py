"""User-facing errors.

Every mistake a user can make (a bad file, an unknown name, an incompatible GPU) raises ``UserError``
with one line that names the bad input and the fix. The CLI prints that line and exits non-zero;
a traceback is reserved for bugs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""

    exit_code = 2


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> UserError:
    """An error for an unknown name that suggests the closest valid ones."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return UserError(f"unknown {kind} {name!r}: {hint}valid: {', '.join(valid)}")
