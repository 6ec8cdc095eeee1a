"""``runner model``: models without downloads."""

from __future__ import annotations

from pathlib import Path

import click

from runner.paths import SAMPLE_DATASET


@click.group()
def model() -> None:
    """Build models locally, for tests and for machines that cannot reach a model hub."""


@model.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False),
    default=str(SAMPLE_DATASET),
    show_default="bundled sample",
    help="Texts the tokenizer is trained on.",
)
@click.option("--vocab-size", type=click.IntRange(300, 65536), default=4096, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def tiny(out_dir: Path, data: str, vocab_size: int, seed: int) -> None:
    """Build a tiny random-weight Llama with a locally trained tokenizer in OUT_DIR.

    It is saved with save_pretrained, so `runner launch --model OUT_DIR` loads it through the same
    from_pretrained path as a real checkpoint. Its summaries are noise; its speed and plumbing are real.
    """
    from runner.datasets import load_dataset
    from runner.worker.models import build_tiny

    texts = [d.text for d in load_dataset(data, require_summary=False).documents]
    build_tiny(out_dir, texts, vocab_size=vocab_size, seed=seed)
    click.echo(f"tiny Llama written to {out_dir}")
