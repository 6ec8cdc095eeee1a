"""The process executor (the embedded default) with a GPU type: the card is found on this machine before
anything runs, and the worker is pinned to it; and the worker runs the installed code, whatever folder the
run starts from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_line, read_result

from runner.cli import main
from runner.contract.catalog import get_gpu, get_image
from runner.contract.errors import UserError
from runner.contract.nvml import NvmlGpu, list_gpus
from runner.contract.schema import LaunchInfo, RunConfig, ServingConfig
from runner.doctor import stack
from runner.executors import process


def card(index: int, name: str, gib: int, uuid: str) -> NvmlGpu:
    return NvmlGpu(index, name, uuid, gib * 2**30, "8.0", "580.0", "13.0")


def config(**launch) -> RunConfig:
    return RunConfig(run_id="r", image="hf", gpu="t4", model="m", data="d.jsonl", launch=LaunchInfo(**launch))


def test_a_gpu_cell_without_that_card_here_is_refused_before_it_starts(tiny_model, tmp_path, capsys):
    if list_gpus():
        pytest.skip("this machine has an NVIDIA GPU")
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        main(["launch", "--image", "hf", "--gpu", "t4", "--model", str(tiny_model), "--results", str(results)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: no NVIDIA T4 (--gpu t4) on this machine: it shows no NVIDIA GPU;")
    assert "--executor docker" in err
    assert not results.exists() or not any(results.iterdir())  # no run folder left behind


def test_the_worker_is_pinned_to_the_card_of_its_type(monkeypatch):
    cards = [card(0, "NVIDIA A100-SXM4-80GB", 80, "GPU-a100"), card(1, "Tesla T4", 15, "GPU-t4")]
    monkeypatch.setattr(process, "list_gpus", lambda: cards)  # this machine has no GPU to list
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    prepared = process.ProcessExecutor().prepare(config(), get_image("hf"), get_gpu("t4"))
    assert prepared.launch.gpu_uuids == ["GPU-t4"]
    assert process._worker_env(prepared)["CUDA_VISIBLE_DEVICES"] == "GPU-t4"  # by UUID, not NVML's index 1

    with pytest.raises(UserError, match=r"it has GPU-a100 NVIDIA A100-SXM4-80GB \(--gpu a100-80gb\), GPU-t4"):
        process.ProcessExecutor().prepare(config(), get_image("hf"), get_gpu("l4"))


def test_a_users_own_device_choice_is_kept(monkeypatch):
    monkeypatch.setattr(process, "list_gpus", lambda: [])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    prepared = process.ProcessExecutor().prepare(config(), get_image("hf"), get_gpu("t4"))
    assert prepared.launch.gpu_uuids == [] and process._worker_env(prepared) is None


def test_a_cpu_cell_lists_no_cards(monkeypatch):
    def no_listing():
        raise AssertionError("a CPU cell must not look for GPUs")

    monkeypatch.setattr(process, "list_gpus", no_listing)
    prepared = process.ProcessExecutor().prepare(config(), get_image("cpu"), get_gpu("cpu"))
    assert prepared.launch.executor == "process" and process._worker_env(prepared) is None


def shadowing_folder(tmp_path: Path) -> Path:
    """A folder holding a ``runner/`` package that breaks on import: what another checkout looks like to a
    worker started there with the current folder on its sys.path."""
    folder = tmp_path / "elsewhere"
    (folder / "runner").mkdir(parents=True)
    (folder / "runner" / "__init__.py").write_text('raise ImportError("the runner/ of the current folder")\n')
    return folder


def test_a_runner_folder_in_the_current_folder_does_not_replace_the_installed_one(
    tiny_model, small_dataset, tmp_path, monkeypatch
):
    monkeypatch.chdir(shadowing_folder(tmp_path))
    results = tmp_path / "results"
    args = ["--model", str(tiny_model), "--data", str(small_dataset), "--limit", "2", "--max-new-tokens", "4"]
    with pytest.raises(SystemExit) as exit_info:
        main(["launch", *args, "--results", str(results), "--run-id", "here"])
    assert exit_info.value.code == 0
    assert read_result(results / "here")["status"] == "completed"
    assert "current folder" not in (results / "here" / "output.log").read_text()


def test_the_python_3_10_start_keeps_the_current_folder_off_the_path_too(tmp_path):
    """Python 3.10 has no ``-P``; its command runs here too, so every CI checks it."""
    command = [sys.executable, "-c", process.SAFE_START, "--help"]
    proc = subprocess.run(command, cwd=shadowing_folder(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m runner.worker" in proc.stdout


@pytest.fixture
def no_vllm_here(monkeypatch):
    """This Python as one without vLLM, whether or not the test's environment has it: the doctor's
    distribution -> module map points vllm at a module that exists nowhere."""
    monkeypatch.setitem(stack.OPTIONAL, "vllm", "sumbench_test_no_such_module")


def test_a_scenario_whose_engine_this_python_lacks_is_refused_before_anything_is_written(
    no_vllm_here, tiny_model, tmp_path, capsys
):
    results = tmp_path / "results"
    args = ["--image", "vllm-cpu", "--model", str(tiny_model), "--batch-size", "dynamic", "--limit", "8"]
    line = one_line(capsys, ["launch", *args, "--results", str(results), "--force"])
    said = "error: --image vllm-cpu --scenario vllm imports vllm in the worker, and this Python"
    assert line.startswith(f"{said} ({sys.executable}) lacks it: ")
    assert "`make vllm-env` builds .cache/venv-vllm" in line and line.endswith("or pass --executor docker")
    assert not results.exists()  # --force does not pass it: the import would fail all the same


def test_a_python_without_the_worker_stack_is_refused_with_the_extra_to_install(
    monkeypatch, tiny_model, tmp_path, capsys
):
    """A host installed without the ``worker`` extra: refused before a run folder, not a crash after."""
    monkeypatch.setitem(stack.WORKER_STACK, "rouge-score", "sumbench_test_no_such_module")
    results = tmp_path / "results"
    line = one_line(capsys, ["launch", "--model", str(tiny_model), "--limit", "4", "--results", str(results)])
    assert line.startswith("error: --image cpu --scenario fp32 imports rouge-score in the worker, and this Python")
    assert "lacks it: pip install 'sumbench[worker]', or pass --executor docker" in line
    assert not results.exists()


def test_a_gpu_image_says_pip_and_a_client_of_a_running_server_needs_no_engine(no_vllm_here, monkeypatch):
    monkeypatch.setattr(process, "list_gpus", lambda: [card(0, "Tesla T4", 15, "GPU-t4")])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    cell = config().model_copy(update={"image": "vllm", "scenario": "vllm", "backend": "vllm"})
    with pytest.raises(UserError, match=r"lacks it: pip install vllm, or pass --executor docker$"):
        process.ProcessExecutor().prepare(cell, get_image("vllm"), get_gpu("t4"))

    client = cell.model_copy(update={"scenario": "vllm-serve", "serving": ServingConfig(endpoint="http://h:1")})
    assert process.ProcessExecutor().prepare(client, get_image("vllm"), get_gpu("t4")).launch.gpu_uuids == ["GPU-t4"]
