"""``runner catalog``: what sumbench knows about images, GPUs and scenarios.

The tables go to stdout, for scripts as much as people; the first column is the name other commands
take (``--image``, ``--gpu``, ``--scenario``), so it never wraps or shrinks, whatever the width.
"""

from __future__ import annotations

import click
from rich.table import Table


def _table(key: str, *headers: str) -> Table:
    table = Table()
    table.add_column(key, no_wrap=True)
    for header in headers:
        table.add_column(header)
    return table


@click.group()
def catalog() -> None:
    """List the images, GPUs and scenarios sumbench knows."""


@catalog.command()
def images() -> None:
    """Images: bake target, reference, backend, scenarios, CUDA architectures."""
    from runner import catalog as cat
    from runner.console import stdout_console

    table = _table("image (bake target)", "reference", "backend", "scenarios", "CUDA archs", "description")
    table.columns[1].no_wrap = True  # an image reference is copied whole into docker commands
    for img in cat.images().values():
        table.add_row(
            img.key,
            img.reference(),
            img.backend,
            ", ".join(img.scenarios),
            ", ".join(img.cuda_archs) or "cpu",
            img.description,
        )
    stdout_console().print(table)


@catalog.command()
def gpus() -> None:
    """GPUs: memory, compute capability, bandwidth, fp16 rate, price."""
    from runner import catalog as cat
    from runner.console import stdout_console

    table = _table(
        "gpu", "name", "memory GiB", "capability", "bf16", "fp8", "GB/s", "fp16 TFLOP/s", "$/h", "price source"
    )
    for g in cat.gpus().values():
        table.add_row(
            g.key,
            g.name,
            f"{g.memory_mib / 1024:.1f}",
            g.compute_capability or "-",
            "yes" if g.bf16 else "no",
            "yes" if g.fp8 else "no",
            str(g.bandwidth_gbs),
            str(g.fp16_tflops),
            f"{g.price_usd_per_hour:.3f}",
            g.price_source,
        )
    stdout_console().print(table)


@catalog.command()
def scenarios() -> None:
    """Scenarios: backend, dtype, attention, quantization."""
    from runner.console import stdout_console
    from runner.scenarios import SCENARIOS

    table = _table("scenario", "backend", "dtype", "attention", "quantization", "description")
    for s in SCENARIOS.values():
        table.add_row(s.name, s.backend, s.dtype, s.attention or "-", s.quantization or "-", s.description)
    stdout_console().print(table)
