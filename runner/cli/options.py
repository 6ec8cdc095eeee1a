"""Options that describe what a cell runs, shared by `runner launch` and `runner matrix`.

One definition keeps the two commands' names, defaults and help identical: a cell launched alone and
the same cell in a matrix are configured by the same words.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from runner.cli.types import BYTE_SIZE
from runner.paths import SAMPLE_DATASET

CELL_OPTIONS: list[Callable] = [
    click.option("--model", help="Checkpoint folder, hub id, or with --synthetic-weights a built-in architecture."),
    click.option(
        "--data",
        default=str(SAMPLE_DATASET),
        show_default="bundled how-to sample",
        type=click.Path(dir_okay=False),
        help="Dataset JSONL.",
    ),
    click.option("--max-new-tokens", type=click.IntRange(1), default=300, show_default=True),
    click.option(
        "--max-input-tokens",
        type=click.IntRange(1),
        default=4096,
        show_default=True,
        help="Longer prompts are skipped and counted, never truncated.",
    ),
    click.option("--limit", type=click.IntRange(1), help="Use only the first N documents."),
    click.option(
        "--synthetic-weights",
        is_flag=True,
        help="Random weights of the model's architecture (no download); forces output length, quality not meaningful.",
    ),
    click.option("--text-field", help="Dataset field holding the document (default: detect)."),
    click.option("--summary-field", help="Dataset field holding the reference summary (default: detect)."),
    click.option("--id-field", help="Dataset field holding the id (default: detect, else line numbers)."),
    click.option(
        "--prompt-template", help="Prompt with {document} (and {instruction}); default: the model's chat template."
    ),
    click.option(
        "--gpu-memory-limit",
        type=BYTE_SIZE,
        help="Cap usable GPU memory (with a unit: 16GiB) to reproduce a smaller card.",
    ),
    click.option(
        "--max-batch-size",
        type=click.IntRange(1),
        help="Upper bound for --batch-size auto (default: the memory plan; on a CPU 8).",
    ),
]


def cell_options(command: Callable) -> Callable:
    """Add every cell option to a click command, in the order above."""
    for option in reversed(CELL_OPTIONS):
        command = option(command)
    return command
