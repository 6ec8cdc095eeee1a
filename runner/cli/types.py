"""Click parameter types shared by several commands."""

from __future__ import annotations

import re

import click

_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


class BatchSizeType(click.ParamType):
    """A positive integer, ``auto`` (largest that fits, halving on OOM) or ``dynamic`` (vLLM decides)."""

    name = "N|auto|dynamic"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value in ("auto", "dynamic"):
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a positive integer, 'auto' or 'dynamic'", param, ctx)
        if number < 1:
            self.fail(f"{value!r} must be at least 1", param, ctx)
        return number


class ByteSizeType(click.ParamType):
    """Sizes with a unit: ``16GiB``, ``15.5GB``, ``17179869184B``.

    A bare number is refused rather than read as bytes: ``--gpu-memory-limit 16`` means 16 GiB to anyone
    who types it, and as 16 bytes it would quietly make every cell "not fit".
    """

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
        if match and not match.group(2):
            number = match.group(1)
            self.fail(f"{number}: give a unit, e.g. {number}GiB ({number}B for bytes)", param, ctx)
        if not match or match.group(2).lower() not in _UNITS:
            self.fail(f"{value!r} is not a size like 16GiB, 15GB or 17179869184B", param, ctx)
        number = float(match.group(1)) * _UNITS[match.group(2).lower()]
        if number < 1:
            self.fail(f"{value!r} must be positive", param, ctx)
        return int(number)


BATCH_SIZE = BatchSizeType()
BYTE_SIZE = ByteSizeType()
