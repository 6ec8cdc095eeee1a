"""Which image a run uses, and what it says about it: registry and tag for `runner launch`, names only a
local engine can hold refused for clusters, bake hints that carry REVISION (and DOCKER_HOST for a remote
engine), a warning for an image built without a revision, and the image a resumed run started in."""

from __future__ import annotations

import os

import pytest
from conftest import docker_engine, run_cli

from runner import __version__
from runner.contract.catalog import get_image
from runner.contract.errors import UserError
from runner.executors.docker.engine import bake_command, connect, missing_image_message


@pytest.mark.parametrize("target", ["sky", "k8s"])
def test_clusters_refuse_image_names_without_a_registry(tmp_path, target):
    proc = run_cli(
        ["matrix", "--target", target, "--images", "hf", "--gpus", "t4", "--model", "org/model", "--dry-run",
         "--results", str(tmp_path)],
        env={"SUMBENCH_REGISTRY": "", "SUMBENCH_TAG": __version__},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert f"--target {target} pulls sumbench/hf:{__version__}" in line and "has no registry" in line
    assert "--registry REG" in line and "--allow-local-images" in line and "REVISION=$(git rev-parse HEAD)" in line
    assert not any(tmp_path.iterdir())


def test_allow_local_images_belongs_to_the_clusters(tmp_path):
    proc = run_cli(["matrix", "--images", "cpu", "--model", "m", "--allow-local-images", "--results", str(tmp_path)])
    assert proc.returncode == 2 and "--allow-local-images applies to --target sky and k8s, not local" in proc.stderr


def test_launch_takes_registry_and_tag_for_docker_only(tiny_model, tmp_path):
    proc = run_cli(["launch", "--model", str(tiny_model), "--tag", "dev", "--results", str(tmp_path)])
    assert proc.returncode == 2 and "--tag name a container image: they need --executor docker" in proc.stderr
    help_text = " ".join(run_cli(["launch", "--help"], env={"COLUMNS": "300"}).stdout.split())
    assert "--registry TEXT" in help_text and "env var: SUMBENCH_REGISTRY" in help_text and "--tag TEXT" in help_text


def test_every_bake_hint_stamps_the_revision_and_a_remote_one_names_its_engine():
    image = get_image("hf")
    assert bake_command(image, "", __version__) == "REVISION=$(git rev-parse HEAD) docker buildx bake hf"
    remote = missing_image_message(image.reference(), image, "ssh://me@vm", "", __version__)
    assert "`DOCKER_HOST=ssh://me@vm REVISION=$(git rev-parse HEAD) docker buildx bake hf`" in remote
    assert "pass --registry" in remote
    local = missing_image_message(image.reference(), image, "the local Docker engine", "", __version__)
    assert "DOCKER_HOST" not in local and "REVISION=$(git rev-parse HEAD) docker buildx bake hf" in local


def test_an_unreachable_ssh_engine_is_not_told_to_start_docker():
    with pytest.raises(UserError) as info:
        connect("ssh://nobody@127.0.0.1:1")
    said = str(info.value)
    assert "cannot reach ssh://nobody@127.0.0.1:1" in said and "`ssh nobody@127.0.0.1:1`" in said
    assert "start Docker" not in said


ENGINE = docker_engine()
TAG = os.environ.get("SUMBENCH_TAG") or __version__


@pytest.mark.docker
@pytest.mark.skipif(ENGINE is None, reason="no Docker engine (DOCKER_HOST)")
def test_launch_warns_when_the_image_carries_no_revision(tiny_model, tmp_path):
    """An image tagged from the cpu image with its revision label reset, as a bake without REVISION makes it."""
    try:
        ENGINE.images.get(f"sumbench/cpu:{TAG}")
    except Exception:
        pytest.skip(f"sumbench/cpu:{TAG} is not built")
    import io

    dockerfile = f"FROM sumbench/cpu:{TAG}\nLABEL org.opencontainers.image.revision=unknown\n"
    ENGINE.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag="sumbench/cpu:norev-test", network_mode="none")
    try:
        proc = run_cli(
            ["launch", "--executor", "docker", "--model", str(tiny_model), "--limit", "1", "--max-new-tokens", "2",
             "--results", str(tmp_path), "--run-id", "norev"],
            env={"SUMBENCH_TAG": "norev-test"},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "warning: image sumbench/cpu:norev-test was built without REVISION" in proc.stderr
        assert "`REVISION=$(git rev-parse HEAD) TAG=norev-test docker buildx bake cpu`" in proc.stderr
    finally:
        ENGINE.images.remove("sumbench/cpu:norev-test", force=True)


@pytest.mark.docker
@pytest.mark.skipif(ENGINE is None, reason="no Docker engine (DOCKER_HOST)")
def test_a_resumed_run_refuses_an_image_rebuilt_under_its_name(tiny_model):
    """The image a run started in is recorded by id; another build under that tag would mix two workers'
    code in one result."""
    from runner.contract.catalog import get_gpu
    from runner.contract.schema import LaunchInfo, RunConfig
    from runner.executors.docker import DockerExecutor

    ref = f"sumbench/cpu:{TAG}"
    try:
        ENGINE.images.get(ref)
    except Exception:
        pytest.skip(f"{ref} is not built")
    started = LaunchInfo(executor="docker", image=ref, image_id="sha256:" + "0" * 64)
    config = RunConfig(run_id="r", model=str(tiny_model), data="d.jsonl", launch=started)
    with pytest.raises(UserError) as info:
        DockerExecutor().prepare(config, get_image("cpu"), get_gpu("cpu"))
    assert f"image {ref} on" in str(info.value) and "is not the one this run started in" in str(info.value)
    assert "sha256:000000000000 then" in str(info.value)
