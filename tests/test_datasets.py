"""Dataset loading: field detection, mapping, hashing and the bundled sample."""

from __future__ import annotations

import json

import pytest

from runner.contract.datasets import DatasetError, load_dataset
from runner.paths import SAMPLE_DATASET


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_bundled_sample_is_the_study_shape():
    ds = load_dataset(SAMPLE_DATASET)
    assert len(ds) >= 20
    words = [len(d.text.split()) for d in ds.documents]
    # ~500 Llama tokens per document, the original study's average, is about 380 English words.
    assert 340 <= sum(words) / len(words) <= 440
    assert all(d.references and len(d.references[0].split()) >= 20 for d in ds.documents)


@pytest.mark.parametrize(
    ("text", "summary"),
    [("article", "highlights"), ("text", "target"), ("source", "summary"), ("document", "abstract")],
)
def test_common_field_names_are_detected(tmp_path, text, summary):
    ds = load_dataset(write_jsonl(tmp_path / "d.jsonl", [{text: "Body one.", summary: "Sum one."}]))
    assert (ds.text_field, ds.summary_field) == (text, summary)
    assert ds.documents[0].id == "line-1"


def test_explicit_fields_and_multiple_references(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"uid": "a", "body": "Text.", "refs": ["One.", "Two."]}])
    ds = load_dataset(path, text_field="body", summary_field="refs", id_field="uid")
    assert ds.documents[0].references == ("One.", "Two.")
    assert ds.documents[0].id == "a"


def test_hash_covers_content_not_formatting(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "document": "Text.", "summary": "S."}])
    b = tmp_path / "b.jsonl"
    b.write_text('{"summary":"S.",   "document":"Text.","id":"1"}\n\n')
    c = write_jsonl(tmp_path / "c.jsonl", [{"id": "1", "article": "Text.", "highlights": "S."}])
    d = write_jsonl(tmp_path / "d.jsonl", [{"id": "1", "document": "Text!", "summary": "S."}])
    assert load_dataset(a).sha256 == load_dataset(b).sha256 == load_dataset(c).sha256
    assert load_dataset(a).sha256 != load_dataset(d).sha256


def test_limit_streams_and_changes_the_hash():
    full, first = load_dataset(SAMPLE_DATASET), load_dataset(SAMPLE_DATASET, limit=3)
    assert [d.id for d in first.documents] == [d.id for d in full.documents[:3]]
    assert first.sha256 != full.sha256


def test_unknown_explicit_field_names_the_fields(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"document": "x", "summary": "y"}])
    with pytest.raises(DatasetError, match=r"text field 'body' not in the first record \(fields: document, summary\)"):
        load_dataset(path, text_field="body")


def test_data_inspect_prints_its_result_on_stdout(cli):
    """What `data inspect` finds is its result: stdout, whole (the hash is what a script keeps)."""
    proc = cli(["data", "inspect", str(SAMPLE_DATASET)])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert f"sha256: {load_dataset(SAMPLE_DATASET).sha256}\n" in proc.stdout
    assert f"{SAMPLE_DATASET}: 24 documents" in proc.stdout


def test_data_inspect_with_limit_gives_the_hash_a_limited_run_records(cli):
    """`launch --limit 6` records the hash of the first 6 documents; `data inspect --limit 6` reproduces it."""
    proc = cli(["data", "inspect", str(SAMPLE_DATASET), "--limit", "6"])
    assert proc.returncode == 0, proc.stderr
    assert f"sha256: {load_dataset(SAMPLE_DATASET, limit=6).sha256}\n" in proc.stdout
    assert load_dataset(SAMPLE_DATASET, limit=6).sha256 != load_dataset(SAMPLE_DATASET).sha256
    assert f"{SAMPLE_DATASET}: 6 documents (the first 6)" in proc.stdout
    one = cli(["data", "inspect", str(SAMPLE_DATASET), "--limit", "1"])
    assert f"{SAMPLE_DATASET}: 1 document (the first 1)" in one.stdout


def test_data_inspect_with_a_limit_past_the_end_says_it_read_all(cli):
    proc = cli(["data", "inspect", str(SAMPLE_DATASET), "--limit", "100"])
    assert proc.returncode == 0, proc.stderr
    assert f"{SAMPLE_DATASET}: 24 documents (all 24; --limit 100)\n" in proc.stdout
    assert f"sha256: {load_dataset(SAMPLE_DATASET).sha256}\n" in proc.stdout


def test_a_pretty_printed_json_array_is_named_with_its_conversion(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"id": "a", "document": "x", "summary": "y"}], indent=2) + "\n")
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert "d.json:1: malformed JSON" in str(info.value)
    assert "looks like a JSON array, not JSON Lines" in str(info.value) and "jq -c '.[]' FILE" in str(info.value)


def test_a_truncated_line_is_reported_where_it_stops(tmp_path):
    path = tmp_path / "d.jsonl"
    line = '{"id": "a", "document": "some text here", "summ'
    path.write_text(line + "\n")
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    said = str(info.value)
    assert "d.jsonl:1: malformed JSON (Unterminated string starting at column 43)" in said
    assert "ends before its JSON value does" in said


def test_a_line_missing_its_closing_brace_points_past_its_end(tmp_path):
    path = tmp_path / "d.jsonl"
    line = '{"id": "a", "document": "x", "summary": "y"'
    path.write_text(line + "\n")
    with pytest.raises(DatasetError, match=rf"column {len(line) + 1}\)"):
        load_dataset(path)


def test_each_document_has_its_own_hash_inside_the_dataset_hash(tmp_path):
    a = load_dataset(write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "document": "T.", "summary": "S."}]))
    b = load_dataset(write_jsonl(tmp_path / "b.jsonl", [{"id": "1", "document": "T!", "summary": "S."}]))
    assert len(a.documents[0].sha256) == 64 and a.documents[0].sha256 != b.documents[0].sha256
