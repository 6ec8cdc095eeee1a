"""Keep tokens out of everything sumbench writes: results, logs and error messages.

Results are meant to be shared (committed, attached to issues, uploaded), and the text most likely to
carry a token is the least controlled: an exception from a download library quoting its request, a
traceback, a log line. So redaction is applied where text leaves the worker (the error message, the
notes, ``error.log``, every log line), by value rather than by guessing where a token might hide.
"""

from __future__ import annotations

import logging
import os
import re

_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|ACCESS_KEY", re.I)
MIN_SECRET_LENGTH = 8  # shorter values (TOKENIZERS_PARALLELISM=false) would mask ordinary words
# Shapes worth masking even when the value did not come from this environment: Hugging Face tokens,
# and the credential of an HTTP Authorization header an exception may quote.
_PATTERNS = (
    re.compile(r"\bhf_[A-Za-z0-9]{20,}\b"),
    re.compile(r"(?<=Bearer )[A-Za-z0-9._~+/=-]{8,}", re.I),
)
MASK = "***"


def secret_values() -> list[str]:
    """Values of environment variables whose names say they are secrets, longest first (so a secret that
    contains another is masked whole)."""
    return sorted(
        (v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH),
        key=len,
        reverse=True,
    )


def redact(text: str) -> str:
    for value in secret_values():
        text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text


class RedactingFormatter(logging.Formatter):
    """Masks secrets in the whole formatted record, message and traceback alike."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
