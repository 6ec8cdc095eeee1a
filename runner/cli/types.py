"""Click parameter types shared by several commands.

Each type fails through ``self.fail(message, param, ctx)`` with a message about the value alone: click
attaches the parameter, and the entry point (``runner.cli.main``) puts its name in front, as in
``error: --batch-size: '0' must be at least 1``.
"""

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
_ACCEPTED_UNITS = "B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"


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


class BatchSizesType(click.ParamType):
    """A comma-separated list of batch sizes (``1,2,auto``) for ``runner matrix --batch-sizes``.

    Parsing the list as the option's type, rather than in the command, lets a bad item fail while click
    still knows the option, so the message names it.
    """

    name = "N,auto,dynamic,..."

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        parts = [part.strip() for part in str(value).split(",")]
        if not any(parts):
            self.fail(f"{value!r} names no batch size; give numbers, auto or dynamic, comma-separated", param, ctx)
        if not all(parts):  # "1,,2" or "1,2,": a size left out, or a stray comma; either way, ask
            self.fail(
                f"{value!r} has an empty item: give numbers, auto or dynamic, comma-separated (e.g. 1,2,auto)",
                param,
                ctx,
            )
        return [BATCH_SIZE.convert(part, param, ctx) for part in parts]


class ByteSize(int):
    """A number of bytes that remembers how the user wrote it (``16GB``), so a message can echo the words
    typed rather than a conversion of them (``14.9 GiB``). It is an ``int`` everywhere else."""

    text: str

    def __new__(cls, size: int, text: str) -> ByteSize:
        self = super().__new__(cls, size)
        self.text = text
        return self

    def __getnewargs__(self) -> tuple[int, str]:  # keeps ``text`` through pickle and copy
        return int(self), self.text


class ByteSizeType(click.ParamType):
    """Sizes with a unit: ``16GiB``, ``15.5GB``, ``17179869184B``.

    A bare number is refused rather than read as bytes: ``--gpu-memory-limit 16`` means 16 GiB to anyone
    who types it, and as 16 bytes it would quietly make every cell "not fit". ``16G`` is refused too: tools
    disagree on whether G is 10^9 or 2^30 bytes, a 7% difference on a GPU's memory.
    """

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip()
        match = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([A-Za-z]*)", text)
        if match and not match.group(2):
            number = match.group(1)
            self.fail(f"{number}: give a unit, e.g. {number}GiB ({number}B for bytes)", param, ctx)
        if match and match.group(2).lower() in ("k", "m", "g", "t"):
            number, letter = match.group(1), match.group(2).upper()
            self.fail(
                f"{text!r} is ambiguous: write {number}{letter}iB (powers of 1024) or {number}{letter}B "
                "(powers of 1000)",
                param,
                ctx,
            )
        if not match or match.group(2).lower() not in _UNITS:
            self.fail(f"{text!r} is not a size: a number and a unit, one of {_ACCEPTED_UNITS}; e.g. 16GiB", param, ctx)
        number = float(match.group(1)) * _UNITS[match.group(2).lower()]
        if number < 1:
            self.fail(f"{text!r} must be positive", param, ctx)
        return ByteSize(int(number), text)


BATCH_SIZE = BatchSizeType()
BATCH_SIZES = BatchSizesType()
BYTE_SIZE = ByteSizeType()
