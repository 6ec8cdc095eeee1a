"""User-facing errors.

Every mistake a user can make (a bad file, an unknown name, an incompatible GPU) raises ``UserError``
with one line that names the bad input and the fix. The CLI prints that line and exits non-zero;
a traceback is reserved for bugs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

INTERRUPTED_EXIT_CODE = 130
"""The exit code of a command a person stopped (Ctrl-C, or SIGTERM to it), at any point: 128 + SIGINT, as
a shell reports a program Ctrl-C ended. A stop is no failure of what was asked, so it has a code of its own."""


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""

    exit_code = 2


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> UserError:
    """An error for an unknown name that suggests the closest valid ones."""
    valid = sorted(valid)
    close = suggestions(name, valid)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return UserError(f"unknown {kind} {name!r}: {hint}valid: {', '.join(valid)}")


def suggestions(name: str, valid: Iterable[str], limit: int = 3) -> list[str]:
    """The valid names ``name`` most likely meant, best first, at most ``limit``.

    Case is ignored: ``H100`` means ``h100``, and ``A100`` the a100 cards, not ``h100``. Names that
    ``name`` begins come first: ``a100`` is two cards (``a100-40gb``, ``a100-80gb``), and string
    similarity alone ranks ``h100``, one letter off, above both. Then difflib's closest, for typos
    (``hf-flsh``)."""
    by_folded = {v.casefold(): v for v in valid}
    folded = name.casefold()
    if folded in by_folded:  # the name itself, in other letters
        return [by_folded[folded]]
    found = [by_folded[v] for v in sorted(by_folded) if folded and v.startswith(folded)]
    for match in difflib.get_close_matches(folded, list(by_folded), n=limit, cutoff=0.5):
        if by_folded[match] not in found:
            found.append(by_folded[match])
    return found[:limit]
