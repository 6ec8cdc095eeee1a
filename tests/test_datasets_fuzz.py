"""Property-based: whatever a dataset file holds, loading it gives a valid ``Dataset`` or a ``DatasetError``
with a one-line message, never any other exception (which the CLI would show as a traceback).

Four generators reach further into the loader each: raw bytes; lines that are mostly JSON; arbitrary
JSON objects; and records built from the field names the loader looks for, with values of every type.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.contract.datasets import ID_FIELDS, SUMMARY_FIELDS, TEXT_FIELDS, Dataset, DatasetError, load_dataset

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELD_NAMES = st.sampled_from((*TEXT_FIELDS[:3], *SUMMARY_FIELDS[:3], *ID_FIELDS[:2], "body", ""))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)
# Values a text, summary or id field might hold: good ones, and each kind of bad one.
VALUES = st.one_of(
    st.text(min_size=1),
    st.sampled_from(["", "   ", "\ud800", "ok\udfff", "a\nb", "x" * 300]),
    st.lists(st.text(), max_size=3),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
RECORDS = st.lists(st.dictionaries(FIELD_NAMES, VALUES, max_size=5), max_size=6)
OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "text_field": st.none() | FIELD_NAMES | st.text(max_size=5),
        "summary_field": st.none() | FIELD_NAMES | st.text(max_size=5),
        "id_field": st.none() | FIELD_NAMES,
        "limit": st.none() | st.integers(1, 4),
        "require_summary": st.booleans(),
    },
)


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "data.jsonl"


def check(path: Path, **options) -> Dataset | None:
    """Load ``path``; a DatasetError must be one non-empty line, a Dataset must hold what it promises."""
    try:
        ds = load_dataset(path, **options)
    except DatasetError as exc:
        message = str(exc)
        assert message.strip(), "an error says something"
        assert len(message.splitlines()) == 1, f"not one line: {message!r}"
        assert len(message) < 1000, "short enough to read"
        return None
    assert ds.documents, "a dataset is never empty"
    ids = [d.id for d in ds.documents]
    assert len(set(ids)) == len(ids)
    for doc in ds.documents:
        assert isinstance(doc.text, str) and doc.text.strip()
        doc.text.encode("utf-8")  # the worker's tokenizer and docs.jsonl need valid text
        doc.id.encode("utf-8")
        assert all(isinstance(r, str) and r.strip() for r in doc.references)
    if options.get("require_summary", True):
        assert all(doc.references for doc in ds.documents)
    if options.get("limit"):
        assert len(ds) <= options["limit"]
    assert len(ds.sha256) == 64
    return ds


@FUZZ
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes(path, data):
    path.write_bytes(data)
    check(path)


@FUZZ
@given(
    lines=st.lists(
        st.one_of(
            JSON.map(json.dumps),
            st.text(max_size=40),
            st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
            st.sampled_from(["", "{", "[" * 5000, "1" * 5000, '{"a": 1}{"b": 2}', "\ufeff{}", "NaN"]),
        ),
        max_size=6,
    ),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_lines_that_are_mostly_json(path, lines, newline):
    path.write_bytes(newline.join(lines).encode("utf-8", "surrogatepass"))
    check(path)


@settings(FUZZ, max_examples=80)
@given(records=st.lists(st.dictionaries(st.text(max_size=10), JSON, max_size=4), max_size=4), options=OPTIONS)
def test_arbitrary_json_objects(path, records, options):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    check(path, **options)


@FUZZ
@given(records=RECORDS, options=OPTIONS)
def test_records_of_known_fields_with_any_values(path, records, options):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    check(path, **options)


def test_valid_records_always_load(path):
    """The generators above mostly make errors; the same checks pass on records that are all good."""
    path.write_text("".join(json.dumps({"id": i, "text": f"doc {i}", "target": ["s"]}) + "\n" for i in range(5)))
    ds = check(path)
    assert ds is not None and [d.id for d in ds.documents] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize("garbage", ["random-bytes", "model-weights"])
def test_data_inspect_on_garbage_is_one_line(tmp_path, tiny_model, garbage):
    """`runner data inspect` on a file that is no dataset at all: exit 2 and one line, in a real process."""
    if garbage == "random-bytes":
        rng = random.Random(5)
        target = tmp_path / "garbage.jsonl"
        target.write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    else:
        target = next(tiny_model.glob("*.safetensors"))
    proc = run_cli(["data", "inspect", str(target)])
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith(f"error: {target}:")
    assert "Traceback" not in proc.stdout + proc.stderr


def test_field_list_keeps_messages_on_one_line(path):
    """A file whose first record has a thousand oddly named fields still gets a short, one-line answer."""
    record = {f"{c}\n{i}": i for i, c in enumerate(string.ascii_letters * 20)}
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(DatasetError, match=r"more\)") as info:
        load_dataset(path)
    assert len(str(info.value).splitlines()) == 1 and len(str(info.value)) < 1000
