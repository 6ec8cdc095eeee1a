"""``runner data``: inspect and fetch datasets."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def data() -> None:
    """Datasets as hashed JSONL, so every cell of a matrix runs the same documents."""


@data.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--text-field", help="Field holding the document (default: detect).")
@click.option("--summary-field", help="Field holding the reference summary (default: detect).")
@click.option("--id-field", help="Field holding the id (default: detect, else line numbers).")
@click.option(
    "--limit",
    type=click.IntRange(1),
    help="Only the first N documents, as `runner launch --limit N` reads them: the hash such a run records.",
)
def inspect(
    path: str, text_field: str | None, summary_field: str | None, id_field: str | None, limit: int | None
) -> None:
    """Check a JSONL dataset and print its fields, size and content hash.

    \b
    Examples:
      runner data inspect data/howto-sample.jsonl
      runner data inspect my.jsonl --text-field body --summary-field abstract --limit 50
    """
    from rich.markup import escape

    from runner.console import stdout_console
    from runner.contract.datasets import load_dataset

    ds = load_dataset(path, text_field=text_field, summary_field=summary_field, id_field=id_field, limit=limit)
    words = [len(d.text.split()) for d in ds.documents]
    out = stdout_console()
    out.print(f"[bold]{escape(path)}[/]: {len(ds)} document{'' if len(ds) == 1 else 's'}{_limited(len(ds), limit)}")
    fields = f"text={ds.text_field} summary={ds.summary_field} id={ds.id_field or '(line numbers)'}"
    out.print(f"fields: {escape(fields)}")
    out.print(f"words per document: mean {sum(words) / len(words):.0f}, min {min(words)}, max {max(words)}")
    out.print(f"sha256: {ds.sha256}")


def _limited(documents: int, limit: int | None) -> str:
    """What --limit did to the count: " (the first 6)" where it cut the file short; " (all 24; --limit
    100)" where the file has fewer, so the count does not read as the first of more."""
    if limit is None:
        return ""
    return f" (the first {limit})" if documents == limit else f" (all {documents}; --limit {limit})"


def _fetch_help() -> str:
    """The help of ``data fetch``, its table of names made from ``runner.fetch.HUB_DATASETS``, so the hub
    dataset, config and columns a name stands for are said where they are chosen and cannot drift."""
    from runner.fetch import HUB_DATASETS

    names = "\n".join(f"      {name:<14} {spec.describe()}" for name, spec in HUB_DATASETS.items())
    return f"""Fetch a fixed sample of NAME as hashed JSONL: the same NAME, split, --n and --seed give the same
    documents, written to OUT/NAME-SPLIT-nN-sSEED.jsonl with a manifest of their source and hash.

    NAME is one of the datasets below: the hub dataset it reads, and the columns taken from it. A --source
    file is one split of that dataset with those columns (the id one may be missing: documents are then
    numbered).

    \b
{names}

    \b
    Examples:
      runner data fetch wikilingua --n 100
      runner data fetch xsum --n 500 --seed 1 --out data/
      runner data fetch wikilingua --n 100 --source test-00000-of-00001.parquet
    """


@data.command(help=_fetch_help())
@click.argument("name")
@click.option("--n", "n", type=click.IntRange(1), default=100, show_default=True, help="Documents in the sample.")
@click.option("--seed", type=int, default=0, show_default=True, help="Shuffle seed: same seed, same documents.")
@click.option("--split", help="Split (default: the dataset's test split).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Folder for the JSONL file and its manifest.",
)
@click.option(
    "--source",
    type=click.Path(exists=True, dir_okay=False),
    help="Read a local parquet or JSON(L) file instead of the hub (air-gapped machines): one split of the "
    "dataset as the hub serves it, with the columns listed above (wikilingua: source, target, gem_id).",
)
def fetch(name: str, n: int, seed: int, split: str | None, out: Path, source: str | None) -> None:
    """Fetch a fixed sample of a dataset (its --help is ``_fetch_help``'s)."""
    from runner.console import console
    from runner.fetch import fetch as do_fetch

    # Our one line while the library works (a download can take minutes); it draws on a terminal only.
    doing = f"reading {source}" if source else f"fetching {name} from the Hugging Face hub"
    with console.status(doing, spinner="dots"):
        path = do_fetch(name, n, seed, out, split=split, source=source)
    click.echo(f"wrote {path} and {path.with_suffix('.manifest.json').name}")
