"""Crash safety and resume: kill the worker, tear its last record, interrupt the host; then resume, and
check that every document is there exactly once with the output an uninterrupted run gives it.

Why outputs can be compared at all: greedy decoding of the same model on the same CPU, with the same
thread count (conftest pins OMP_NUM_THREADS=1 for the test process and every worker it starts), is
deterministic for a given batch. A resumed run also batches the same way as an uninterrupted one: pending
documents are sorted longest first, and a run stopped after whole batches leaves exactly the tail of that
order, so each resumed batch holds the same documents, padded the same way, as in the reference run. The
tests compare per document and also check the batch composition, so a change that breaks this shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import child_pids, read_docs, read_result, run_cli, short_records, wait_for, write_jsonl

from runner.contract import rundir
from runner.launching import LaunchRequest, prepare
from runner.paths import REPO_ROOT

ALL_IDS = [f"doc-{i:02d}" for i in range(12)]
# A prompt that ends with the document, so the tiny model's summaries differ per document (see conftest).
TEMPLATE = "{document}"


def launch_args(model: Path, data: Path, results: Path, run_id: str) -> list[str]:
    return [
        "launch", "--model", str(model), "--data", str(data), "--batch-size", "2", "--max-new-tokens", "8",
        "--prompt-template", TEMPLATE, "--results", str(results), "--run-id", run_id,
    ]  # fmt: skip


def launch_past_first_batch(tiny_model, data, results: Path, run_id: str) -> tuple[subprocess.Popen, Path, int]:
    """``runner launch`` slowed to a second a batch, once its first batch is on disk: the host, the run
    folder and the worker's pid. The host is killed if it never gets that far."""
    host = start_launch(launch_args(tiny_model, data, results, run_id), {"SUMBENCH_INJECT_DELAY_S": "1"})
    run_dir = results / run_id
    try:
        wait_for(lambda: len(read_docs(run_dir)) >= 2, timeout=180, what="the first batch")
        (worker,) = child_pids(host.pid)
    except BaseException:
        host.kill()
        raise
    return host, run_dir, worker


def start_launch(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """``runner launch`` in its own session (process group), so a test can signal it like a terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def by_id(run_dir: Path) -> dict[str, dict]:
    records = read_docs(run_dir)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), f"a document recorded twice: {sorted(ids)}"
    return {r["id"]: r for r in records}


def batches(run_dir: Path) -> list[list[str]]:
    """Document ids per batch number, in order: the batch composition."""
    grouped: dict[int, list[str]] = {}
    for r in read_docs(run_dir):
        grouped.setdefault(r["batch"], []).append(r["id"])
    return [sorted(grouped[b]) for b in sorted(grouped)]


def same_outputs(run_dir: Path, reference: Path) -> None:
    got, want = by_id(run_dir), by_id(reference)
    assert sorted(got) == sorted(want) == ALL_IDS
    for doc_id, record in want.items():
        for key in ("summary", "output_tokens", "input_tokens", "batch_size"):
            assert got[doc_id][key] == record[key], f"{doc_id}: {key} differs from the uninterrupted run"
    assert batches(run_dir) == batches(reference)


@pytest.fixture
def reference(make_run_dir, run_worker) -> Path:
    """An uninterrupted run of the cell the tests break and resume."""
    run_dir = make_run_dir(prompt_template=TEMPLATE, run_id="reference")
    assert run_worker(run_dir) == 0
    assert len({r["summary"] for r in read_docs(run_dir)}) > 3, "summaries differ per document"
    return run_dir


def test_sigkill_mid_run_then_resume(tiny_model, small_dataset, tmp_path, reference):
    """kill -9 the worker after its first batch: the host finishes the run as partial/Killed from
    docs.jsonl; `runner launch --resume` then completes it, and the documents match the uninterrupted run."""
    host, run_dir, worker = launch_past_first_batch(tiny_model, small_dataset, tmp_path / "results", "killed")
    try:
        os.kill(worker, signal.SIGKILL)
        out, err = host.communicate(timeout=60)
    finally:
        host.kill()
    assert host.returncode == 3, err[-2000:]
    killed = read_result(run_dir)
    assert (killed["status"], killed["error"]["error_class"]) == ("partial", "Killed")
    kept = by_id(run_dir)
    assert 2 <= len(kept) < 12 and killed["metrics"]["documents"] == len(kept)
    assert "Traceback" not in out + err

    proc = run_cli(["launch", "--resume", str(run_dir)])

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_result(run_dir)["status"] == "completed"
    assert read_result(run_dir)["metrics"]["documents"] == 12
    resumed = f"resumed: {len(kept)} documents were already done and are kept"
    assert f"note: {resumed}" in proc.stderr + proc.stdout  # said as it starts, not only in worker.log
    assert any(n.startswith(resumed) for n in read_result(run_dir)["notes"])  # and recorded
    same_outputs(run_dir, reference)
    for doc_id, record in kept.items():
        assert by_id(run_dir)[doc_id] == record, "records from before the kill are kept as they were"
    previous = list(run_dir.glob("result.previous-*.json"))
    assert len(previous) == 1 and '"Killed"' in previous[0].read_text(), "the killed attempt's result is kept"


def test_torn_last_line_is_repaired_on_resume(make_run_dir, run_worker, reference):
    """A crash in the middle of writing leaves half a record: resuming cuts it off and runs that document
    again, so it is recorded once, whole."""
    run_dir = make_run_dir(prompt_template=TEMPLATE, run_id="torn")
    lines = (reference / "docs.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "docs.jsonl").write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2])

    assert run_worker(run_dir) == 0

    same_outputs(run_dir, reference)
    assert "torn last line" in (run_dir / "worker.log").read_text()
    assert read_result(run_dir)["metrics"]["documents"] == 12


def test_interrupting_launch_leaves_a_partial_result(tiny_model, small_dataset, tmp_path):
    """Ctrl-C in a terminal reaches the host and the worker together (SIGINT to the process group);
    SIGTERM from a scheduler or `kill` reaches the host only. Either way the worker flushes, writes
    result.json as partial/Interrupted with what it finished, and stops; the host exits 130 without
    a traceback and leaves no worker running. (The two launches run side by side to halve the wait.)"""
    results = tmp_path / "results"
    ways = {"ctrl-c": (signal.SIGINT, True), "sigterm-to-host": (signal.SIGTERM, False)}
    hosts = {
        name: start_launch(launch_args(tiny_model, small_dataset, results, name), {"SUMBENCH_INJECT_DELAY_S": "1"})
        for name in ways
    }
    outputs, workers = {}, {}

    def signal_those_with_a_batch() -> bool:
        for name, (sig, to_group) in ways.items():
            if name not in workers and len(read_docs(results / name)) >= 2:
                workers[name] = child_pids(hosts[name].pid)
                if to_group:
                    os.killpg(hosts[name].pid, sig)
                else:
                    hosts[name].send_signal(sig)
        return len(workers) == len(ways)

    try:
        wait_for(signal_those_with_a_batch, timeout=180, what="a first batch from each launch")
        for name, host in hosts.items():
            outputs[name] = host.communicate(timeout=90)
    finally:
        for host in hosts.values():
            host.kill()
    for name, host in hosts.items():
        out, err = outputs[name]
        assert host.returncode == 130, f"{name}: {err[-2000:]}"  # a person's stop, not a partial failure
        run_dir = results / name
        result = read_result(run_dir)
        assert (result["status"], result["error"]["error_class"]) == ("partial", "Interrupted"), name
        assert "--resume" in result["error"]["message"]
        kept = by_id(run_dir)
        assert 2 <= len(kept) < 12 and result["metrics"]["documents"] == len(kept)
        assert "Traceback" not in out + err
        assert workers[name], f"{name}: the worker was found"
        for pid in workers[name]:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


def test_interrupt_before_the_first_document_is_resumable_not_failed(tiny_model, small_dataset, tmp_path, reference):
    """Ctrl-C before any document is done (here: the model loaded, the first batch not yet generated) is a
    person's stop like any later one: partial/Interrupted with nothing lost, exit 130, the report says it
    was interrupted, and --resume finishes the run as if it had never stopped."""
    results = tmp_path / "results"
    run_dir = results / "early"
    host = start_launch(launch_args(tiny_model, small_dataset, results, "early"), {"SUMBENCH_INJECT_DELAY_S": "60"})
    try:
        # docs.jsonl is opened right before the first batch, which the injected delay holds back.
        wait_for(lambda: (run_dir / "docs.jsonl").exists(), timeout=180, what="the worker to reach its first batch")
        assert child_pids(host.pid), "the worker runs"
        os.killpg(host.pid, signal.SIGINT)
        out, err = host.communicate(timeout=90)
    finally:
        host.kill()
    assert host.returncode == 130, err[-2000:]
    result = read_result(run_dir)
    assert (result["status"], result["error"]["error_class"]) == ("partial", "Interrupted")
    assert "--resume" in result["error"]["message"] and result["metrics"]["documents"] == 0
    assert read_docs(run_dir) == [] and "Traceback" not in out + err
    assert "partial (Interrupted: stopped by signal" in out

    from runner.report.build import build_report
    from runner.report.loading import find_runs

    report = build_report(find_runs([run_dir]), with_plots=False)
    failures = next(s for s in report.sections if s.kind == "failures")
    assert [(r["status"], r["error_class"], r["documents_done"]) for r in failures.table.rows] == [
        ("partial", "Interrupted", 0)
    ]
    assert any("1 run was interrupted (Ctrl-C or SIGTERM)" in p and "--resume" in p for p in failures.paragraphs)

    proc = run_cli(["launch", "--resume", str(run_dir)])

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_result(run_dir)["status"] == "completed"
    same_outputs(run_dir, reference)


def test_sigkill_of_host_and_worker_leaves_no_disk_reserve(tiny_model, small_dataset, tmp_path, reference):
    """kill -9 of the whole process group (host and worker together) gives nobody a chance to free the
    worker's disk reserve. The report skips the unfinished folder, --resume replaces the reserve, and the
    finished folder keeps none, even when the group is killed again the moment its result is written
    (the worker held there by fault injection). Report and compare read the folder as any other."""
    results = tmp_path / "results"  # beside the reference run
    host, run_dir, _ = launch_past_first_batch(tiny_model, small_dataset, results, "group-killed")
    try:
        os.killpg(host.pid, signal.SIGKILL)
        host.communicate(timeout=60)
    finally:
        host.kill()
    assert (run_dir / rundir.RESERVE).exists() and not (run_dir / rundir.RESULT).exists()
    report = run_cli(["report", str(results)])
    assert report.returncode == 0 and "group-killed: the run did not finish" in report.stderr + report.stdout

    resumed = start_launch(["launch", "--resume", str(run_dir)], {"SUMBENCH_INJECT_HOLD_AFTER_RESULT_S": "120"})
    try:
        wait_for(lambda: rundir.completed(run_dir), timeout=180, what="the resumed run's result")
        os.killpg(resumed.pid, signal.SIGKILL)
        resumed.communicate(timeout=60)
    finally:
        resumed.kill()

    assert not (run_dir / rundir.RESERVE).exists()
    assert read_result(run_dir)["metrics"]["documents"] == 12
    same_outputs(run_dir, reference)
    report = run_cli(["report", str(results)])
    assert report.returncode == 0, report.stderr[-2000:]
    assert "2 runs on cpu: 2 completed in 1 cell." in report.stdout and "skipped" not in report.stderr
    compare = run_cli(["compare", str(reference), str(run_dir)])
    assert compare.returncode == 0, compare.stderr[-2000:]


def test_resume_of_a_finished_run_adds_nothing(make_run_dir, run_worker):
    run_dir = make_run_dir()
    assert run_worker(run_dir) == 0
    first = read_docs(run_dir)
    assert run_worker(run_dir) == 0
    assert read_docs(run_dir) == first
    assert read_result(run_dir)["status"] == "completed" and read_result(run_dir)["metrics"]["documents"] == 12


def test_resume_after_the_dataset_changed_is_refused(make_run_dir, run_worker, small_dataset, monkeypatch):
    """Records of documents the dataset no longer has cannot be resumed into one result."""
    monkeypatch.setenv("SUMBENCH_INJECT_ERROR", "RuntimeError@1")
    run_dir = make_run_dir()
    assert run_worker(run_dir) == 3
    monkeypatch.delenv("SUMBENCH_INJECT_ERROR")
    write_jsonl(small_dataset, [dict(r, id=f"new-{i}") for i, r in enumerate(short_records(12))])

    run_worker(run_dir)

    result = read_result(run_dir)
    assert result["error"]["error_class"] == "DatasetError"
    assert "the dataset or --limit changed since this run started" in result["error"]["message"]
    assert len(read_docs(run_dir)) == 2, "nothing added, nothing lost"


# --- what the host refuses before starting a worker -----------------------------------------------------------


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stdout
    return lines[0]


def test_resume_refuses_records_damaged_in_the_middle(make_run_dir, reference):
    run_dir = make_run_dir(prompt_template=TEMPLATE)
    lines = (reference / "docs.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "docs.jsonl").write_text(lines[0] + "{not json\n" + lines[1])

    line = one_error_line(run_cli(["launch", "--resume", str(run_dir)]))

    assert f"{run_dir / 'docs.jsonl'}:2: corrupt record" in line and "delete that line" in line


def test_resume_refuses_a_folder_a_worker_holds(make_run_dir):
    run_dir = make_run_dir()
    with rundir.locked(run_dir):
        line = one_error_line(run_cli(["launch", "--resume", str(run_dir)]))
    assert "in use by a running worker" in line


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    line = one_error_line(run_cli(["launch", "--resume", str(tmp_path)]))
    assert "is not a sumbench run folder" in line


def test_same_run_id_with_other_settings_is_refused(make_run_dir, tiny_model, small_dataset, tmp_path):
    """Re-running into a run's folder resumes it, so it must be the same cell."""
    make_run_dir(run_id="cell", results=tmp_path / "r")
    proc = run_cli(
        ["launch", "--model", str(tiny_model), "--data", str(small_dataset), "--batch-size", "2",
         "--max-new-tokens", "16", "--results", str(tmp_path / "r"), "--run-id", "cell"]
    )  # fmt: skip
    line = one_error_line(proc)
    assert "max_new_tokens: 8 → 16" in line and "--run-id" in line and "--resume" in line


def test_same_run_id_with_the_same_settings_resumes(make_run_dir, tiny_model, small_dataset, tmp_path):
    run_dir = make_run_dir(run_id="cell", results=tmp_path / "r")
    req = LaunchRequest(
        model=str(tiny_model), data=str(small_dataset), batch_size=2, max_new_tokens=8,
        results=tmp_path / "r", run_id="cell",
    )  # fmt: skip
    prepared = prepare(req)
    assert prepared.run_dir == run_dir and prepared.config == rundir.read_config(run_dir)


def test_resume_refuses_options_that_describe_the_cell(make_run_dir):
    """--resume continues the folder's own config: options that would change the cell are refused, by
    name, rather than silently ignored."""
    run_dir = make_run_dir()
    before = (run_dir / "config.json").read_bytes()
    line = one_error_line(
        run_cli(["launch", "--resume", str(run_dir), "--batch-size", "4", "--scenario", "bf16",
                 "--model", "/nonexistent", "--max-new-tokens", "99", "--run-id", "other"])
    )  # fmt: skip
    assert f"--resume continues {run_dir} with the settings it started with" in line
    for option in ("--batch-size", "--scenario", "--model", "--max-new-tokens", "--run-id"):
        assert option in line
    assert "--timeout" not in line and "--verbose" not in line
    assert (run_dir / "config.json").read_bytes() == before and not (run_dir / "result.json").exists()


def test_resume_takes_timeout_and_verbose(make_run_dir):
    """How an attempt is run and watched may change between attempts."""
    run_dir = make_run_dir()
    proc = run_cli(["launch", "--resume", str(run_dir), "--timeout", "600", "--verbose"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_result(run_dir)["status"] == "completed" and len(read_docs(run_dir)) == 12
    assert "sumbench.worker: loaded" in proc.stdout + proc.stderr, "--verbose shows the worker's log lines"


def test_a_completed_run_is_not_run_again(make_run_dir, run_worker, tiny_model, small_dataset, tmp_path):
    """Launching into a completed run's folder (same --run-id, same settings) used to "resume" it and
    print its old numbers as a new result; it is refused, and so is --resume: there is nothing left to run,
    and its result.json stands as it was."""
    run_dir = make_run_dir(run_id="cell", results=tmp_path / "r")
    assert run_worker(run_dir) == 0
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}

    line = one_error_line(
        run_cli(["launch", "--model", str(tiny_model), "--data", str(small_dataset), "--batch-size", "2",
                 "--max-new-tokens", "8", "--results", str(tmp_path / "r"), "--run-id", "cell"])
    )  # fmt: skip
    assert f"{run_dir} already completed; use a new --run-id" in line
    line = one_error_line(run_cli(["launch", "--resume", str(run_dir)]))
    assert f"{run_dir} already completed: there is nothing to resume" in line and "--run-id" in line

    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_killing_the_host_is_recorded_as_host_gone(tiny_model, small_dataset, tmp_path, reference):
    """kill -9 of `runner launch` closes the pipe the worker reports on: the worker notices at its next
    event, records the run as partial/HostGone with every finished document (not a BrokenPipeError), exits
    without dying on the closed pipe itself, and --resume finishes the run."""
    host, run_dir, worker = launch_past_first_batch(tiny_model, small_dataset, tmp_path / "results", "orphan")
    try:
        host.kill()
        host.communicate(timeout=60)
        wait_for(lambda: (run_dir / "result.json").exists(), timeout=120, what="the worker's result")
        wait_for(lambda: _ended(worker), timeout=60, what="the worker to exit")
    finally:
        host.kill()
    result = read_result(run_dir)
    assert (result["status"], result["error"]["error_class"]) == ("partial", "HostGone")
    message = result["error"]["message"]
    assert "the host process that started this run went away" in message and "--resume" in message
    kept = by_id(run_dir)
    assert 2 <= len(kept) < 12 and result["metrics"]["documents"] == len(kept)
    assert "HostGone" in (run_dir / "worker.log").read_text()

    proc = run_cli(["launch", "--resume", str(run_dir)])

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_result(run_dir)["status"] == "completed"
    same_outputs(run_dir, reference)


def _ended(pid: int) -> bool:
    """Whether ``pid`` exited: gone, or a zombie nobody reaps (an orphan's parent here may not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")
