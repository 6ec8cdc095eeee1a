"""What the Docker executor and ``--target docker`` check before anything runs, and a container that
cannot start.

Against the real engine (DOCKER_HOST) wherever the behaviour is the engine's: an engine that does not
answer, an image it lacks, a registry it cannot reach (a port on localhost nothing listens on fails at
once), a container whose entry point cannot exec, Docker's refusal to give a container a GPU without
the NVIDIA Container Toolkit. This machine has no GPU, so a host's cards and driver are stand-ins
(``NvmlGpu`` rows, as NVML or nvidia-smi would give them) where a test needs a GPU to be there.

Not tested here: a pull that succeeds (there is no registry to pull from; a stand-in would only test
the stand-in), and nvidia-smi's real output on a GPU host.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import bakefile
import pytest
from conftest import closed_port_endpoint, one_line
from test_docker_executor import ENGINE, leftovers, needs_cpu_image, needs_engine

from runner import compat
from runner.contract import catalog, rundir
from runner.contract.catalog import get_gpu, get_image
from runner.contract.errors import UserError
from runner.contract.nvml import NvmlGpu, list_gpus
from runner.executors.docker import DockerExecutor
from runner.executors.docker.engine import names_registry
from runner.executors.docker.gpus import NVIDIA_SMI, driver_problem, parse_nvidia_smi
from runner.launching import LaunchRequest, build_config, launch
from runner.paths import SAMPLE_DATASET
from runner.scenarios import get_scenario

# A built-in architecture with synthetic weights: nothing to download or build, and nothing here runs it.
MODEL = ["--model", "llama-2-7b", "--synthetic-weights", "--limit", "2"]
T4_550 = NvmlGpu(0, "Tesla T4", "GPU-t4-0000", 15360 * 2**20, "7.5", "550.54.15", "12.4")
# NVIDIA's minimum drivers per CUDA major version, under minor version compatibility ("CUDA Compatibility",
# docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html; CUDA Toolkit Release Notes).
NVIDIA_MINIMUM = {"13": "580", "12": "525.60.13"}

no_gpu_here = pytest.mark.skipif(bool(list_gpus()), reason="this machine has a GPU: the no-GPU paths do not apply")


def _engine_has_nvidia_runtime() -> bool:
    try:
        return ENGINE is not None and "nvidia" in (ENGINE.info().get("Runtimes") or {})
    except Exception:
        return False


no_toolkit_on_engine = pytest.mark.skipif(
    _engine_has_nvidia_runtime(), reason="the engine has the NVIDIA Container Toolkit: it can give containers GPUs"
)


def matrix_args(results: Path, *extra: str) -> list[str]:
    return ["matrix", "--target", "docker", *MODEL, "--results", str(results), "--matrix-id", "m", *extra]


def registry_on_a_closed_port() -> str:
    return closed_port_endpoint().removeprefix("http://")  # e.g. 127.0.0.1:40123: refused at once


def gpu_config(image: str, gpu: str = "t4"):
    config, _ = build_config(
        LaunchRequest(model="llama-2-7b", synthetic_weights=True, data=str(SAMPLE_DATASET), image=image, gpu=gpu)
    )
    return config


# --- the matrix refuses before its folder is written -----------------------------------------------------


def test_matrix_refuses_an_engine_that_does_not_answer(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexist.sock")
    line = one_line(capsys, matrix_args(tmp_path, "--images", "cpu"))
    assert "cannot reach unix:///nonexist.sock" in line and "start Docker" in line, line
    assert not (tmp_path / "m").exists(), "a refused matrix leaves no folder"
    # A dry run launches nothing, so it asks no engine.
    from runner.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([*matrix_args(tmp_path, "--images", "cpu"), "--dry-run"])
    assert exit_info.value.code == 0 and (tmp_path / "m" / "matrix.json").exists()


@pytest.mark.docker
@needs_engine
def test_matrix_refuses_an_image_the_engine_lacks_and_cannot_pull(capsys, tmp_path):
    missing = f"0.0.0-missing-{secrets.token_hex(3)}"
    line = one_line(capsys, matrix_args(tmp_path, "--images", "cpu", "--tag", missing))
    assert f"image sumbench/cpu:{missing} not found on" in line, line
    built = f"`REVISION=$(git rev-parse HEAD) TAG={missing} docker buildx bake cpu`"
    assert built in line, "no registry: nothing to pull, say what to build"
    registry = registry_on_a_closed_port()
    line = one_line(capsys, matrix_args(tmp_path, "--images", "cpu", "--registry", registry))
    assert f"image {registry}/sumbench/cpu:" in line and "cannot be pulled" in line, line
    assert "connection refused" in line, "the engine's own reason"
    assert f"REGISTRY={registry} docker buildx bake --push cpu`" in line
    assert not (tmp_path / "m").exists()


@pytest.mark.docker
@needs_engine
@no_gpu_here
def test_matrix_refuses_gpu_cells_on_an_engine_whose_host_has_no_gpu(capsys, tmp_path):
    line = one_line(capsys, matrix_args(tmp_path, "--images", "hf", "--gpus", "t4"))
    assert "no NVIDIA T4 (--gpu t4) for" in line and "shows no NVIDIA GPU" in line, line
    assert "buildx bake" not in line, "the GPU is said first: no one builds a 5 GB image for a host without one"
    assert not (tmp_path / "m").exists()


@pytest.mark.docker
@needs_engine
def test_matrix_refuses_a_driver_older_than_its_images_need(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("runner.executors.docker.executor.local_gpus", lambda: ([T4_550], ""))
    line = one_line(capsys, matrix_args(tmp_path, "--images", "hf-bnb", "--gpus", "t4"))
    assert "has NVIDIA driver 550.54.15, and image hf-bnb (CUDA 13.0 torch) needs 580 or newer" in line, line
    assert "--image hf-legacy" in line, "an image that runs the same scenario on that driver"
    assert "--force" not in line, "a matrix has no --force"
    assert not (tmp_path / "m").exists()


# --- runner launch: GPU first, then the image; pulls ----------------------------------------------------


@pytest.mark.docker
@needs_engine
@no_gpu_here
def test_no_gpu_on_the_engines_host_is_said_before_a_missing_image(capsys, tmp_path):
    args = ["launch", "--executor", "docker", *MODEL, "--results", str(tmp_path), "--gpu", "t4"]
    line = one_line(capsys, [*args, "--image", "hf"])  # sumbench/hf is not built here
    assert "no NVIDIA T4 (--gpu t4) for" in line and "its host shows no NVIDIA GPU (NVML:" in line, line
    assert "not found" not in line and "buildx bake" not in line
    line = one_line(capsys, [*args, "--image", "cpu", "--force"])
    assert "shows no NVIDIA GPU" in line and "--docker-host" in line and "--image cpu --gpu cpu" in line, line
    assert "--gpu-uuid" not in line, "no card to pin on a host without GPUs"
    assert not any(tmp_path.iterdir())


@pytest.mark.docker
@needs_cpu_image
@no_gpu_here
@no_toolkit_on_engine
def test_a_remote_engine_is_asked_for_its_gpus_in_an_image_it_already_holds(monkeypatch):
    """A remote engine's GPUs are listed with nvidia-smi in a container; this engine holds sumbench/cpu
    but not sumbench/hf, and has no NVIDIA Container Toolkit: Docker's refusal is the answer, before the
    missing hf image comes up."""
    monkeypatch.setattr("runner.executors.docker.executor.is_remote", lambda url: True)
    with pytest.raises(UserError) as err:
        DockerExecutor().prepare(gpu_config("hf"), get_image("hf"), get_gpu("t4"))
    message = str(err.value)
    assert "cannot give containers a GPU (could not select device driver" in message, message
    assert "no NVIDIA GPU or no NVIDIA Container Toolkit" in message and "nvidia-ctk runtime configure" in message
    assert "--gpu t4" in message and "buildx bake" not in message and "\n" not in message
    probes = [
        c for c in ENGINE.containers.list(all=True) if (c.attrs["Config"].get("Entrypoint") or [""])[0] == "nvidia-smi"
    ]
    assert not probes, "the probe container is removed"


@pytest.mark.docker
@needs_engine
@no_gpu_here
@no_toolkit_on_engine
def test_a_remote_engine_with_nothing_to_ask_in_says_it_registers_no_nvidia_runtime(monkeypatch):
    monkeypatch.setattr("runner.executors.docker.executor.is_remote", lambda url: True)
    monkeypatch.setattr("runner.executors.docker.executor.probe_image", lambda client, ref: None)
    with pytest.raises(UserError) as err:
        DockerExecutor().prepare(gpu_config("hf"), get_image("hf"), get_gpu("t4"))
    message = str(err.value)
    assert "not found on" in message and "registers no NVIDIA runtime (docker info)" in message, message


# Drivers of common cloud GPU machine images (R535, R550, R570): all older than CUDA 13's R580.
CLOUD_DRIVERS = ("535.183.01", "550.54.15", "570.133.20")


@pytest.mark.parametrize("driver", CLOUD_DRIVERS)
def test_vllm_awq_on_a_cloud_t4_names_the_cuda_12_vllm_image(driver):
    t4 = get_gpu("t4")
    problem = driver_problem(get_image("vllm-awq"), "vllm-awq", t4, driver, "h")
    assert problem is not None and f"has NVIDIA driver {driver}" in problem
    assert problem.endswith("(--image vllm-cu12)"), "the same scenario, on the image that runs there"
    cu12 = get_image("vllm-cu12")
    assert cu12.runs_on_driver(driver) and driver_problem(cu12, "vllm-awq", t4, driver, "h") is None
    assert compat.check(cu12, get_scenario("vllm-awq"), t4) == [], "and its kernels and rules admit a T4"
    assert compat.check(cu12, get_scenario("vllm"), t4) == []


def test_the_cuda_12_vllm_image_needs_r525_and_says_so():
    cu12 = get_image("vllm-cu12")
    assert (cu12.cuda, cu12.min_driver, cu12.backend) == ("12.8", "525.60.13", "vllm")
    assert {"vllm", "vllm-awq"} <= set(cu12.scenarios)
    assert not cu12.runs_on_driver("470.256.02") and not cu12.runs_on_driver("525.60.12")
    problem = driver_problem(cu12, "vllm-awq", get_gpu("t4"), "470.256.02", "h")
    assert problem is not None and "image vllm-cu12 (CUDA 12.8 torch) needs 525.60.13 or newer" in problem


@pytest.mark.docker
@needs_engine
def test_launching_vllm_awq_on_an_r535_t4_names_vllm_cu12(monkeypatch):
    t4_535 = NvmlGpu(0, "Tesla T4", "GPU-t4-0000", 15360 * 2**20, "7.5", "535.183.01", "12.2")
    monkeypatch.setattr("runner.executors.docker.executor.local_gpus", lambda: ([t4_535], ""))
    with pytest.raises(UserError) as err:
        DockerExecutor().prepare(gpu_config("vllm-awq"), get_image("vllm-awq"), get_gpu("t4"))
    message = str(err.value)
    assert "driver 535.183.01, and image vllm-awq (CUDA 13.0 torch) needs 580 or newer" in message, message
    assert "(--image vllm-cu12)" in message and message.endswith("--force tries anyway")


@pytest.mark.docker
@needs_engine
def test_an_old_driver_is_refused_before_the_image_and_force_goes_on(monkeypatch):
    monkeypatch.setattr("runner.executors.docker.executor.local_gpus", lambda: ([T4_550], ""))
    with pytest.raises(UserError) as err:
        DockerExecutor().prepare(gpu_config("hf"), get_image("hf"), get_gpu("t4"))
    message = str(err.value)
    assert message.startswith(f"{DockerExecutor().engine}'s host has NVIDIA driver 550.54.15"), message
    assert "image hf (CUDA 13.0 torch) needs 580 or newer" in message and "--image hf-legacy" in message
    assert message.endswith("--force tries anyway") and "not found" not in message
    notes: list[str] = []
    forced = DockerExecutor(force=True, progress=notes.append)
    with pytest.raises(UserError, match=r"image sumbench/hf:\S+ not found"):  # past the driver, to the image
        forced.prepare(gpu_config("hf"), get_image("hf"), get_gpu("t4"))
    assert notes and "driver 550.54.15" in notes[0] and notes[0].endswith("going on (--force)")


@pytest.mark.docker
@needs_engine
def test_a_pull_that_fails_is_one_line_with_the_engines_reason(tmp_path):
    registry = registry_on_a_closed_port()
    lines: list[str] = []
    req = LaunchRequest(
        model="llama-2-7b",
        synthetic_weights=True,
        data=str(SAMPLE_DATASET),
        results=tmp_path,
        executor="docker",
        executor_options={"registry": registry, "progress": lines.append},
    )
    with pytest.raises(UserError) as err:
        launch(req, lines.append)
    message = str(err.value)
    assert f"image {registry}/sumbench/cpu:" in message and "cannot be pulled" in message, message
    assert "connection refused" in message and "\n" not in message
    assert lines == [f"pulling {registry}/sumbench/cpu:{DockerExecutor().tag} onto {DockerExecutor().engine}"]
    assert not any(tmp_path.iterdir()), "a refused launch leaves no run folder"


def test_an_absent_image_is_pulled_only_where_a_registry_is_named():
    assert names_registry("sumbench/cpu:0.1.0", "registry.example.com/you")
    assert names_registry("registry.example.com/you/sumbench/cpu:0.1.0")
    assert names_registry("localhost:5000/sumbench/cpu:0.1.0")
    assert names_registry("localhost/sumbench/cpu:0.1.0")
    assert not names_registry("sumbench/cpu:0.1.0"), "Docker Hub's sumbench/ is not ours: build, do not pull"


# --- a container that cannot start -----------------------------------------------------------------------


@pytest.fixture
def broken_image():
    """The local base image with an entry point that does not exist, under a tag of its own; removed after."""
    assert ENGINE is not None
    tag = f"broken-{secrets.token_hex(4)}"
    container = ENGINE.containers.create("local/python:3.11-bookworm", network_mode="none")
    try:
        container.commit(
            repository="sumbench-test/sumbench/cpu", tag=tag, changes=['ENTRYPOINT ["/no/such/entrypoint"]']
        )
    finally:
        container.remove(force=True)
    yield {"registry": "sumbench-test", "tag": tag}
    ENGINE.images.remove(f"sumbench-test/sumbench/cpu:{tag}", force=True)


def _has_base_image() -> bool:
    try:
        return ENGINE is not None and ENGINE.images.get("local/python:3.11-bookworm") is not None
    except Exception:
        return False


@pytest.mark.docker
@pytest.mark.skipif(not _has_base_image(), reason="local/python:3.11-bookworm is not built")
def test_a_container_that_cannot_start_leaves_a_failed_result(broken_image, tmp_path, capsys):
    lines: list[str] = []
    req = LaunchRequest(
        model="llama-2-7b",
        synthetic_weights=True,
        data=str(SAMPLE_DATASET),
        limit=2,
        results=tmp_path,
        run_id="no-start",
        executor="docker",
        executor_options=broken_image,
    )
    run_dir, result = launch(req, lines.append)
    assert result.status == "failed" and result.error is not None
    assert result.error.error_class == "ContainerStartFailed"
    assert result.error.message.startswith("the container could not start: ")
    assert '"/no/such/entrypoint"' in result.error.message and "no such file or directory" in result.error.message
    assert "buildx bake cpu" in result.error.message, "what to do about it"
    assert rundir.read_result(run_dir) == result
    assert (run_dir / "error.log").read_text().startswith("ContainerStartFailed: the container could not start")
    assert "/no/such/entrypoint" in (run_dir / "output.log").read_text(), "the engine's words, as printed"
    assert any("did not start" in line for line in lines)
    assert not leftovers("no-start"), "the container is removed"
    # The report sees a failed run, not a folder to skip.
    from runner.cli import main

    main(["report", str(tmp_path)])
    out = capsys.readouterr().out
    assert "ContainerStartFailed" in out and "no-start" in out


# --- the driver each image needs ------------------------------------------------------------------------


def _bake_cuda(image: str) -> str:
    """The image's io.sumbench.cuda label, as docker-bake.hcl sets it."""
    return bakefile.value(bakefile.images()[image].labels["io.sumbench.cuda"], bakefile.variables())


def test_each_image_names_the_driver_its_cuda_build_needs():
    for image in catalog.images().values():
        cuda = _bake_cuda(image.key)
        if image.device == "cpu":
            assert (image.cuda, image.min_driver, cuda) == ("", "", "none")
            continue
        assert image.cuda == cuda, f"{image.key}: images.toml says CUDA {image.cuda}, its bake target {cuda}"
        assert image.min_driver == NVIDIA_MINIMUM[cuda.split(".")[0]], image.key
    assert get_image("hf").runs_on_driver("580.65.06") and not get_image("hf").runs_on_driver("575.57.08")
    assert get_image("hf-legacy").runs_on_driver("550.54.15") and not get_image("hf-legacy").runs_on_driver("470.1")


def test_catalog_shows_each_images_minimum_driver(capsys):
    from runner.cli import main

    main(["catalog", "images", "--json"])
    rows = {row["image"]: row for row in json.loads(capsys.readouterr().out)}
    assert (rows["hf"]["cuda"], rows["hf"]["min_driver"]) == ("13.0", "580")
    assert (rows["hf-legacy"]["cuda"], rows["hf-legacy"]["min_driver"]) == ("12.6", "525.60.13")
    assert rows["cpu"]["min_driver"] is None
    main(["catalog", "images", "--markdown"])
    table = capsys.readouterr().out
    assert "| driver |" in table.splitlines()[0]
    assert "| 580+ (CUDA 13.0) |" in table and "| 525.60.13+ (CUDA 12.6) |" in table


def test_the_gpu_probe_reads_the_driver_and_an_old_one_names_an_image_that_runs():
    assert NVIDIA_SMI[1].endswith(",driver_version"), "nvidia-smi is asked for the driver"
    (row,) = parse_nvidia_smi("Tesla T4, GPU-t4, 15360, 7.5, 550.54.15\n")
    assert row.driver == "550.54.15"
    t4 = get_gpu("t4")
    assert driver_problem(get_image("hf"), "default", t4, "580.65.06", "h") is None
    four_bit = driver_problem(get_image("hf-bnb"), "4-bit", t4, "550.54.15", "ssh://me@vm's host")
    assert four_bit is not None and "(--image hf-legacy)" in four_bit, "the same scenario, on an image that runs"
    vllm = driver_problem(get_image("vllm"), "vllm", t4, "550.54.15", "h")
    assert vllm is not None and "(--image vllm-cu12)" in vllm, "vLLM on CUDA 12 runs the same scenario there"
    bf16 = driver_problem(get_image("hf"), "bf16", get_gpu("h100"), "550.54.15", "h")
    assert bf16 is not None and "(--image hf-legacy --scenario default" in bf16, "no image runs bf16 there: another"
    assert driver_problem(get_image("hf"), "default", t4, "", "h") is None, "an unknown driver is not refused"
