"""Fixed samples of public summarization datasets, fetched with the ``datasets`` library.

A sample is defined by (dataset, split, n, seed): the same four give the same documents, written as
JSONL with a manifest that records the source and the content hash, so every cell of a matrix runs
exactly the same documents.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from runner import hub
from runner.contract.datasets import load_dataset as load_jsonl
from runner.contract.errors import UserError, unknown_name


@dataclass(frozen=True)
class HubDataset:
    hub_id: str
    config: str | None
    split: str
    text: str
    summary: str
    id: str | None

    def describe(self) -> str:
        """Where a name's documents come from and the columns they are read from, for help and errors:
        "wikilingua" alone does not say that it is GEM/wiki_lingua's English (``en``) config."""
        config = f" (config {self.config})" if self.config else ""
        ids = f", id {self.id}" if self.id else ""
        return f"{self.hub_id}{config}: text {self.text}, summary {self.summary}{ids}"


HUB_DATASETS: dict[str, HubDataset] = {
    "wikilingua": HubDataset("GEM/wiki_lingua", "en", "test", "source", "target", "gem_id"),
    "cnn_dailymail": HubDataset("abisee/cnn_dailymail", "3.0.0", "test", "article", "highlights", "id"),
    "xsum": HubDataset("EdinburghNLP/xsum", None, "test", "document", "summary", "id"),
    "billsum": HubDataset("FiscalNote/billsum", None, "test", "text", "summary", None),
}


def fetch(name: str, n: int, seed: int, out_dir: Path, *, split: str | None = None, source: str | None = None) -> Path:
    """Write ``out_dir/NAME-SPLIT-nN-sSEED.jsonl`` and its manifest; returns the JSONL path.

    ``source`` reads a local parquet or JSON file in the layout the hub serves, instead of the hub.
    """
    try:
        spec = HUB_DATASETS[name]
    except KeyError:
        raise unknown_name("dataset", name, HUB_DATASETS) from None
    try:
        import datasets
    except ImportError:
        raise UserError("fetching needs the datasets library: pip install 'sumbench[data]'") from None
    split = split or spec.split
    with _no_progress_bars(datasets):
        ds = _read_source(datasets, source, split) if source else _read_hub(datasets, name, spec, split)
    for field in (spec.text, spec.summary):
        if field not in ds.column_names:
            raise UserError(f"{name}: expected a {field!r} column, found {', '.join(ds.column_names)}")
    if n > len(ds):
        raise UserError(f"{name} {split} has {len(ds)} records; --n {n} is more than that: give --n {len(ds)} or less")
    sample = ds.shuffle(seed=seed).select(range(n))

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}-{split}-n{n}-s{seed}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i, row in enumerate(sample):
            doc_id = str(row[spec.id]) if spec.id and spec.id in row else f"{name}-{split}-{i}"
            f.write(
                json.dumps({"id": doc_id, "document": row[spec.text], "summary": row[spec.summary]}, ensure_ascii=False)
                + "\n"
            )
    manifest = {
        "name": name,
        "source": source or spec.hub_id,
        "hub": asdict(spec),
        "split": split,
        "n": n,
        "seed": seed,
        "sha256": load_jsonl(path).sha256,
        "fingerprint": getattr(ds, "_fingerprint", None),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.with_suffix(".manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return path


@contextmanager
def _no_progress_bars(datasets) -> Iterator[None]:
    """Turn off the library's bars ("Generating test split: 41 examples") for the block, then put back
    what was there: they are about its cache, not the sample, and ``data fetch`` answers with one line
    (the CLI shows a spinner of its own while this runs)."""
    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()


def _read_source(datasets, source: str, split: str):
    """A local parquet or JSON(L) file; a file ``datasets`` cannot parse is the user's to fix, not a bug."""
    builder = "parquet" if source.endswith(".parquet") else "json"
    if Path(source).stat().st_size == 0:
        raise UserError(f"{source} is empty")
    try:
        return datasets.load_dataset(builder, data_files={split: source}, split=split)
    except (datasets.exceptions.DatasetsError, ValueError, OSError) as exc:
        # DatasetGenerationError wraps the parser's own message (pyarrow's "JSON parse error: ... in row 1").
        reason = (str(exc.__cause__ or exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{source}: not a readable {builder} file: {reason}") from None


def _read_hub(datasets, name: str, spec: HubDataset, split: str):
    config = f", config {spec.config}" if spec.config else ""
    offline = (
        f"download the {split} split of {spec.hub_id}{config} (a parquet file) on a machine that can reach the "
        "hub and pass it with --source FILE"
    )
    if not datasets.config.HF_HUB_OFFLINE and (reason := hub.unreachable()):
        raise UserError(f"cannot reach the Hugging Face hub ({reason}): {offline}")
    try:
        return datasets.load_dataset(spec.hub_id, spec.config, split=split)
    except ConnectionError as exc:  # offline mode with nothing cached, or the hub went away mid-way
        raise UserError(f"cannot fetch {name} from the Hugging Face hub ({exc}): {offline}") from None
    except datasets.exceptions.DatasetNotFoundError as exc:  # gated, private, or gone
        raise UserError(f"{name}: {exc}") from None
