"""`runner data fetch`, offline, from a local file in the layout the hub serves (parquet, GEM columns)."""

from __future__ import annotations

import json
import socket
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.contract.datasets import load_dataset


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
    assert "has 40 records; --n 400 is more than that: give --n 40 or less" in str(result.exception)


def test_unknown_dataset_suggests_names(tmp_path):
    result = CliRunner().invoke(cli, ["data", "fetch", "wikilingu", "--out", str(tmp_path)])
    assert "did you mean wikilingua" in str(result.exception)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("bad.jsonl", b'{"document": "a", "summary": "x"}\n{bad\n', "not a readable json file: JSON parse error"),
        ("empty.jsonl", b"", "is empty"),
        ("bad.parquet", b"not a parquet file at all", "not a readable parquet file: Parquet magic bytes not found"),
    ],
)
def test_unreadable_source_is_one_error_line(cli, tmp_path, name, content, says):
    source = tmp_path / name
    source.write_bytes(content)
    proc = cli(["data", "fetch", "xsum", "--n", "3", "--source", str(source), "--out", str(tmp_path / "out")])
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {source}") and says in errors[0]
    assert not (tmp_path / "out").exists()


def test_unreachable_hub_fails_fast_and_points_to_source(cli, tmp_path):
    """Offline, `datasets` retries for half a minute and ends in a traceback; sumbench says what to do at once."""
    with socket.socket() as s:  # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}
    env["HF_DATASETS_OFFLINE"] = "0"
    start = time.monotonic()
    proc = cli(["data", "fetch", "wikilingua", "--n", "2", "--out", str(tmp_path / "out")], env=env)
    assert time.monotonic() - start < 20
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith(f"error: cannot reach the Hugging Face hub (http://127.0.0.1:{port}")
    assert "GEM/wiki_lingua" in proc.stderr and "--source FILE" in proc.stderr


def test_offline_mode_without_a_cached_copy_points_to_source(cli, tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = cli(["data", "fetch", "wikilingua", "--n", "2", "--out", str(tmp_path / "out")], env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: cannot fetch wikilingua from the Hugging Face hub")
    assert "--source FILE" in proc.stderr
