"""Fixed samples of public summarization datasets, fetched with the ``datasets`` library.

A sample is defined by (dataset, split, n, seed): the same four give the same documents, written as
JSONL with a manifest that records the source and the content hash, so every cell of a matrix runs
exactly the same documents.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from runner.datasets import load_dataset as load_jsonl
from runner.errors import UserError, unknown_name


@dataclass(frozen=True)
class HubDataset:
    hub_id: str
    config: str | None
    split: str
    text: str
    summary: str
    id: str | None


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
    if source:
        builder = "parquet" if source.endswith(".parquet") else "json"
        ds = datasets.load_dataset(builder, data_files={split: source}, split=split)
    else:
        ds = datasets.load_dataset(spec.hub_id, spec.config, split=split)
    for field in (spec.text, spec.summary):
        if field not in ds.column_names:
            raise UserError(f"{name}: expected a {field!r} column, found {', '.join(ds.column_names)}")
    if n > len(ds):
        raise UserError(f"{name} {split} has {len(ds)} records; --n {n} is more than that")
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
