"""`runner data fetch`, offline, from a local file in the layout the hub serves (parquet, GEM columns)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.datasets import load_dataset


@pytest.fixture
def wikilingua_parquet(tmp_path):
    n = 40
    table = pa.table(
        {
            "gem_id": [f"wiki_lingua_english_en-test-{i}" for i in range(n)],
            "source_language": ["en"] * n,
            "target_language": ["en"] * n,
            "source": [f"Step {i}. Do the thing number {i} carefully. Then check it twice." for i in range(n)],
            "target": [f"Do thing {i} and check it." for i in range(n)],
            "references": [[f"Do thing {i} and check it."] for i in range(n)],
        }
    )
    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(table, path)
    return path


def fetch(source, out, seed):
    result = CliRunner().invoke(
        cli,
        ["data", "fetch", "wikilingua", "--n", "7", "--seed", str(seed), "--source", str(source), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    return out / f"wikilingua-test-n7-s{seed}.jsonl"


def test_fixed_sample_is_reproducible_and_hashed(tmp_path, wikilingua_parquet):
    a = fetch(wikilingua_parquet, tmp_path / "a", seed=3)
    b = fetch(wikilingua_parquet, tmp_path / "b", seed=3)
    c = fetch(wikilingua_parquet, tmp_path / "c", seed=4)
    assert a.read_bytes() == b.read_bytes()
    ds = load_dataset(a)
    assert len(ds) == 7 and ds.documents[0].id.startswith("wiki_lingua_english_en-test-")
    assert load_dataset(c).sha256 != ds.sha256
    manifest = json.loads(a.with_suffix(".manifest.json").read_text())
    assert manifest["sha256"] == ds.sha256
    assert (manifest["n"], manifest["seed"], manifest["split"]) == (7, 3, "test")


def test_too_many_documents_is_a_clear_error(tmp_path, wikilingua_parquet):
    result = CliRunner().invoke(
        cli, ["data", "fetch", "wikilingua", "--n", "400", "--source", str(wikilingua_parquet), "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "has 40 records; --n 400 is more than that" in str(result.exception)


def test_unknown_dataset_suggests_names(tmp_path):
    result = CliRunner().invoke(cli, ["data", "fetch", "wikilingu", "--out", str(tmp_path)])
    assert "did you mean wikilingua" in str(result.exception)
