"""SkyPilot target: one task per cell, rendered for a T4 x A100 x H100 matrix and read by SkyPilot itself.

SkyPilot pins click below 8.2 while huggingface_hub (a worker dependency) needs 8.4 or newer, so it
cannot share the development environment. Its parser runs in-process when ``sky`` imports here, else in
the SkyPilot environment named by SUMBENCH_SKY_PYTHON (default ``.cache/venv-sky/bin/python``, see
docs/scale-out.md), else the parser test is skipped with that reason. Parsing needs no cloud account.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from runner import matrix
from runner.contract.errors import UserError
from runner.contract.schema import RunConfig
from runner.launching import LaunchRequest
from runner.paths import REPO_ROOT, SAMPLE_DATASET
from runner.targets.sky import SkyOptions, cluster_name, run_script

HUB_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
IMAGES = ["hf", "hf-flash", "vllm-awq"]
SCENARIOS = ["default", "flash-attn", "vllm-awq"]
GPUS = ["t4", "a100-80gb", "h100"]
SKYPILOT_NAMES = {"t4": "T4:1", "a100-80gb": "A100-80GB:1", "h100": "H100:1"}


def render(tmp_path: Path, options: SkyOptions, model: str = HUB_MODEL, on_line=print, **kw) -> matrix.MatrixManifest:
    fields = dict(
        images=IMAGES,
        scenarios=SCENARIOS,
        gpus=GPUS,
        batch_sizes=[1, 8],
        base=LaunchRequest(model=model, data=str(SAMPLE_DATASET), limit=20, max_new_tokens=128),
        target="sky",
        results=tmp_path,
        matrix_id="sky-m",
        registry="registry.example.com/you",
        tag="0.1.0",
        options=options,
    )
    fields.update(kw)
    return matrix.run(matrix.MatrixRequest(**fields), on_line, dry_run=True)


@pytest.fixture
def spot_matrix(tmp_path) -> tuple[Path, matrix.MatrixManifest]:
    options = SkyOptions(bucket="s3://my-bucket/sumbench", spot=True, max_restarts=2)  # MOUNT_CACHED by default
    return tmp_path / "sky-m", render(tmp_path, options)


def planned(manifest):
    return [c for c in manifest.cells if c.status == "planned"]


def test_one_task_per_runnable_cell(spot_matrix):
    folder, manifest = spot_matrix
    assert len(planned(manifest)) == 22  # 11 image/scenario/GPU cells x 2 batch sizes
    for cell in manifest.cells:
        task_file = folder / cell.run_id / "task.yaml"
        assert task_file.exists() == (cell.status == "planned"), cell.run_id
    flash_t4 = next(c for c in manifest.cells if c.run_id == "hf-flash-t4-flash-attn-bs1")
    assert flash_t4.status == "dropped" and "FlashAttention-2" in flash_t4.reason


def test_task_names_gpu_image_inputs_and_worker(spot_matrix):
    folder, manifest = spot_matrix
    for cell in planned(manifest):
        task = yaml.safe_load((folder / cell.run_id / "task.yaml").read_text())
        resources = task["resources"]
        assert resources["accelerators"] == SKYPILOT_NAMES[cell.gpu]
        assert resources["image_id"] == f"docker:registry.example.com/you/sumbench/{cell.image}:0.1.0"
        assert resources["use_spot"] is True
        assert resources["job_recovery"] == {"max_restarts_on_errors": 2}
        mounts = task["file_mounts"]
        assert mounts["/sumbench/data/howto-sample.jsonl"] == str(SAMPLE_DATASET)
        assert mounts["/sumbench/config/config.json"] == str(folder / cell.run_id / "config.json")
        assert mounts["/sumbench/results"] == {"source": "s3://my-bucket/sumbench", "mode": "MOUNT_CACHED"}
        assert 'python -m runner.worker "$run_dir"' in task["run"]
        assert task["run"].startswith(f'run_dir="/sumbench/results/sky-m/{cell.run_id}"')  # in the bucket itself

        config = RunConfig.model_validate_json((folder / cell.run_id / "config.json").read_text())
        assert config.data == "/sumbench/data/howto-sample.jsonl" and config.model == HUB_MODEL
        assert (config.image, config.gpu, config.scenario) == (cell.image, cell.gpu, cell.scenario)
        assert config.batch_size == cell.batch_size and config.limit == 20 and config.max_new_tokens == 128
        assert config.launch.executor == "sky" and config.launch.image == resources["image_id"][len("docker:") :]
        assert cell.where == f"sky managed job {cluster_name('sky-m', cell.run_id)}"


def test_on_demand_without_a_bucket_is_a_plain_cluster(tmp_path):
    manifest = render(tmp_path, SkyOptions(infra="gcp"), images=["hf"], scenarios=None)
    cell = planned(manifest)[0]
    task = yaml.safe_load((tmp_path / "sky-m" / cell.run_id / "task.yaml").read_text())
    assert "use_spot" not in task["resources"] and "job_recovery" not in task["resources"]
    assert task["resources"]["infra"] == "gcp"
    assert "/sumbench/results" not in task["file_mounts"] and "cp -r" not in task["run"]
    assert cell.where.startswith("sky cluster sumbench-")


def test_mount_cached_bucket_holds_the_run_folder_itself():
    script = run_script("m", "r", SkyOptions(bucket="gs://b/x", bucket_mode="MOUNT_CACHED"))
    assert script.startswith('run_dir="/sumbench/results/m/r"') and "cp -r" not in script
    assert script.rstrip().endswith('exit "$status"')


def test_a_local_model_folder_is_mounted(tmp_path):
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    manifest = render(tmp_path, SkyOptions(), model=str(model), images=["hf"], scenarios=None, gpus=["t4"])
    cell = planned(manifest)[0]
    task = yaml.safe_load((tmp_path / "sky-m" / cell.run_id / "task.yaml").read_text())
    assert task["file_mounts"]["/sumbench/model/my-model"] == str(model)
    config = RunConfig.model_validate_json((tmp_path / "sky-m" / cell.run_id / "config.json").read_text())
    assert config.model == "/sumbench/model/my-model"


def test_cpu_cells_ask_for_cpus_not_accelerators(tmp_path):
    manifest = render(tmp_path, SkyOptions(), images=["cpu"], scenarios=None, gpus=["cpu"])
    task = yaml.safe_load((tmp_path / "sky-m" / planned(manifest)[0].run_id / "task.yaml").read_text())
    assert "accelerators" not in task["resources"] and task["resources"]["cpus"] == "4+"


def configs(folder: Path, manifest: matrix.MatrixManifest) -> dict[str, RunConfig]:
    return {
        c.run_id: RunConfig.model_validate_json((folder / c.run_id / "config.json").read_text())
        for c in planned(manifest)
    }


def test_spot_cells_record_no_price_unless_one_is_given(tmp_path):
    """The catalog's prices are on-demand ones (AWS us-east-1): a spot cell priced by them would show a cost
    several times too high, as a fact. No price shows as missing, and says why."""
    lines: list[str] = []
    fields = dict(images=["hf"], scenarios=None, gpus=["t4", "h100"], batch_sizes=[1], on_line=lines.append)
    manifest = render(tmp_path / "a", SkyOptions(spot=True, bucket="s3://b/s"), prices={"t4": 0.2}, **fields)
    by_gpu = {config.gpu: config for config in configs(tmp_path / "a" / "sky-m", manifest).values()}
    assert (by_gpu["t4"].price_per_hour_usd, by_gpu["t4"].price_source) == (0.2, "given: --price-per-hour")
    assert by_gpu["h100"].price_per_hour_usd is None
    assert by_gpu["h100"].price_source.startswith("none: --spot bills at a spot price")
    assert lines == [
        "warning: no price recorded for h100 ($/1k docs will be missing): --spot bills at a spot price, which "
        "moves and is below the catalog's on-demand one; pass --price-per-hour GPU=USD to record it"
    ]

    # On demand, the catalog's price where the catalog's cloud is in reach, with where it comes from.
    manifest = render(tmp_path / "b", SkyOptions(infra="aws/us-east-1"), **fields)
    by_gpu = {config.gpu: config for config in configs(tmp_path / "b" / "sky-m", manifest).values()}
    assert by_gpu["t4"].price_per_hour_usd == 0.526
    assert by_gpu["t4"].price_source == "catalog: AWS g4dn.xlarge (1x T4), us-east-1, on-demand, 2024"
    # --infra on another cloud: the AWS price is not what that cloud bills.
    manifest = render(tmp_path / "c", SkyOptions(infra="gcp"), prices={"*": 1.5, "t4": 0.35}, **fields)
    by_gpu = {config.gpu: config for config in configs(tmp_path / "c" / "sky-m", manifest).values()}
    assert {g: c.price_per_hour_usd for g, c in by_gpu.items()} == {"t4": 0.35, "h100": 1.5}
    manifest = render(tmp_path / "d", SkyOptions(infra="gcp"), **fields)
    assert all(
        c.price_per_hour_usd is None and c.price_source.startswith("none: --infra gcp: the catalog's")
        for c in configs(tmp_path / "d" / "sky-m", manifest).values()
    )


def test_spot_keeps_its_run_folders_in_the_bucket_and_says_when_it_cannot(tmp_path):
    """A preempted managed job resumes only from a run folder in the bucket (MOUNT_CACHED)."""
    assert SkyOptions(spot=True, bucket="s3://b/s").bucket_mode == "MOUNT_CACHED"
    assert SkyOptions(max_restarts=1, bucket="s3://b/s").bucket_mode == "MOUNT_CACHED"
    assert SkyOptions(bucket="s3://b/s").bucket_mode == "MOUNT"  # on demand nothing restarts it
    fields = dict(images=["hf"], scenarios=None, gpus=["t4"], batch_sizes=[1], prices={"t4": 0.2})
    for options, warning in (
        (SkyOptions(spot=True, bucket="s3://b/s", bucket_mode="MOUNT"), "--spot with --bucket-mode MOUNT: a "),
        (SkyOptions(spot=True), "--spot without --bucket: a restarted cell starts over"),
        (SkyOptions(max_restarts=2), "--max-restarts 2 without --bucket: "),
        (SkyOptions(spot=True, bucket="s3://b/s"), None),
    ):
        lines: list[str] = []
        render(tmp_path / str(len(list(tmp_path.iterdir()))), options, on_line=lines.append, **fields)
        assert [line.startswith(f"warning: {warning}") for line in lines] == ([True] if warning else [])


def test_a_dry_run_ends_with_the_command_that_launches_it(tmp_path, capsys):
    from runner.cli import main

    args = ["matrix", "--target", "sky", "--allow-local-images", "--images", "hf", "--gpus", "t4"]
    args += ["--model", HUB_MODEL, "--spot"]
    args += ["--bucket", "s3://b/s", "--price-per-hour", "t4=0.2", "--max-parallel", "2"]
    args += ["--results", str(tmp_path), "--matrix-id", "m1", "--batch-sizes", "1,auto"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--dry-run"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 0, err
    assert "the same command with --matrix-id" not in err, "the same command would only dry-run again"
    assert f"SkyPilot tasks: {tmp_path / 'm1'}/*/task.yaml" in err
    launch = next(line for line in err.splitlines() if line.startswith("to launch them")).split(": ", 2)[2]
    words = shlex.split(launch)
    assert words[:2] == ["runner", "matrix"] and "--dry-run" not in words and launch.endswith("--matrix-id m1")
    assert "--spot" in words and "--batch-sizes 1,auto" in launch and "--price-per-hour t4=0.2" in launch

    base = LaunchRequest(model=HUB_MODEL, data=str(SAMPLE_DATASET))
    again = matrix.MatrixRequest(images=["hf"], gpus=["t4"], batch_sizes=[1, "auto"], base=base, target="sky")
    again.results, again.matrix_id, again.prices = tmp_path, "m1", {"t4": 0.2}
    again.options = SkyOptions(spot=True, bucket="s3://b/s", max_parallel=2)
    assert matrix.plan(again, dry_run=True).id == "m1"  # the same settings: it continues that matrix


def test_option_mistakes_are_user_errors():
    with pytest.raises(UserError, match="bucket URL"):
        SkyOptions(bucket="my-bucket")
    with pytest.raises(UserError, match="managed jobs"):
        SkyOptions(spot=True, keep_clusters=True)
    with pytest.raises(UserError, match="--max-parallel"):
        SkyOptions(max_parallel=-1)


@pytest.mark.skipif(importlib.util.find_spec("sky") is not None, reason="SkyPilot is installed here")
def test_launching_without_skypilot_says_how_to_install(tmp_path):
    fields = dict(
        images=["hf"],
        gpus=["t4"],
        batch_sizes=[1],
        base=LaunchRequest(model=HUB_MODEL, data=str(SAMPLE_DATASET)),
        target="sky",
        results=tmp_path,
        options=SkyOptions(),
    )
    with pytest.raises(UserError, match=r"its own venv, `make sky-env`"):
        matrix.run(matrix.MatrixRequest(**fields), print)


# --- SkyPilot's own parser -------------------------------------------------------------------------------

PARSE = """
import json, sys
import sky
out = {}
for path in sys.argv[1:]:
    task = sky.Task.from_yaml(path)
    (resources,) = task.resources
    out[path] = {
        "accelerators": resources.accelerators,
        "image": resources.extract_docker_image(),
        "use_spot": resources.use_spot,
        "job_recovery": resources.job_recovery,
        "file_mounts": sorted(task.file_mounts or {}),
        "storage_mounts": {dst: storage.source for dst, storage in task.storage_mounts.items()},
        "run": task.run,
        # A task's `config:` block ends up as the resources' cluster config overrides.
        "docker_run_options": resources.cluster_config_overrides.get("docker", {}).get("run_options"),
    }
print(json.dumps(out))
"""


def skypilot_python() -> str | None:
    if importlib.util.find_spec("sky") is not None:
        return sys.executable
    candidate = os.environ.get("SUMBENCH_SKY_PYTHON") or str(REPO_ROOT / ".cache" / "venv-sky" / "bin" / "python")
    return candidate if Path(candidate).is_file() else None


def test_skypilot_reads_every_task(spot_matrix):
    python = skypilot_python()
    if python is None:
        pytest.skip("SkyPilot is not installed here nor in .cache/venv-sky (make sky-env, or SUMBENCH_SKY_PYTHON)")
    folder, manifest = spot_matrix
    cells = {str(folder / c.run_id / "task.yaml"): c for c in planned(manifest)}
    proc = subprocess.run(
        [python, "-c", PARSE, *cells],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SKYPILOT_DISABLE_USAGE_COLLECTION": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(parsed) == set(cells)
    for path, task in parsed.items():
        cell = cells[path]
        name, count = SKYPILOT_NAMES[cell.gpu].split(":")
        assert task["accelerators"] == {name: int(count)}
        assert task["image"] == f"registry.example.com/you/sumbench/{cell.image}:0.1.0"
        assert task["use_spot"] is True and task["job_recovery"]["max_restarts_on_errors"] == 2
        assert task["file_mounts"] == ["/sumbench/config/config.json", "/sumbench/data/howto-sample.jsonl"]
        assert task["storage_mounts"] == {"/sumbench/results": "s3://my-bucket/sumbench"}
        assert "python -m runner.worker" in task["run"]
        assert task["docker_run_options"] == ["--user=root"]


def test_skypilot_refuses_a_broken_task(tmp_path):
    """The parser check above means something: SkyPilot does reject a task with a misspelled field."""
    python = skypilot_python()
    if python is None:
        pytest.skip("SkyPilot is not installed here nor in .cache/venv-sky")
    bad = tmp_path / "task.yaml"
    bad.write_text("resources:\n  acelerators: T4:1\nrun: echo\n")
    proc = subprocess.run(
        [python, "-c", PARSE, str(bad)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SKYPILOT_DISABLE_USAGE_COLLECTION": "1"},
    )
    assert proc.returncode != 0 and "accelerators" in proc.stderr


# --- launching, against a stand-in for SkyPilot's client ------------------------------------------------


class FakeSky:
    """The calls SkyPilot's Python API gets from the target: Task.from_yaml, launch/get, tail_logs, jobs."""

    def __init__(self, result: dict) -> None:
        self.calls: list[tuple] = []
        self.result_line = "::sumbench:: " + json.dumps({"event": "result", "status": "completed", "result": result})
        fake = self

        class Task:
            @staticmethod
            def from_yaml(path):
                task = SimpleNamespace(path=path, secrets={})
                task.update_secrets = task.secrets.update
                return task

        class Jobs:
            @staticmethod
            def launch(task, name):
                fake.calls.append(("jobs.launch", name, task.secrets))
                return ("request", ([7], "handle"))

            @staticmethod
            def tail_logs(job_id, follow, preload_content):
                fake.calls.append(("jobs.tail_logs", job_id, follow, preload_content))
                return iter(["(task, pid=1) started\n(task, pid=1) ", fake.result_line + "\n", None])

        self.Task, self.jobs = Task, Jobs

    def launch(self, task, cluster_name, down):
        self.calls.append(("launch", cluster_name, down, task.secrets))
        return ("request", (3, "handle"))

    def get(self, request):
        return request[1]

    def tail_logs(self, cluster_name, job_id, follow, preload_content):
        self.calls.append(("tail_logs", cluster_name, job_id, follow, preload_content))
        return iter(["(task, pid=1) ", self.result_line, "\n"])


def launch_with(
    fake: FakeSky, tmp_path: Path, options: SkyOptions, monkeypatch, on_line=lambda line: None, **kw
) -> matrix.MatrixManifest:
    from runner.targets import sky as sky_target

    monkeypatch.setattr(sky_target, "require", lambda *args: fake)
    monkeypatch.setattr(sky_target, "_check_ready", lambda sky: None)
    fields = dict(
        images=["hf"],
        gpus=["t4", "h100"],
        batch_sizes=[1],
        target="sky",
        results=tmp_path,
        matrix_id="sky-m",
        base=LaunchRequest(model=HUB_MODEL, data=str(SAMPLE_DATASET)),
        options=options,
    )
    return matrix.run(matrix.MatrixRequest(**{**fields, **kw}), on_line)


def test_each_cell_is_launched_torn_down_and_its_result_read_from_the_log(tmp_path, monkeypatch, finished_run):
    result = json.loads((finished_run / "result.json").read_text())
    fake = FakeSky(result)
    manifest = launch_with(fake, tmp_path, SkyOptions(), monkeypatch)
    names = {cluster_name("sky-m", c.run_id) for c in manifest.cells}
    assert {call[1] for call in fake.calls if call[0] == "launch"} == names
    assert all(call[2] is True for call in fake.calls if call[0] == "launch"), "down=True: no cluster left behind"
    assert {(c[1], c[2], c[3], c[4]) for c in fake.calls if c[0] == "tail_logs"} == {(n, 3, True, False) for n in names}
    for cell in manifest.cells:
        assert (cell.status, cell.result_status) == ("done", "completed")
        assert cell.where == f"sky cluster {cluster_name('sky-m', cell.run_id)}"
        assert json.loads((tmp_path / "sky-m" / cell.run_id / "result.json").read_text()) == result
        assert "started" in (tmp_path / "sky-m" / cell.run_id / "sky.log").read_text()


def test_spot_cells_are_managed_jobs_and_the_token_stays_out_of_files(tmp_path, monkeypatch, finished_run):
    monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 30)
    fake = FakeSky(json.loads((finished_run / "result.json").read_text()))
    manifest = launch_with(fake, tmp_path, SkyOptions(spot=True, bucket="s3://b/s", hf_token=True), monkeypatch)
    launches = [c for c in fake.calls if c[0] == "jobs.launch"]
    assert len(launches) == 2 and all(c[2] == {"HF_TOKEN": "hf_" + "x" * 30} for c in launches)
    assert not [c for c in fake.calls if c[0] == "launch"]
    assert all(c.status == "done" and c.where.endswith("(id 7)") for c in manifest.cells)
    written = "".join(p.read_text() for p in (tmp_path / "sky-m").rglob("*") if p.is_file())
    assert "hf_xxxx" not in written


def test_at_most_max_parallel_cells_run_at_once(tmp_path, monkeypatch, finished_run):
    """Each cell is a cluster: a matrix of 18 cells must not ask a cloud for 18 GPU machines at once."""
    result = json.loads((finished_run / "result.json").read_text())
    running, most, expected, turn = [0], [0], [0], threading.Condition()

    class SlowSky(FakeSky):
        def tail_logs(self, cluster_name, job_id, follow, preload_content):
            with turn:  # each job runs until as many as may run at once are running (or 5 s pass)
                running[0] += 1
                most[0] = max(most[0], running[0])
                turn.notify_all()
                turn.wait_for(lambda: running[0] >= expected[0], timeout=5)
            with turn:
                running[0] -= 1
            return super().tail_logs(cluster_name, job_id, follow, preload_content)

    lines: list[str] = []
    for limit, at_once in ((2, 2), (0, 6)):
        running[0], most[0], expected[0] = 0, 0, at_once
        fake = SlowSky(result)
        options = SkyOptions(max_parallel=limit)
        manifest = launch_with(fake, tmp_path / str(limit), options, monkeypatch, lines.append, batch_sizes=[1, 2, 3])
        assert most[0] == at_once and len([c for c in fake.calls if c[0] == "launch"]) == 6
        assert all(c.status == "done" for c in manifest.cells)
    assert "6 cells, 2 at a time (--max-parallel 2)" in lines


def test_a_gated_model_needs_no_local_token_to_render_and_hf_token_to_launch(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    gated = "meta-llama/Llama-2-7b-chat-hf"
    fields = dict(images=["hf"], scenarios=None, gpus=["a100-80gb", "h100"])
    # A dry run asks for what the command must carry: without --hf-token the real run would be refused.
    with pytest.raises(UserError, match=f"{gated} is gated .* pass --hf-token to hand each task your HF_TOKEN"):
        render(tmp_path, SkyOptions(), gated, **fields)
    assert not (tmp_path / "sky-m").exists()
    lines: list[str] = []
    manifest = render(tmp_path, SkyOptions(hf_token=True), gated, on_line=lines.append, **fields)
    assert {c.status for c in manifest.cells} == {"planned"}  # no token here: a dry run hands none on
    assert lines == [
        "warning: --hf-token hands on this machine's HF_TOKEN, which is not set: set it before the real run"
    ]
    base = LaunchRequest(model=gated, data=str(SAMPLE_DATASET))
    request = matrix.MatrixRequest(images=["hf"], gpus=["h100"], batch_sizes=[1], base=base, target="sky")
    request.results, request.options = tmp_path / "real", SkyOptions()
    with pytest.raises(UserError, match=f"{gated} is gated .* pass --hf-token to hand each task your HF_TOKEN"):
        matrix.plan(request)
    request.options = SkyOptions(hf_token=True)  # HF_TOKEN is read at launch: unset, nothing is planned
    with pytest.raises(UserError, match="--hf-token passes the local HF_TOKEN to each task, but HF_TOKEN is not set"):
        matrix.plan(request)
    assert not (tmp_path / "real").exists()
    assert matrix.plan(request, dry_run=True).cells  # a dry run hands no token on and needs none


def test_sky_not_ready_is_refused_before_the_matrix_folder_is_made(tmp_path, monkeypatch):
    from runner.targets import sky as sky_target

    def not_ready(sky):
        raise UserError("SkyPilot is not ready (ConnectionError: no API server); run `sky api info` and `sky check`")

    monkeypatch.setattr(sky_target, "require", lambda *args: object())
    monkeypatch.setattr(sky_target, "_check_ready", not_ready)
    base = LaunchRequest(model=HUB_MODEL, data=str(SAMPLE_DATASET))
    request = matrix.MatrixRequest(images=["hf"], gpus=["h100"], batch_sizes=[1], base=base, target="sky")
    request.results, request.options = tmp_path / "m", SkyOptions()
    with pytest.raises(UserError, match="SkyPilot is not ready"):
        matrix.run(request, lambda line: None)
    assert not (tmp_path / "m").exists()
    assert matrix.run(request, lambda line: None, dry_run=True).cells  # rendering needs no SkyPilot


API_CHECK = """
import inspect, sky
from sky.client import sdk
task = sky.Task(run="true")
inspect.signature(sky.launch).bind(task, cluster_name="c", down=True)
inspect.signature(sky.get).bind("request")
inspect.signature(sky.tail_logs).bind("c", 1, follow=True, preload_content=False)
inspect.signature(sky.jobs.launch).bind(task, name="n")
inspect.signature(sky.jobs.tail_logs).bind(job_id=1, follow=True, preload_content=False)
inspect.signature(sdk.enabled_clouds).bind()
assert callable(task.update_secrets)
print("ok")
"""


def test_the_calls_the_stand_in_answers_exist_in_skypilot():
    """Keeps FakeSky honest: every call the target makes binds to the installed SkyPilot's signatures."""
    python = skypilot_python()
    if python is None:
        pytest.skip("SkyPilot is not installed here nor in .cache/venv-sky")
    proc = subprocess.run(
        [python, "-c", API_CHECK],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SKYPILOT_DISABLE_USAGE_COLLECTION": "1"},
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
