"""Failures are results: every way a run can fail ends in a ``result.json`` with a status, an error class
and a message, a traceback in ``error.log``, and every document finished before the failure kept.

Most runs here are the real worker on the tiny model, in the test process (``run_worker``); the ones
whose point is what a person sees (exit code, console) go through ``runner launch`` in a subprocess.
"""

from __future__ import annotations

import errno
import os
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import read_docs, read_result, run_cli, short_records, wait_for, write_jsonl

from runner.contract import events, rundir
from runner.contract.schema import Batching, DeviceInfo, DocRecord, Environment, RunConfig, RunResult
from runner.executors import ExitInfo
from runner.launching import LaunchRequest, build_config, finish_dead_run
from runner.worker.run import classify, describe


def ids(run_dir: Path) -> list[str]:
    return [r["id"] for r in read_docs(run_dir)]


def assert_failure_recorded(run_dir: Path, status: str, error_class: str) -> dict:
    """The common shape of a failed run's folder; returns result.json."""
    result = read_result(run_dir)
    assert result["status"] == status
    assert result["error"]["error_class"] == error_class
    assert result["error"]["message"].strip() and "\n" not in result["error"]["message"]
    assert result["metrics"]["documents"] == len(read_docs(run_dir))
    assert len(set(ids(run_dir))) == len(ids(run_dir)), "no document twice"
    assert not (run_dir / rundir.RESERVE).exists(), "the disk reserve is given back"
    return result


# --- out of memory -----------------------------------------------------------------------------------------


def test_oom_with_auto_batch_size_halves_and_loses_nothing(make_run_dir, run_worker, monkeypatch):
    """12 documents, auto batch size capped at 8, every generate call of 4 or more prompts out of memory:
    the worker tries 8 (OOM), 4 (OOM), then runs all 12 at 2. The documents of a failed call are retried,
    not dropped and not recorded twice, and both events are in the result."""
    monkeypatch.setenv("SUMBENCH_INJECT_OOM_AT_BATCH", "4")
    run_dir = make_run_dir(batch_size="auto", max_batch_size=8)

    assert run_worker(run_dir) == 0

    result = read_result(run_dir)
    assert result["status"] == "completed" and result["error"] is None
    batching = result["batching"]
    assert (batching["requested"], batching["planned_max"], batching["final"]) == ("auto", 8, 2)
    events = batching["oom_events"]
    assert [e["batch_size"] for e in events] == [8, 4]
    # Longest first: the first call held the 8 longest documents, the retry the first 4 of those.
    records = read_docs(run_dir)
    longest_first = [r["id"] for r in records]
    assert events[0]["documents"] == longest_first[:8]
    assert events[1]["documents"] == longest_first[:4]
    assert all("out of memory" in e["message"] for e in events)
    assert sorted(longest_first) == [f"doc-{i:02d}" for i in range(12)]
    assert [r["batch_size"] for r in records] == [2] * 12
    assert sorted({r["batch"] for r in records}) == list(range(6)), "failed calls do not use up batch numbers"
    assert result["metrics"]["documents"] == 12
    assert [b["size"] for b in result["metrics"]["batches"]] == [2] * 6
    assert any("SUMBENCH_INJECT_OOM_AT_BATCH=4" in n for n in result["notes"]), "injected faults are declared"


@pytest.mark.parametrize("warmup", ["full", "none"])
def test_a_call_that_ran_out_of_memory_is_in_end_to_end_time(make_run_dir, run_worker, monkeypatch, warmup):
    """End to end leaves nothing out: the failed calls' time is in it, and each event says how long its
    call ran and whether it was the warm-up (with --warmup full, a new batch size's first call is)."""
    monkeypatch.setenv("SUMBENCH_INJECT_OOM_AT_BATCH", "4")
    monkeypatch.setenv("SUMBENCH_INJECT_DELAY_S", "0.3")  # every call, the failing ones too, takes 0.3 s more
    run_dir = make_run_dir(batch_size="auto", max_batch_size=8, warmup=warmup)

    assert run_worker(run_dir) == 0

    result = read_result(run_dir)
    m, events = result["metrics"], result["batching"]["oom_events"]
    assert [(e["batch_size"], e["in_warmup"]) for e in events] == [(8, warmup == "full"), (4, warmup == "full")]
    assert all(e["seconds"] >= 0.3 for e in events)
    parts = m["model_load_seconds"] + (m["warmup_seconds"] or 0.0) + m["generate_seconds"]
    assert m["end_to_end_seconds"] == pytest.approx(parts + sum(e["seconds"] for e in events), abs=0.002)
    assert m["end_to_end_seconds"] < m["wall_seconds"]


def test_oom_even_at_batch_size_one_fails_with_what_was_tried(make_run_dir, run_worker, monkeypatch):
    """Halving stops at 1: when even one prompt does not fit, the run fails, listing the sizes tried."""
    monkeypatch.setenv("SUMBENCH_INJECT_OOM_AT_BATCH", "1")
    run_dir = make_run_dir(batch_size="auto", max_batch_size=4)

    assert run_worker(run_dir) == 1

    result = assert_failure_recorded(run_dir, "failed", "OutOfMemoryError")
    assert [e["batch_size"] for e in result["batching"]["oom_events"]] == [4, 2]
    assert result["batching"]["final"] == 1
    assert "even at batch size 1" in result["error"]["message"]


@pytest.mark.parametrize(
    ("requested", "reached", "says"),
    [(4, None, "the model does not fit"), (4, 4, "use a smaller --batch-size"), ("auto", 1, "even at batch size 1")],
)
def test_out_of_memory_message_says_what_to_change(make_run_dir, requested, reached, says):
    config = rundir.read_config(make_run_dir(batch_size=requested, max_batch_size=8))
    oom = type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert says in describe(oom, _Backend(), config, reached).message


def test_oom_with_fixed_batch_size_fails_cleanly(tiny_model, small_dataset, tmp_path):
    """A fixed batch size is a measurement of that batch size, so out-of-memory is not retried smaller:
    the run fails with OutOfMemoryError, the console says so in a line (no traceback), the exit code is
    non-zero, and the traceback is in error.log."""
    proc = run_cli(
        [
            "launch",
            "--model",
            str(tiny_model),
            "--data",
            str(small_dataset),
            "--batch-size",
            "4",
            "--max-new-tokens",
            "8",
            "--results",
            str(tmp_path),
            "--run-id",
            "oom",
        ],
        env={"SUMBENCH_INJECT_OOM_AT_BATCH": "4"},
    )
    run_dir = tmp_path / "oom"
    assert proc.returncode == 1, proc.stderr[-2000:]
    result = assert_failure_recorded(run_dir, "failed", "OutOfMemoryError")
    assert "--batch-size" in result["error"]["message"], "the message says what to change"
    assert result["metrics"]["documents"] == 0 and result["batching"]["oom_events"] == []
    console = proc.stdout + proc.stderr
    assert "Traceback" not in console
    assert "OutOfMemoryError" in console
    assert "Traceback" in (run_dir / "error.log").read_text()
    assert "OutOfMemoryError" in (run_dir / "error.log").read_text()


def test_auto_batch_size_on_a_cpu_is_capped_and_says_so(make_run_dir, run_worker, tiny_model, tmp_path):
    """A CPU has no memory plan: --batch-size auto once put the whole dataset in one batch, which leaves
    one latency sample and nothing for `runner compare` to test. It now starts at the CPU default (8), and
    at no more than half the documents, so there are always two batches; the config and a note say so."""
    forty = write_jsonl(tmp_path / "forty.jsonl", short_records(40))
    for data, limit, cap in [(forty, None, 8), (forty, 12, 6), (forty, 3, 2), (forty, 1, 1)]:
        config, notes = build_config(
            LaunchRequest(model=str(tiny_model), data=str(data), batch_size="auto", limit=limit, run_id="x")
        )
        assert config.max_batch_size == cap, limit
        assert any(f"batches of at most {cap} documents" in n and "CPU default is 8" in n for n in notes)
    config, notes = build_config(
        LaunchRequest(model=str(tiny_model), data=str(forty), batch_size="auto", max_batch_size=40, run_id="x")
    )
    assert config.max_batch_size == 40 and not any("--batch-size auto" in n for n in notes), "the user's bound wins"

    run_dir = make_run_dir(batch_size="auto")
    assert run_worker(run_dir) == 0
    result = read_result(run_dir)
    assert (result["batching"]["planned_max"], result["batching"]["final"]) == (6, 6)
    assert [b["size"] for b in result["metrics"]["batches"]] == [6, 6]


def test_a_batch_larger_than_the_documents_is_recorded_at_the_size_that_ran(make_run_dir, run_worker):
    """--batch-size 16 over the 12 documents of the small dataset runs one call of 12: the result says 12
    (the report shows 16→12 and plots it at 12), not a batch of 16 that never ran."""
    run_dir = make_run_dir(batch_size=16)
    assert run_worker(run_dir) == 0
    result = read_result(run_dir)
    assert [b["size"] for b in result["metrics"]["batches"]] == [12]
    assert (result["batching"]["requested"], result["batching"]["final"]) == (16, 12)


# --- errors mid-run -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "error_class"), [("RuntimeError", "RuntimeError"), ("CudaError", "CudaError")])
def test_error_mid_run_keeps_finished_documents(make_run_dir, run_worker, monkeypatch, kind, error_class):
    """A crash before the third batch: the two batches before it are in docs.jsonl and in the metrics,
    the run is partial (exit code 3) with the error's class and message, the traceback in error.log."""
    monkeypatch.setenv("SUMBENCH_INJECT_ERROR", f"{kind}@2")
    run_dir = make_run_dir()

    assert run_worker(run_dir) == 3

    result = assert_failure_recorded(run_dir, "partial", error_class)
    assert len(ids(run_dir)) == 4 and {r["batch"] for r in read_docs(run_dir)} == {0, 1}
    assert "injected" in result["error"]["message"]
    log = (run_dir / "error.log").read_text()
    assert log.startswith("Traceback") and "before_generate" in log


def test_forced_incompatible_cell_records_the_reason(make_run_dir, run_worker):
    """--force runs a cell the rules refuse (FlashAttention-2 on a CPU); the worker still tries, and its
    failure is recorded as Incompatible with the rule's reason and the library's own error."""
    run_dir = make_run_dir(scenario="flash-attn", force=True)
    config = rundir.read_config(run_dir)
    assert config.forced and "needs a CUDA GPU" in config.incompatibility

    assert run_worker(run_dir) == 1

    result = assert_failure_recorded(run_dir, "failed", "Incompatible")
    message = result["error"]["message"]
    assert "launched with --force despite" in message and "needs a CUDA GPU" in message
    assert any("launched with --force despite" in n for n in result["notes"])
    assert (run_dir / "error.log").read_text().startswith("Traceback")


# --- prompts over the input limit ---------------------------------------------------------------------------


def _with_long_documents(path: Path, count: int) -> Path:
    records = short_records(12)
    for record in records[:count]:
        record["document"] = " ".join([record["document"]] * 12)
    return write_jsonl(path, records)


def test_long_documents_are_skipped_and_counted(make_run_dir, run_worker, tmp_path):
    """One prompt of 12 over --max-input-tokens (8%, under the 10% allowed) is skipped, never truncated;
    the result counts it and names it."""
    data = _with_long_documents(tmp_path / "one-long.jsonl", 1)
    run_dir = make_run_dir(data=str(data), max_input_tokens=200)

    assert run_worker(run_dir) == 0

    result = read_result(run_dir)
    assert result["status"] == "completed"
    assert result["metrics"]["skipped_too_long"] == 1 and result["metrics"]["documents"] == 11
    assert "doc-00" not in ids(run_dir)
    assert any("skipped 1 documents over 200 prompt tokens: doc-00" in n for n in result["notes"])


def test_too_many_long_documents_fail_the_run(make_run_dir, run_worker, tmp_path):
    """Three of 12 over the limit (25%) would make a skewed benchmark: the run fails before generating,
    TooManyPromptsSkipped, and the message says which option to change."""
    data = _with_long_documents(tmp_path / "three-long.jsonl", 3)
    run_dir = make_run_dir(data=str(data), max_input_tokens=200)

    assert run_worker(run_dir) == 1

    result = assert_failure_recorded(run_dir, "failed", "TooManyPromptsSkipped")
    assert "3 of 12 prompts exceed 200 tokens" in result["error"]["message"]
    assert "--max-input-tokens" in result["error"]["message"]
    assert result["metrics"]["skipped_too_long"] == 3 and ids(run_dir) == []


# --- the host finishes what a dead worker could not ------------------------------------------------------


@pytest.mark.parametrize(
    ("exit_info", "error_class", "says"),
    [
        (ExitInfo(exit_code=137, oom_killed=True), "ContainerOOMKilled", "OOMKilled"),
        (ExitInfo(exit_code=137), "Killed", "SIGKILL"),
        (ExitInfo(exit_code=-9), "Killed", "SIGKILL"),
        (ExitInfo(exit_code=-15, timed_out=True), "Timeout", "--timeout 5 s"),
        (ExitInfo(exit_code=-2, interrupted=True), "Interrupted", "--resume"),
        (ExitInfo(exit_code=-11), "WorkerCrashed", "SIGSEGV"),
        (ExitInfo(exit_code=1), "WorkerCrashed", "code 1"),
    ],
)
def test_dead_worker_is_finished_by_the_host(make_run_dir, exit_info, error_class, says):
    """A worker that died without a word (SIGKILL, the container's OOM killer, a segfault) leaves only
    docs.jsonl: the host writes the result from it, torn last line cut, and says what killed it."""
    run_dir = make_run_dir()
    record = DocRecord(id="doc-03", input_tokens=60, output_tokens=8, latency_s=0.1, batch=0, batch_size=2, summary="x")
    (run_dir / "docs.jsonl").write_text(record.model_dump_json() + "\n" + record.model_dump_json()[:30])
    (run_dir / rundir.RESERVE).write_bytes(b"\0" * 10)

    result = finish_dead_run(run_dir, rundir.read_config(run_dir), exit_info, timeout=5)

    assert result.status == "partial" and result.error.error_class == error_class
    assert says in result.error.message
    assert read_result(run_dir)["error"]["error_class"] == error_class
    assert ids(run_dir) == ["doc-03"] and result.metrics.documents == 1
    assert error_class in (run_dir / "error.log").read_text()
    assert not (run_dir / rundir.RESERVE).exists()


def test_timeout_stops_the_worker_and_says_so(tiny_model, small_dataset, tmp_path):
    """--timeout stops the worker the way Ctrl-C does; the result says Timeout, not Interrupted."""
    proc = run_cli(
        [
            "launch",
            "--model",
            str(tiny_model),
            "--data",
            str(small_dataset),
            "--batch-size",
            "2",
            "--max-new-tokens",
            "8",
            "--results",
            str(tmp_path),
            "--run-id",
            "slow",
            "--timeout",
            "1",
        ],
        env={"SUMBENCH_INJECT_DELAY_S": "5"},
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    result = assert_failure_recorded(tmp_path / "slow", "failed", "Timeout")
    assert "--timeout 1 s" in result["error"]["message"]
    assert "Traceback" not in proc.stdout + proc.stderr


def launch_with_fault(model: Path, data: Path, results: Path, fault: str) -> tuple[subprocess.CompletedProcess, Path]:
    """`runner launch` at batch 2 with SUMBENCH_INJECT_ERROR=fault; the process and its run folder."""
    proc = run_cli(
        ["launch", "--model", str(model), "--data", str(data), "--batch-size", "2", "--max-new-tokens", "8",
         "--results", str(results), "--run-id", "faulty"],
        env={"SUMBENCH_INJECT_ERROR": fault},
    )  # fmt: skip
    return proc, results / "faulty"


def test_native_crash_keeps_its_stack_and_the_finished_batches(tiny_model, small_dataset, tmp_path):
    """A segfault in native code gives Python no chance to write a result or a traceback: the host finishes
    the run from docs.jsonl, and output.log keeps what only stderr saw (faulthandler's Python stack)
    beside the worker's own log lines."""
    proc, run_dir = launch_with_fault(tiny_model, small_dataset, tmp_path, "Segfault@1")
    assert proc.returncode == 3, proc.stderr[-2000:]  # partial: finished documents are kept
    result = assert_failure_recorded(run_dir, "partial", "WorkerCrashed")
    assert "SIGSEGV" in result["error"]["message"] and "output.log" in result["error"]["message"]
    assert result["metrics"]["documents"] == 2, "batch 0 was written before the crash"
    output = (run_dir / rundir.OUTPUT_LOG).read_text()
    assert "Fatal Python error: Segmentation fault" in output
    assert "before_generate" in output, "the Python stack of the crash"
    assert "Segmentation fault" not in (run_dir / rundir.WORKER_LOG).read_text()
    assert "loaded" in output, "the worker's own log lines are there too"


def test_engine_process_out_of_memory_is_filed_as_out_of_memory(tiny_model, small_dataset, tmp_path):
    """vLLM V1's engine process prints its out-of-memory ValueError and dies; the worker only sees "Engine
    core initialization failed". The host reads the root cause from output.log and files the run under
    OutOfMemoryError, keeping the worker's own words in a note."""
    proc, run_dir = launch_with_fault(tiny_model, small_dataset, tmp_path, "EngineCoreOOM@0")
    assert proc.returncode == 1, proc.stderr[-2000:]
    result = assert_failure_recorded(run_dir, "failed", "OutOfMemoryError")
    assert "No available memory for the cache blocks" in result["error"]["message"]
    assert "engine process" in result["error"]["message"]
    assert any("Engine core initialization failed" in n for n in result["notes"])
    assert "ValueError: No available memory" in (run_dir / rundir.OUTPUT_LOG).read_text()


# --- classification -----------------------------------------------------------------------------------------


class _Backend:
    """Stands in for a loaded backend: its out-of-memory test is the only part classify uses."""

    def is_out_of_memory(self, exc: BaseException) -> bool:
        return type(exc).__name__ == "OutOfMemoryError"


@pytest.mark.parametrize(
    ("exc", "forced", "error_class"),
    [
        (KeyboardInterrupt("signal SIGTERM"), False, "Interrupted"),
        (type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory"), False, "OutOfMemoryError"),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), False, "CudaError"),
        (RuntimeError("shape mismatch"), False, "RuntimeError"),
        (OSError(errno.ENOSPC, "No space left on device", "docs.jsonl"), False, "OSError"),
        (ImportError("flash_attn is not installed"), True, "Incompatible"),
        (RuntimeError("CUDA error: no kernel image is available"), True, "Incompatible"),
        (type("OutOfMemoryError", (RuntimeError,), {})("CUDA out of memory"), True, "OutOfMemoryError"),
        (KeyboardInterrupt(), True, "Interrupted"),
        (events.HostGone("the host process that started this run went away"), False, "HostGone"),
        (events.HostGone("the host process that started this run went away"), True, "HostGone"),
    ],
)
def test_classify(make_run_dir, exc, forced, error_class):
    config = rundir.read_config(make_run_dir())
    if forced:
        config = config.model_copy(update={"forced": True, "incompatibility": "scenario x needs a CUDA GPU"})
    assert classify(exc, _Backend(), config) == error_class
    info = describe(exc, _Backend(), config, batch_size=2)
    assert info.error_class == error_class and info.message and "\n" not in info.message
    if error_class == "Incompatible":
        original = "CudaError" if "CUDA error" in str(exc) else type(exc).__name__
        assert info.message.startswith(f"{original}: ") and "needs a CUDA GPU" in info.message
    if error_class == "OSError":
        assert "No space left on device writing docs.jsonl" in info.message and "--resume" in info.message
    if error_class == "HostGone":
        assert "the host process that started this run went away" in info.message and "--resume" in info.message


def test_a_broken_pipe_to_the_host_becomes_host_gone(monkeypatch):
    """The worker's events reach the host through a pipe. Once its reader is gone (the host died), emit
    raises HostGone instead of BrokenPipeError, and stdout goes to /dev/null from then on, so the worker's
    last writes (the result event, Python's flush at exit) do not fail again."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as stdout, monkeypatch.context() as patch:
        patch.setattr("sys.stdout", stdout)
        with pytest.raises(events.HostGone, match="the host process that started this run went away"):
            events.emit("progress", done=1)
        events.emit("result", status="partial")
        assert os.path.samefile(f"/proc/self/fd/{write_end}", os.devnull)

    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as stdout, monkeypatch.context() as patch:
        patch.setattr("sys.stdout", stdout)
        assert not events.host_gone()
        os.close(read_end)
        assert events.host_gone(), "a library's BrokenPipeError is checked against the pipe, without writing"
        assert os.path.samefile(f"/proc/self/fd/{write_end}", os.devnull)


def test_worker_refuses_a_folder_another_worker_holds(make_run_dir, run_worker, capsys):
    """Two workers on one folder would append the same documents twice: the second one exits 2 with one
    line and touches nothing."""
    run_dir = make_run_dir()
    with rundir.locked(run_dir):
        before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
        assert run_worker(run_dir) == 2
        assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before
    assert "is in use by a running worker" in capsys.readouterr().err


# --- a full disk ----------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs at ``tmp_path/disk``; skipped where mounting is not permitted (no root, no CAP_SYS_ADMIN)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path) -> Path:
    """Write zeros until the filesystem refuses."""
    filler = disk / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_full_disk_mid_run_is_a_result_and_keeps_finished_documents(
    make_run_dir, run_worker, small_disk, monkeypatch, tmp_path
):
    """The disk fills up after the first batch: the next append fails with ENOSPC. The file is cut back to
    whole batches, the disk space the worker set aside at its start is given back so result.json can
    still be written, and the result says what happened and how to go on. After space is freed, resuming
    finishes the run with every document exactly once."""
    data = write_jsonl(tmp_path / "forty.jsonl", short_records(40))
    monkeypatch.setenv("SUMBENCH_INJECT_DELAY_S", "0.2")
    run_dir = make_run_dir(results=small_disk, data=str(data), batch_size=4, max_new_tokens=16)
    filler: list[Path] = []

    def fill_after_first_batch() -> None:
        wait_for(lambda: len(read_docs(run_dir)) >= 4, timeout=120, what="the first batch")
        filler.append(_fill(small_disk))

    thread = threading.Thread(target=fill_after_first_batch)
    thread.start()
    code = run_worker(run_dir)
    thread.join()

    assert code == 3
    result = assert_failure_recorded(run_dir, "partial", "OSError")
    assert "No space left on device writing" in result["error"]["message"]
    assert "docs.jsonl" in result["error"]["message"] and "--resume" in result["error"]["message"]
    kept = read_docs(run_dir)
    assert 4 <= len(kept) < 40 and len(kept) % 4 == 0, "whole batches only"
    assert (run_dir / "docs.jsonl").read_bytes().endswith(b"\n")

    filler[0].unlink()
    monkeypatch.delenv("SUMBENCH_INJECT_DELAY_S")
    assert run_worker(run_dir) == 0
    assert sorted(ids(run_dir)) == sorted(f"doc-{i:02d}" for i in range(40))
    assert read_result(run_dir)["metrics"]["documents"] == 40


def test_reserve_space_gives_result_json_room(tmp_path, small_disk):
    """Direct check of the mechanism: with the disk full, result.json still lands by releasing the reserve."""
    run_dir = small_disk / "run"
    run_dir.mkdir()
    assert rundir.reserve_space(run_dir)
    _fill(small_disk)
    with pytest.raises(OSError):
        (run_dir / "other.json").write_text("x" * 100_000)
    result = RunResult(
        run_id="r",
        status="failed",
        started_at="t",
        finished_at="t",
        config=RunConfig(run_id="r", model="m", data="d"),
        environment=Environment(python="3", platform="p", sumbench="0", device=DeviceInfo(kind="cpu", name="cpu")),
        batching=Batching(requested=1),
    )
    rundir.write_result(run_dir, result)
    assert read_result(run_dir)["run_id"] == "r"
    assert not (run_dir / rundir.RESERVE).exists()
    assert os.path.getsize(run_dir / "result.json") > 0


def test_any_error_after_the_timeout_is_recorded_as_the_timeout(make_run_dir, run_worker, monkeypatch):
    """A stop that lands inside a library can surface as that library's own error (CI once saw a
    RuntimeError where Interrupted was expected); once the host's deadline fired, the result says
    Timeout and keeps the worker's words in a note. The worker here is real; only the deadline is told."""
    from runner.executors.base import Executor
    from runner.launching import PreparedLaunch, execute

    class DeadlinePassed(Executor):
        name = "process"

        def execute(self, config, run_dir, on_line, timeout):
            run_worker(run_dir)  # fails with the injected RuntimeError, writing its result
            return ExitInfo(exit_code=1, timed_out=True)

    monkeypatch.setenv("SUMBENCH_INJECT_ERROR", "RuntimeError@0:torn by a stop signal")
    run_dir = make_run_dir()
    result = execute(PreparedLaunch(run_dir, rundir.read_config(run_dir), DeadlinePassed(), [], 5.0), print)
    assert (result.error.error_class, result.status) == ("Timeout", "failed")
    assert "the worker recorded RuntimeError: torn by a stop signal" in result.notes
    assert read_result(run_dir)["error"]["error_class"] == "Timeout"
