"""``runner catalog``: what sumbench knows about images, GPUs and scenarios.

Each list prints as a table fitted to the terminal (or to ``COLUMNS``), as ``--json`` for scripts, or as
``--markdown`` for documents. The first column is the name other commands take (``--image``, ``--gpu``,
``--scenario``), so it never wraps or shrinks, whatever the width; the other columns wrap instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click


def _text(value: Any) -> str:
    """A value as a table or Markdown cell: lists comma-separated, flags yes/no, nothing as -."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    return "-" if value is None or value == "" else str(value)


@dataclass(frozen=True)
class Column:
    """A column: its header, the field of the JSON record it shows, how it shows it, and whether it may
    wrap in a narrow terminal (all but the names other commands take and image references, which are
    copied whole)."""

    header: str
    key: str
    show: Callable[[Any], str] = _text
    wrap: bool = True


def output_options(command: Callable) -> Callable:
    """``--json`` and ``--markdown`` for a catalog command, the table being the default."""
    as_json = click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects instead of a table.")
    markdown = click.option("--markdown", is_flag=True, help="Print a Markdown table instead.")
    return as_json(markdown(command))


def emit(rows: list[dict[str, Any]], columns: list[Column], as_json: bool, markdown: bool) -> None:
    """Print ``rows`` in the form asked for; JSON keeps every field with its type, the others show ``columns``."""
    if as_json and markdown:
        raise click.UsageError("--json and --markdown: choose one")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif markdown:
        click.echo("\n".join(markdown_table(rows, columns)))
    else:
        _console().print(_table(rows, columns))


def markdown_table(rows: list[dict[str, Any]], columns: list[Column]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [
        line([c.header for c in columns]),
        line(["---"] * len(columns)),
        *(line([c.show(row[c.key]) for c in columns]) for row in rows),
    ]


def _table(rows: list[dict[str, Any]], columns: list[Column]):
    from rich.table import Table

    table = Table()
    for column in columns:
        # A wrapping column folds a word too long for it rather than cutting it with "…".
        table.add_column(column.header, no_wrap=not column.wrap, overflow="fold")
    for row in rows:
        table.add_row(*(c.show(row[c.key]) for c in columns))
    return table


def _console():
    """stdout as ``runner.console`` sets it up, except that a width given in ``COLUMNS`` is kept in a pipe
    too: a table there is as wide as its content otherwise, which suits grep but not ``COLUMNS=80 ... | less``."""
    from rich.console import Console

    from runner.console import stdout_console

    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns)) if columns.isdigit() and int(columns) > 0 else stdout_console()


@click.group()
def catalog() -> None:
    """List the images, GPUs and scenarios sumbench knows."""


@catalog.command()
@output_options
def images(as_json: bool, markdown: bool) -> None:
    """Images: bake target (the name --image takes), reference, backend, scenarios, CUDA architectures."""
    from runner import catalog as cat

    rows = [
        {
            "image": img.key,
            "reference": img.reference(),
            "backend": img.backend,
            "device": img.device,
            "scenarios": list(img.scenarios),
            "default_scenario": img.default_scenario,
            "cuda_archs": list(img.cuda_archs),
            "description": img.description,
        }
        for img in cat.images().values()
    ]
    columns = [
        Column("image", "image", wrap=False),
        Column("reference", "reference", wrap=False),
        Column("backend", "backend"),
        Column("scenarios", "scenarios"),
        Column("CUDA archs", "cuda_archs", lambda archs: ", ".join(archs) or "cpu"),
        Column("description", "description"),
    ]
    emit(rows, columns, as_json, markdown)


@catalog.command()
@output_options
def gpus(as_json: bool, markdown: bool) -> None:
    """GPUs: memory, compute capability, bandwidth, fp16 rate, price."""
    from runner import catalog as cat

    rows = [
        {
            "gpu": g.key,
            "name": g.name,
            "memory_mib": g.memory_mib,
            "compute_capability": g.compute_capability or None,
            "bf16": g.bf16,
            "fp8": g.fp8,
            "bandwidth_gbs": g.bandwidth_gbs,
            "fp16_tflops": g.fp16_tflops,
            "price_usd_per_hour": g.price_usd_per_hour,
            "price_source": g.price_source,
        }
        for g in cat.gpus().values()
    ]
    columns = [
        Column("gpu", "gpu", wrap=False),
        Column("name", "name"),
        Column("memory GiB", "memory_mib", lambda mib: f"{mib / 1024:.1f}"),
        Column("capability", "compute_capability"),
        Column("bf16", "bf16"),
        Column("fp8", "fp8"),
        Column("GB/s", "bandwidth_gbs"),
        Column("fp16 TFLOP/s", "fp16_tflops"),
        Column("$/h", "price_usd_per_hour", lambda price: f"{price:.3f}"),
        Column("price source", "price_source"),
    ]
    emit(rows, columns, as_json, markdown)


@catalog.command()
@output_options
def scenarios(as_json: bool, markdown: bool) -> None:
    """Scenarios: backend, dtype, attention, quantization."""
    from runner.scenarios import SCENARIOS

    rows = [
        {
            "scenario": s.name,
            "backend": s.backend,
            "dtype": s.dtype,
            "attention": s.attention,
            "quantization": s.quantization,
            "description": s.description,
        }
        for s in SCENARIOS.values()
    ]
    columns = [
        Column("scenario", "scenario", wrap=False),
        Column("backend", "backend"),
        Column("dtype", "dtype"),
        Column("attention", "attention"),
        Column("quantization", "quantization"),
        Column("description", "description"),
    ]
    emit(rows, columns, as_json, markdown)
