"""``runner catalog``: what sumbench knows about images, GPUs and scenarios.

Each list prints as a table fitted to the terminal (or to ``COLUMNS``), as ``--json`` for scripts, or as
``--markdown`` for documents. The first column is the name other commands take (``--image``, ``--gpu``,
``--scenario``), so it never wraps or shrinks, whatever the width; the other columns wrap instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from runner.cli.tables import rich_table, table_console
from runner.report.document import Column, Table
from runner.report.render_md import markdown_table


def _text(value: Any) -> str:
    """A value as a table or Markdown cell: lists comma-separated, flags yes/no, nothing as -."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    return "-" if value is None or value == "" else str(value)


def column(header: str, key: str, show: Callable[[Any], str] = _text) -> Column:
    """A column of the report's own table model, showing field ``key`` of a JSON record."""
    return Column(key, header, lambda row: show(row[key]))


def output_options(command: Callable) -> Callable:
    """``--json`` and ``--markdown`` for a catalog command, the table being the default."""
    as_json = click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects instead of a table.")
    markdown = click.option("--markdown", is_flag=True, help="Print a Markdown table instead.")
    return as_json(markdown(command))


def emit(rows: list[dict[str, Any]], columns: list[Column], as_json: bool, markdown: bool) -> None:
    """Print ``rows`` in the form asked for; JSON keeps every field with its type, the others show ``columns``.
    In the terminal table only the first column (the name other commands take) and an image reference,
    both copied whole, never wrap."""
    if as_json and markdown:
        raise click.UsageError("--json and --markdown: choose one")
    table = Table(columns, rows)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif markdown:
        click.echo("\n".join(markdown_table(table)))
    else:
        table_console().print(rich_table(table, whole={columns[0].key, "reference"}))


@click.group()
def catalog() -> None:
    """List the images, GPUs and scenarios sumbench knows."""


@catalog.command()
@output_options
def images(as_json: bool, markdown: bool) -> None:
    """Images: bake target (the name --image takes), reference, backend, scenarios, CUDA architectures, the
    CUDA build and the oldest NVIDIA driver that runs it (a launch refuses an older one; --force tries).

    \b
    Examples:
      runner catalog images
      runner catalog images --json
    """
    from runner.contract import catalog as cat

    rows = [
        {
            "image": img.key,
            "reference": img.reference(),
            "backend": img.backend,
            "device": img.device,
            "scenarios": list(img.scenarios),
            "default_scenario": img.default_scenario,
            "cuda_archs": list(img.cuda_archs),
            "cuda": img.cuda or None,
            "min_driver": img.min_driver or None,
            "description": img.description,
        }
        for img in cat.images().values()
    ]
    columns = [
        column("image", "image"),
        column("reference", "reference"),
        column("backend", "backend"),
        column("scenarios", "scenarios"),
        column("CUDA archs", "cuda_archs", lambda archs: ", ".join(archs) or "cpu"),
        Column("min_driver", "driver", _driver),
        column("description", "description"),
    ]
    emit(rows, columns, as_json, markdown)


def _driver(row: dict[str, Any]) -> str:
    """The oldest NVIDIA driver an image runs on, with the CUDA build that sets it: ``580+ (CUDA 13.0)``."""
    return f"{row['min_driver']}+ (CUDA {row['cuda']})" if row["min_driver"] else "-"


@catalog.command()
@output_options
def gpus(as_json: bool, markdown: bool) -> None:
    """GPUs: memory, compute capability, bandwidth, fp16 rate, price.

    \b
    Examples:
      runner catalog gpus
      runner catalog gpus --markdown
    """
    from runner.contract import catalog as cat

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
        column("gpu", "gpu"),
        column("name", "name"),
        column("memory GiB", "memory_mib", lambda mib: f"{mib / 1024:.1f}"),
        column("capability", "compute_capability"),
        column("bf16", "bf16"),
        column("fp8", "fp8"),
        column("GB/s", "bandwidth_gbs"),
        column("fp16 TFLOP/s", "fp16_tflops"),
        column("$/h", "price_usd_per_hour", lambda price: f"{price:.3f}"),
        column("price source", "price_source"),
    ]
    emit(rows, columns, as_json, markdown)


@catalog.command()
@output_options
def scenarios(as_json: bool, markdown: bool) -> None:
    """Scenarios: backend, dtype, attention, quantization.

    \b
    Examples:
      runner catalog scenarios
      runner catalog scenarios --json
    """
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
        column("scenario", "scenario"),
        column("backend", "backend"),
        column("dtype", "dtype"),
        column("attention", "attention"),
        column("quantization", "quantization"),
        column("description", "description"),
    ]
    emit(rows, columns, as_json, markdown)
