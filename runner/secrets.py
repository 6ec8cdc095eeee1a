"""Keep tokens out of everything sumbench writes: results, logs and error messages."""

from __future__ import annotations

import logging
import os
import re

_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|ACCESS_KEY", re.I)
# Hugging Face tokens have a recognizable shape even when they did not come from our environment.
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b")
MASK = "***"


def secret_values() -> list[str]:
    """Values of environment variables whose names say they are secrets (long enough to be real)."""
    return sorted(
        (v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8), key=len, reverse=True
    )


def redact(text: str) -> str:
    for value in secret_values():
        text = text.replace(value, MASK)
    return _HF_TOKEN.sub(MASK, text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
