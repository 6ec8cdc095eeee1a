"""A resumed run continues the same work: the dataset, each kept document and the model are checked
against what the run started with, and any difference is refused by name before a worker starts."""

from __future__ import annotations

import json
import shutil

from conftest import read_docs, read_result, run_cli, short_records, stopped_after_one_batch, write_jsonl

from runner.contract import rundir
from runner.fingerprint import HEAD_BYTES, SMALL_FILE, model_fingerprint


def refused(run_dir) -> str:
    proc = run_cli(["launch", "--resume", str(run_dir)])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def test_a_finished_document_edited_in_the_dataset_is_refused_by_name(
    make_run_dir, run_worker, small_dataset, monkeypatch
):
    run_dir = stopped_after_one_batch(make_run_dir, run_worker, monkeypatch)
    kept = read_docs(run_dir)
    assert all(len(r["doc_sha256"]) == 64 for r in kept), "every record carries its document's hash"
    records = short_records(12)
    edited = next(i for i, r in enumerate(records) if r["id"] == kept[0]["id"])
    records[edited]["document"] += " One more sentence."
    write_jsonl(small_dataset, records)

    line = refused(run_dir)

    assert f"cannot resume {run_dir}: dataset {small_dataset} changed since the run started" in line
    assert f"1 of the 2 finished documents differ or are gone (e.g. {kept[0]['id']!r})" in line
    assert read_docs(run_dir) == kept and not (run_dir / "result.json").read_text().count('"completed"')


def test_a_pending_document_edited_is_refused_too(make_run_dir, run_worker, small_dataset, monkeypatch):
    run_dir = stopped_after_one_batch(make_run_dir, run_worker, monkeypatch)
    kept_ids = {r["id"] for r in read_docs(run_dir)}
    records = short_records(12)
    pending = next(r for r in records if r["id"] not in kept_ids)
    pending["summary"] = "Another reference."
    write_jsonl(small_dataset, records)

    assert "the finished documents are unchanged, others differ" in refused(run_dir)


def test_a_changed_model_is_refused(make_run_dir, run_worker, tiny_model, tmp_path, monkeypatch):
    model = shutil.copytree(tiny_model, tmp_path / "model")
    run_dir = stopped_after_one_batch(make_run_dir, run_worker, monkeypatch, model=str(model))
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-6}))

    line = refused(run_dir)

    assert f"model {model} has other files, sizes or config than when the run started" in line


def test_the_same_inputs_resume_and_the_result_records_the_model_fingerprint(
    make_run_dir, run_worker, tiny_model, monkeypatch
):
    run_dir = stopped_after_one_batch(make_run_dir, run_worker, monkeypatch)
    proc = run_cli(["launch", "--resume", str(run_dir)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = read_result(run_dir)["config"]
    assert config["model_fingerprint"] == model_fingerprint(str(tiny_model)) and config["dataset_sha256"]


def test_relaunching_into_the_folder_checks_the_inputs_too(
    make_run_dir, run_worker, tiny_model, small_dataset, tmp_path, monkeypatch
):
    run_dir = stopped_after_one_batch(make_run_dir, run_worker, monkeypatch, run_id="cell", results=tmp_path / "r")
    write_jsonl(small_dataset, [dict(r, summary="Other.") for r in short_records(12)])
    proc = run_cli(
        ["launch", "--model", str(tiny_model), "--data", str(small_dataset), "--batch-size", "2",
         "--max-new-tokens", "8", "--results", str(tmp_path / "r"), "--run-id", "cell"]
    )  # fmt: skip
    assert proc.returncode == 2 and f"cannot resume {run_dir}: dataset" in proc.stderr


def test_a_folder_from_before_the_hashes_resumes_unchecked(make_run_dir, run_worker, small_dataset, monkeypatch):
    run_dir = stopped_after_one_batch(make_run_dir, run_worker, monkeypatch)
    config = rundir.read_config(run_dir)
    rundir.write_config(run_dir, config.model_copy(update={"dataset_sha256": None, "model_fingerprint": None}))
    assert run_cli(["launch", "--resume", str(run_dir)]).returncode == 0


def test_the_fingerprint_reads_names_sizes_small_files_and_the_head_of_large_ones(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    shard = model / "model.safetensors"
    shard.write_bytes(b"h" * HEAD_BYTES + b"\0" * (SMALL_FILE + 1))
    (model / ".cache").mkdir()
    (model / ".cache" / "download.lock").write_text("x")
    first = model_fingerprint(str(model))
    assert first.startswith("sha256:") and model_fingerprint(str(tmp_path / "absent")) is None

    (model / ".cache" / "download.lock").write_text("rewritten by a download tool")
    with shard.open("r+b") as f:  # past the head of a large file: not read, by design
        f.seek(HEAD_BYTES + 10)
        f.write(b"x")
    assert model_fingerprint(str(model)) == first

    with shard.open("r+b") as f:  # the header of a safetensors file is in its head
        f.write(b"H")
    assert model_fingerprint(str(model)) != first
    shard.write_bytes(b"h" * HEAD_BYTES + b"\0" * SMALL_FILE)  # one byte shorter
    assert model_fingerprint(str(model)) != first


def test_a_config_json_edited_between_attempts_is_refused(make_run_dir, run_worker, monkeypatch):
    """The last attempt's result records the config it ran; config.json edited by hand since would resume
    the run under other settings than its finished documents had."""
    run_dir = stopped_after_one_batch(make_run_dir, run_worker, monkeypatch)
    config = rundir.read_config(run_dir)
    rundir.write_config(run_dir, config.model_copy(update={"max_new_tokens": 16}))

    line = refused(run_dir)

    assert f"cannot resume {run_dir}: config.json was edited since the last attempt (max_new_tokens: 8 → 16)" in line
