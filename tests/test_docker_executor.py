"""The Docker executor: what it asks the engine for (no engine needed), then real runs in containers.

The first half checks the request objects the executor builds: mounts, GPU device requests, user,
environment, paths inside and outside the container. GPU requests cannot be exercised on a machine
without a GPU, so they are checked here as the objects Docker receives.

The tests marked ``docker`` run ``runner launch --executor docker`` for real; they are skipped unless a
Docker engine answers (DOCKER_HOST) and the image sumbench/cpu:<version> is there (``make docker-ready``).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import jsonschema
import pytest
from conftest import docker_engine

from runner import __version__
from runner.contract import rundir
from runner.contract.catalog import get_gpu, get_image
from runner.contract.errors import UserError
from runner.contract.nvml import NvmlGpu
from runner.contract.schema import LaunchInfo, RunConfig
from runner.executors.docker import DockerExecutor
from runner.executors.docker.engine import is_remote, missing_image_message, repo_digest, ssh_config_port, with_ssh_port
from runner.executors.docker.files import restore_host_paths
from runner.executors.docker.gpus import parse_nvidia_smi, select_gpus
from runner.executors.docker.layout import plan_layout
from runner.executors.docker.running import iter_lines
from runner.executors.docker.spec import container_env, container_spec
from runner.paths import SAMPLE_DATASET, SCHEMA_FILE

# SUMBENCH_TAG picks another build of the image, for the tests as for `runner launch`.
CPU_IMAGE = f"sumbench/cpu:{os.environ.get('SUMBENCH_TAG') or __version__}"
TOKEN = "hf_" + "x" * 34


def make_config(model: str, **overrides) -> RunConfig:
    fields = dict(
        run_id="r1",
        model=model,
        data=str(SAMPLE_DATASET),
        launch=LaunchInfo(executor="docker", image=CPU_IMAGE, image_id="sha256:abc", gpu_uuids=[]),
    )
    return RunConfig(**{**fields, **overrides})


def spec_for(config: RunConfig, run_dir: Path, *, copy: bool = False, environ=None, network=None) -> dict:
    layout = plan_layout(config, run_dir.name, copy)
    return container_spec(config, layout, run_dir, copy=copy, network=network, revision="abc123", environ=environ or {})


def by_target(spec: dict) -> dict[str, dict]:
    return {m["Target"]: m for m in spec["mounts"]}


# --- request objects ------------------------------------------------------------------------------------


def test_local_run_mounts_run_folder_rw_and_inputs_read_only(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    run_dir = tmp_path / "results" / "r1"
    spec = spec_for(make_config(str(model)), run_dir)
    mounts = by_target(spec)
    assert mounts["/results/r1"]["Source"] == str(run_dir) and not mounts["/results/r1"]["ReadOnly"]
    overlay = mounts["/results/r1/config.json"]
    assert overlay["Source"] == str(run_dir / "container-config.json") and overlay["ReadOnly"]
    assert mounts["/inputs/data/howto-sample.jsonl"] == {
        "Target": "/inputs/data/howto-sample.jsonl",
        "Source": str(SAMPLE_DATASET),
        "Type": "bind",
        "ReadOnly": True,
    }
    assert mounts["/inputs/model"]["Source"] == str(model) and mounts["/inputs/model"]["ReadOnly"]
    assert spec["command"] == ["/results/r1"]
    expected = f"{os.getuid()}:{os.getgid()}" if os.getuid() else "1000:1000"
    assert spec["user"] == expected, "the user's own uid (files in the mount stay theirs), never root"
    assert spec["network_mode"] == "none", "a local model needs no network"
    assert spec["labels"] == {"sumbench.run-id": "r1"} and spec["name"] == "sumbench-r1"
    assert spec["image"] == "sha256:abc", "the exact image prepare() found, not a tag that may move"
    assert spec["device_requests"] == [] and spec["shm_size"] is None


def test_gpu_cards_are_requested_by_uuid_with_compute_and_utility():
    config = make_config("m", launch=LaunchInfo(executor="docker", image_id="sha256:abc", gpu_uuids=["GPU-1234"]))
    (request,) = spec_for(config, Path("/tmp/r1"))["device_requests"]
    assert request["DeviceIDs"] == ["GPU-1234"]
    assert request["Capabilities"] == [["gpu", "compute", "utility"]]
    assert request["Count"] == 0, "Docker refuses a count together with device ids"
    assert request["Driver"] == ""


def test_vllm_cells_get_shared_memory():
    assert spec_for(make_config("m", backend="vllm"), Path("/tmp/r1"))["shm_size"] == "8g"


def test_containers_never_run_as_root_and_drop_every_privilege(tmp_path, monkeypatch):
    for copy in (False, True):
        spec = spec_for(make_config("m"), tmp_path / "r1", copy=copy)
        assert spec["cap_drop"] == ["ALL"] and spec["security_opt"] == ["no-new-privileges"]
        assert not spec["user"].startswith("0:")
    monkeypatch.setattr(os, "getuid", lambda: 0)
    monkeypatch.setattr(os, "getgid", lambda: 0)
    assert spec_for(make_config("m"), tmp_path / "r1")["user"] == "1000:1000", "root on the host: the image's user"
    monkeypatch.setattr(os, "getuid", lambda: 1234)
    monkeypatch.setattr(os, "getgid", lambda: 99)
    assert spec_for(make_config("m"), tmp_path / "r1")["user"] == "1234:99"
    assert spec_for(make_config("m"), tmp_path / "r1", copy=True)["user"] == "1000:1000", "owner of copied files"


@pytest.mark.skipif(os.getuid() == 0, reason="root's hub cache is a named volume (see the next test)")
def test_hub_model_downloads_into_a_lasting_cache_over_host_network(tmp_path):
    spec = spec_for(make_config("org/model"), tmp_path / "r1", environ={"HF_HOME": str(tmp_path / "hf")})
    assert spec["network_mode"] == "host"
    cache = by_target(spec)["/hf-cache"]
    assert cache["Source"] == str(tmp_path / "hf") and cache["Type"] == "bind" and not cache["ReadOnly"]
    assert spec["environment"]["HF_HOME"] == "/hf-cache"
    assert "HF_HUB_OFFLINE" not in spec["environment"]
    assert "/inputs/model" not in by_target(spec)
    config = make_config("org/model")
    remote = container_spec(
        config,
        plan_layout(config, "r1", copy=True),
        tmp_path / "r1",
        copy=True,
        network=None,
        revision=None,
        environ={},
        image_hf_home="/models/hf-cache",
    )
    assert [(m["Target"], m["Source"], m["Type"]) for m in remote["mounts"]] == [
        ("/models/hf-cache", "sumbench-hf-cache", "volume")
    ], "a remote engine keeps only a named volume, over the image's own cache folder; files are copied"
    assert remote["environment"]["HF_HOME"] == "/models/hf-cache"
    assert remote["user"] == "1000:1000", "the image's own (non-root) user, who owns that folder"


def test_root_on_the_host_keeps_the_hub_cache_in_a_volume_its_worker_can_write(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "getuid", lambda: 0)
    config = make_config("org/model")
    spec = container_spec(
        config, plan_layout(config, "r1", copy=False), tmp_path / "r1", copy=False, network=None, revision=None,
        environ={}, image_hf_home="/models/hf-cache",
    )  # fmt: skip
    cache = by_target(spec)["/models/hf-cache"]
    assert (cache["Source"], cache["Type"]) == ("sumbench-hf-cache", "volume")


def test_synthetic_builtin_needs_no_model_files_and_no_network(tmp_path):
    spec = spec_for(make_config("llama-2-7b", synthetic_weights=True), tmp_path / "r1")
    assert "/inputs/model" not in by_target(spec) and "/hf-cache" not in by_target(spec)
    assert spec["network_mode"] == "none" and spec["environment"]["HF_HUB_OFFLINE"] == "1"


def test_token_is_passed_only_when_set_and_never_written(tmp_path):
    config = make_config("org/model")
    without = spec_for(config, tmp_path / "r1", environ={})["environment"]
    assert "HF_TOKEN" not in without
    env = spec_for(config, tmp_path / "r1", environ={"HF_TOKEN": TOKEN, "SUMBENCH_INJECT_DELAY_S": "2"})["environment"]
    assert env["HF_TOKEN"] == TOKEN
    assert env["SUMBENCH_INJECT_DELAY_S"] == "2", "fault injection reaches a containerised worker"
    assert env["SUMBENCH_REVISION"] == "abc123" and env["PYTHONUNBUFFERED"] == "1" and env["HOME"] == "/tmp"
    legacy = spec_for(config, tmp_path / "r1", environ={"HUGGING_FACE_HUB_TOKEN": TOKEN})["environment"]
    assert legacy["HF_TOKEN"] == TOKEN
    layout = plan_layout(config, "r1", copy=False)
    assert TOKEN not in layout.container_config(config).model_dump_json()


def test_container_config_has_container_paths_and_result_gets_host_paths_back(tmp_path, finished_run):
    host = rundir.read_config(finished_run)
    layout = plan_layout(host, "e2e", copy=False)
    inner = layout.container_config(host)
    assert inner.data == "/inputs/data/howto-sample.jsonl" and inner.model == "/inputs/model"
    assert inner.model_dump(exclude={"data", "model"}) == host.model_dump(exclude={"data", "model"})
    # A result as a containerised worker writes it, with container paths; the host puts its own back.
    run_dir = tmp_path / "e2e"
    run_dir.mkdir()
    result = rundir.read_result(finished_run)
    assert result.dataset is not None
    rundir.write_result(
        run_dir,
        result.model_copy(update={"config": inner, "dataset": result.dataset.model_copy(update={"path": inner.data})}),
    )
    restore_host_paths(run_dir, host)
    restored = rundir.read_result(run_dir)
    assert restored.config == host and restored.dataset is not None and restored.dataset.path == host.data


def test_hub_snapshot_is_mounted_with_the_blobs_its_links_point_to(tmp_path):
    repo = tmp_path / "hub" / "models--org--m"
    snapshot, blobs = repo / "snapshots" / "abc", repo / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    (blobs / "1234").write_text("{}")
    (snapshot / "config.json").symlink_to("../../blobs/1234")
    layout = plan_layout(make_config(str(snapshot)), "r1", copy=False)
    assert layout.host_model == repo and layout.model == "/inputs/model/snapshots/abc"
    copied = plan_layout(make_config(str(snapshot)), "r1", copy=True)
    assert copied.host_model == snapshot and copied.model == "/inputs/model", "a copy follows the links instead"


@pytest.mark.parametrize(
    ("url", "remote"),
    [
        (None, False),
        ("unix:///var/run/docker.sock", False),
        ("tcp://127.0.0.1:2375", False),
        ("tcp://localhost:2376", False),
        ("ssh://me@gpu-vm", True),
        ("tcp://10.0.0.5:2376", True),
    ],
)
def test_remote_engines_are_told_apart(url, remote):
    assert is_remote(url) is remote
    if url:
        assert DockerExecutor(url).copy is remote, "a remote engine gets the files copied"


NVIDIA_SMI_OUTPUT = """\
NVIDIA H100 80GB HBM3, GPU-aaaa-1111, 81559, 9.0, 580.65.06
Tesla T4, GPU-bbbb-2222, 15360, 7.5, 580.65.06
NVIDIA A100-SXM4-40GB, GPU-cccc-3333, 40960, 8.0, 580.65.06
"""


def test_remote_gpus_come_from_nvidia_smi_and_are_picked_by_type():
    gpus = parse_nvidia_smi(NVIDIA_SMI_OUTPUT)
    assert [g.uuid for g in gpus] == ["GPU-aaaa-1111", "GPU-bbbb-2222", "GPU-cccc-3333"]
    assert gpus[0].memory_bytes == 81559 * 1024 * 1024 and gpus[1].compute_capability == "7.5"
    assert select_gpus(get_gpu("t4"), gpus, "ssh://me@vm") == ["GPU-bbbb-2222"]
    assert select_gpus(get_gpu("a100-40gb"), gpus, "ssh://me@vm") == ["GPU-cccc-3333"]


def test_no_gpu_of_the_type_lists_what_is_there():
    gpus = parse_nvidia_smi(NVIDIA_SMI_OUTPUT)
    with pytest.raises(UserError) as err:
        select_gpus(get_gpu("l4"), gpus, "ssh://me@vm")
    message = str(err.value)
    assert "no NVIDIA L4 (--gpu l4) on ssh://me@vm" in message
    assert "GPU-aaaa-1111 NVIDIA H100 80GB HBM3 (--gpu h100)" in message and "(--gpu t4)" in message
    assert "\n" not in message
    with pytest.raises(UserError, match="shows no NVIDIA GPU"):
        select_gpus(get_gpu("t4"), [], "the local Docker engine")


def test_gpu_uuid_pins_cards_without_discovery():
    executor = DockerExecutor(gpu_uuids=["GPU-x"])
    assert executor.gpu_uuids == ("GPU-x",)
    with pytest.raises(UserError, match="--gpu-uuid"):
        executor.prepare(make_config("m"), get_image("cpu"), get_gpu("cpu"))


def test_bakes_unknown_revision_is_not_passed_on():
    config = make_config("m")
    layout = plan_layout(config, "r1", copy=False)
    env = container_env(layout, network="none", copy=False, revision="unknown", environ={})
    assert "SUMBENCH_REVISION" not in env, "the worker then reads no revision rather than a wrong one"


def test_a_serving_runs_api_key_reaches_the_container_environment_only():
    config = make_config("m")
    layout = plan_layout(config, "r1", copy=False)
    environ = {"MY_ENDPOINT_KEY": "sk-abc", "OTHER": "x"}
    env = container_env(
        layout, network="none", copy=False, revision=None, environ=environ, api_key_env="MY_ENDPOINT_KEY"
    )
    assert env["MY_ENDPOINT_KEY"] == "sk-abc" and "OTHER" not in env
    assert "MY_ENDPOINT_KEY" not in container_env(layout, network="none", copy=False, revision=None, environ=environ)


def test_missing_image_message_names_the_bake_target():
    image = get_image("vllm-awq")
    ref = image.reference()
    assert missing_image_message(ref, image, "ssh://me@vm", "", __version__) == (
        f"image sumbench/vllm-awq:{__version__} not found on ssh://me@vm: build it with `DOCKER_HOST=ssh://me@vm "
        "REVISION=$(git rev-parse HEAD) docker buildx bake vllm-awq`, or push it to a registry (`REVISION=$(git "
        "rev-parse HEAD) REGISTRY=REGISTRY docker buildx bake --push vllm-awq`) and pass --registry"
    )
    pushed = missing_image_message(
        "registry.example.com/me/sumbench/cpu:dev", get_image("cpu"), "x", "registry.example.com/me", "dev"
    )
    assert "REGISTRY=registry.example.com/me TAG=dev docker buildx bake cpu`" in pushed
    assert "`docker pull registry.example.com/me/sumbench/cpu:dev`" in pushed


def test_repo_digest_picks_the_pushed_repository():
    digests = ["other/x@sha256:1", "registry.example.com:443/me/sumbench/cpu@sha256:2"]
    assert (
        repo_digest(digests, "registry.example.com:443/me/sumbench/cpu:0.1.0")
        == "registry.example.com:443/me/sumbench/cpu@sha256:2"
    )
    assert repo_digest([], "sumbench/cpu:0.1.0") is None


def test_log_lines_survive_chunks_that_split_lines_and_characters():
    data = "première ligne\r\nzweite Zeile\nlast".encode()
    chunks = [data[i : i + 3] for i in range(0, len(data), 3)]
    assert list(iter_lines(chunks)) == ["première ligne", "zweite Zeile", "last"]


def test_ssh_port_comes_from_the_users_ssh_config():
    # docker-py would run `ssh -p 22` for a URL without a port; `ssh -G` says what the config sets.
    assert ssh_config_port("user me\nhostname 10.0.0.5\nport 2222\nidentityfile ~/.ssh/id\n") == 2222
    assert ssh_config_port("hostname x\n") is None
    assert with_ssh_port("ssh://me@gpu-vm:2200") == "ssh://me@gpu-vm:2200", "a port in the URL wins"


def test_files_option_is_checked():
    with pytest.raises(UserError, match="mount"):
        DockerExecutor(files="rsync")


def test_nvml_and_nvidia_smi_describe_gpus_the_same_way():
    row = parse_nvidia_smi("Tesla T4, GPU-b, 15360, 7.5, 550.54.15")[0]
    assert isinstance(row, NvmlGpu) and row.index == 0 and row.name == "Tesla T4" and row.driver == "550.54.15"


# --- real containers --------------------------------------------------------------------------------------


ENGINE = docker_engine()
needs_engine = pytest.mark.skipif(ENGINE is None, reason="no Docker engine answers (set DOCKER_HOST)")


def _has_cpu_image() -> bool:
    if ENGINE is None:
        return False
    try:
        ENGINE.images.get(CPU_IMAGE)
    except Exception:
        return False
    return True


needs_cpu_image = pytest.mark.skipif(not _has_cpu_image(), reason=f"{CPU_IMAGE} is not built (make docker-ready)")


def leftovers(run_id: str) -> list:
    assert ENGINE is not None
    return ENGINE.containers.list(all=True, filters={"label": f"sumbench.run-id={run_id}"})


def check_run(run_dir: Path, model: Path, documents: int) -> dict:
    result = json.loads((run_dir / "result.json").read_text())
    jsonschema.validate(result, json.loads(SCHEMA_FILE.read_text()))
    assert result["status"] == "completed", result["error"]
    assert result["metrics"]["documents"] == documents
    assert len((run_dir / "docs.jsonl").read_text().splitlines()) == documents
    launch = result["config"]["launch"]
    assert launch["executor"] == "docker" and launch["image"] == CPU_IMAGE
    assert launch["image_id"] == ENGINE.images.get(CPU_IMAGE).id
    assert result["environment"]["launch"] == launch
    # Host paths in the result, container paths only in the record of what the container saw.
    assert result["config"]["model"] == str(model) and result["config"]["data"] == str(SAMPLE_DATASET)
    assert result["dataset"]["path"] == str(SAMPLE_DATASET)
    assert json.loads((run_dir / "config.json").read_text())["model"] == str(model)
    inner = json.loads((run_dir / "container-config.json").read_text())
    assert inner["model"] == "/inputs/model"
    # Resume checks are the host's: an image older than these fields still reads its config.
    assert "model_fingerprint" not in inner and result["config"]["model_fingerprint"].startswith("sha256:")
    assert "loaded" in (run_dir / "worker.log").read_text()
    assert "::sumbench::" in (run_dir / "output.log").read_text()
    for path in run_dir.iterdir():
        assert path.stat().st_uid == os.getuid(), f"{path.name} is not owned by the user who launched"
    return result


@pytest.mark.docker
@needs_cpu_image
def test_launch_in_a_container_collects_a_valid_result(cli, tiny_model, tmp_path):
    proc = cli(
        [
            "launch",
            "--image",
            "cpu",
            "--gpu",
            "cpu",
            "--executor",
            "docker",
            "--model",
            str(tiny_model),
            "--limit",
            "4",
            "--max-new-tokens",
            "8",
            "--batch-size",
            "2",
            "--results",
            str(tmp_path),
            "--run-id",
            "dk1",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_run(tmp_path / "dk1", tiny_model, 4)
    assert not leftovers("dk1"), "the container is removed after the run"


@pytest.mark.docker
@needs_cpu_image
def test_copy_mode_for_remote_engines_runs_and_brings_the_folder_back(tiny_model, tmp_path):
    from runner.launching import LaunchRequest, launch

    lines: list[str] = []
    req = LaunchRequest(
        model=str(tiny_model),
        data=str(SAMPLE_DATASET),
        limit=3,
        max_new_tokens=6,
        batch_size=3,
        results=tmp_path,
        run_id="dk-copy",
        executor="docker",
        executor_options={"files": "copy"},
    )
    run_dir, result = launch(req, lines.append)
    assert result.status == "completed"
    check_run(run_dir, tiny_model, 3)
    assert any(line.startswith("::sumbench::") for line in lines), "worker output streams to the console"
    assert not (run_dir / ".lock").exists() and not leftovers("dk-copy")


@pytest.mark.docker
@needs_cpu_image
def test_timeout_stops_the_container_and_keeps_a_result(cli, tiny_model, tmp_path):
    proc = cli(
        [
            "launch",
            "--executor",
            "docker",
            "--model",
            str(tiny_model),
            "--limit",
            "2",
            "--max-new-tokens",
            "4",
            "--results",
            str(tmp_path),
            "--run-id",
            "dk-slow",
            "--timeout",
            "20",
        ],
        env={"SUMBENCH_INJECT_DELAY_S": "120"},
    )
    result = json.loads((tmp_path / "dk-slow" / "result.json").read_text())
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert result["status"] == "failed" and result["error"]["error_class"] == "Timeout"
    assert not leftovers("dk-slow")


@pytest.mark.docker
@needs_cpu_image
def test_the_image_itself_tells_its_worker_the_revision():
    """k8s and sky pods pass no SUMBENCH_REVISION: the image sets it from REVISION, as its label."""
    image = ENGINE.images.get(CPU_IMAGE)
    label = image.labels.get("org.opencontainers.image.revision")
    probe = "from runner.worker.environment import git_revision; print(git_revision())"
    out = ENGINE.containers.run(
        CPU_IMAGE, ["-c", probe], entrypoint=["python"], network_mode="none", remove=True, environment={}
    )
    recorded = out.decode().strip()
    if label in (None, "", "unknown"):
        assert recorded == "None", "an image built without REVISION records no revision"
    else:
        assert recorded == label and "SUMBENCH_REVISION=" + label in image.attrs["Config"]["Env"]


@needs_engine
def test_missing_image_is_one_line_naming_the_bake_target(cli, tiny_model, tmp_path):
    proc = cli(
        ["launch", "--executor", "docker", "--model", str(tiny_model), "--results", str(tmp_path)],
        env={"SUMBENCH_TAG": "0.0.0-missing"},
    )
    assert proc.returncode == 2
    message = proc.stderr.strip()
    assert "\n" not in message, message
    assert "image sumbench/cpu:0.0.0-missing not found on" in message
    assert "`REVISION=$(git rev-parse HEAD) TAG=0.0.0-missing docker buildx bake cpu`" in message
    assert not any(tmp_path.iterdir()), "a refused launch leaves no run folder behind"


@pytest.mark.docker
@needs_cpu_image
def test_the_worker_runs_unprivileged_and_results_come_back_owned_by_the_host_user(tiny_model, tmp_path, monkeypatch):
    """Seen from the engine while the container runs: a non-root uid, no capabilities, no-new-privileges,
    read-only inputs; and every file the run leaves is the launching user's (root's too)."""
    import shutil
    import threading

    from runner.launching import LaunchRequest, launch

    model = shutil.copytree(tiny_model, tmp_path / "readable-model")
    for path in model.iterdir():  # transformers saves weights 0600: only its owner could mount them
        path.chmod(0o644)
    monkeypatch.setenv("SUMBENCH_INJECT_DELAY_S", "2")
    req = LaunchRequest(
        model=str(model), data=str(SAMPLE_DATASET), limit=4, max_new_tokens=4, batch_size=2,
        results=tmp_path / "results", run_id="dk-user", executor="docker",
    )  # fmt: skip
    done: list = []
    runner = threading.Thread(target=lambda: done.append(launch(req, lambda line: None)))
    runner.start()
    try:
        seen = None
        for _ in range(600):
            running = [c for c in leftovers("dk-user") if c.status == "running"] if not done else []
            if running:
                seen = running[0]
                break
            threading.Event().wait(0.2)
        assert seen is not None, "the container was never seen running"
        code, out = seen.exec_run("id -u")
        assert code == 0 and out.decode().strip() != "0", "the worker is not root in its container"
        host_config = seen.attrs["HostConfig"]
        assert host_config["CapDrop"] == ["ALL"] and host_config["SecurityOpt"] == ["no-new-privileges"]
        mounts = {m["Destination"]: m for m in seen.attrs["Mounts"]}
        assert not mounts["/inputs/model"]["RW"] and not mounts["/inputs/data/howto-sample.jsonl"]["RW"]
        assert mounts["/results/dk-user"]["RW"]
    finally:
        runner.join(300)
    run_dir, result = done[0]
    assert result.status == "completed", result.error
    for path in run_dir.iterdir():
        assert (path.stat().st_uid, path.stat().st_gid) == (os.getuid(), os.getgid()), path.name


def test_root_copies_inputs_its_containers_user_could_not_read_through_a_mount(tmp_path, monkeypatch):
    from runner.executors.docker.ownership import private_input

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"x")
    (model / "model.safetensors").chmod(0o600)
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    data.chmod(0o644)
    monkeypatch.setattr(os, "getuid", lambda: 0)
    assert private_input([data, model]) == model / "model.safetensors"
    (model / "model.safetensors").chmod(0o644)
    assert private_input([data, model]) is None
    monkeypatch.setattr(os, "getuid", lambda: 1234)
    data.chmod(0o600)
    assert private_input([data]) is None, "a non-root user's container runs as that user"


@pytest.mark.docker
@needs_cpu_image
def test_a_model_already_on_a_copying_engine_is_not_copied_again(tiny_model, tmp_path):
    """The local engine in copy mode, as a remote one is used: the model goes into a volume named by its
    fingerprint once; the next run of it there sends only the run folder and the dataset."""
    from runner.executors.docker.layout import model_volume
    from runner.fingerprint import model_fingerprint
    from runner.launching import LaunchRequest, launch

    volume = model_volume(model_fingerprint(str(tiny_model)))

    def drop_volume() -> None:
        with contextlib.suppress(Exception):
            ENGINE.volumes.get(volume).remove(force=True)

    drop_volume()
    said: list[str] = []
    try:
        for run_id in ("dk-vol-1", "dk-vol-2"):
            req = LaunchRequest(
                model=str(tiny_model), data=str(SAMPLE_DATASET), limit=2, max_new_tokens=4, batch_size=2,
                results=tmp_path, run_id=run_id, executor="docker",
                executor_options={"files": "copy", "progress": said.append},
            )  # fmt: skip
            run_dir, result = launch(req, lambda line: None)
            assert result.status == "completed", result.error
            check_run(run_dir, tiny_model, 2)
        assert [line.split(" ")[0] + " " + line.split(" ")[-1] for line in said if "model" in line] == [
            "copying " + volume,
            "model copied",
        ], said
        assert any(f"({volume}): not copied" in line for line in said)
    finally:
        drop_volume()
