"""``runner matrix``: expansion and dropped cells, the manifest, dispatch per host, and real matrices.

The local matrix runs for real (the tiny model, the process executor); the Docker one runs for real when
an engine and the cpu image are there. Dispatch order is checked with a stand-in for ``launching.launch``
because what matters there is which cells overlap in time, not what they compute.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import __version__, matrix
from runner.contract import catalog, nvml
from runner.contract.errors import UserError
from runner.launching import LaunchRequest
from runner.paths import SAMPLE_DATASET, SCHEMA_FILE
from runner.targets import collect_output, to_yaml
from runner.targets.docker import DispatchTarget, DockerOptions, parse_hosts

HUB_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"  # a hub id: planning checks its shape, nothing is downloaded
IMAGES = ["hf", "hf-flash", "vllm-awq"]
SCENARIOS = ["default", "flash-attn", "vllm-awq"]
GPUS = ["t4", "a100-80gb", "h100", "v100-16gb"]


def cells_by_key(cells):
    return {(c.image, c.scenario, c.gpu, c.batch_size): c for c in cells}


# --- expansion -------------------------------------------------------------------------------------------


def test_expansion_drops_what_cannot_run_and_says_why():
    cells = matrix.expand(IMAGES, SCENARIOS, GPUS, [1, 8])
    assert len(cells) == len(IMAGES) * len(SCENARIOS) * len(GPUS) * 2
    assert len({c.run_id for c in cells}) == len(cells), "run ids name distinct folders"
    by = cells_by_key(cells)

    flash_t4 = by[("hf-flash", "flash-attn", "t4", 8)]
    assert flash_t4.status == "dropped" and "FlashAttention-2 needs an Ampere GPU" in flash_t4.reason
    for gpu in ("a100-80gb", "h100"):
        assert by[("hf-flash", "flash-attn", gpu, 8)].status == "planned"

    hf_v100 = by[("hf", "default", "v100-16gb", 1)]
    assert hf_v100.status == "dropped" and "no kernels for compute capability 7.0" in hf_v100.reason

    hf_flash_scenario = by[("hf", "flash-attn", "a100-80gb", 1)]
    assert hf_flash_scenario.status == "dropped" and "does not run scenario flash-attn" in hf_flash_scenario.reason

    awq_t4 = by[("vllm-awq", "vllm-awq", "t4", 1)]
    assert awq_t4.status == "planned" and awq_t4.reason is None  # AWQ needs 7.5; a T4 is 7.5
    assert by[("vllm-awq", "default", "h100", 1)].status == "dropped"  # an hf scenario in a vLLM image

    planned = {(c.image, c.scenario, c.gpu) for c in cells if c.status == "planned"}
    assert planned == {
        ("hf", "default", "t4"),
        ("hf", "default", "a100-80gb"),
        ("hf", "default", "h100"),
        ("hf-flash", "default", "t4"),
        ("hf-flash", "default", "a100-80gb"),
        ("hf-flash", "default", "h100"),
        ("hf-flash", "default", "v100-16gb"),  # its torch (2.8, CUDA 12.8) still ships sm_70
        ("hf-flash", "flash-attn", "a100-80gb"),
        ("hf-flash", "flash-attn", "h100"),
        ("vllm-awq", "vllm-awq", "t4"),
        ("vllm-awq", "vllm-awq", "a100-80gb"),
        ("vllm-awq", "vllm-awq", "h100"),
    }


def test_without_scenarios_each_image_runs_its_default():
    cells = matrix.expand(["hf", "hf-bnb"], None, ["a100-80gb"], [1])
    assert [(c.image, c.scenario) for c in cells] == [("hf", "default"), ("hf-bnb", "4-bit")]


def test_dynamic_batch_size_is_dropped_for_hf_scenarios():
    by = cells_by_key(matrix.expand(["hf", "vllm"], None, ["a100-80gb"], ["dynamic"]))
    assert by[("hf", "default", "a100-80gb", "dynamic")].status == "dropped"
    assert "vLLM" in by[("hf", "default", "a100-80gb", "dynamic")].reason
    assert by[("vllm", "vllm", "a100-80gb", "dynamic")].status == "planned"


def test_unknown_names_are_user_errors():
    with pytest.raises(UserError, match="unknown GPU"):
        matrix.expand(["hf"], None, ["t5"], [1])
    with pytest.raises(UserError, match="unknown scenario"):
        matrix.expand(["hf"], ["fast"], ["t4"], [1])


# --- the manifest ----------------------------------------------------------------------------------------


def request(tmp_path: Path, target: str = "local", options=None, **kw) -> matrix.MatrixRequest:
    fields = dict(
        images=IMAGES,
        scenarios=SCENARIOS,
        gpus=GPUS,
        batch_sizes=[1, 8],
        base=LaunchRequest(model=HUB_MODEL, data=str(SAMPLE_DATASET), limit=3),
        target=target,
        results=tmp_path,
        matrix_id="m",
        options=options,
    )
    fields.update(kw)
    return matrix.MatrixRequest(**fields)


def test_dry_run_writes_a_manifest_that_lists_every_cell(tmp_path):
    lines: list[str] = []
    manifest = matrix.run(request(tmp_path, "docker"), lines.append, dry_run=True)
    on_disk = json.loads((tmp_path / "m" / "matrix.json").read_text())
    assert matrix.MatrixManifest.model_validate(on_disk) == manifest
    assert on_disk["kind"] == "sumbench-matrix" and on_disk["schema_version"] == 1
    assert on_disk["target"] == "docker" and on_disk["request"]["gpus"] == GPUS
    statuses = {c["status"] for c in on_disk["cells"]}
    assert statuses == {"planned", "dropped"}
    assert all(c["reason"] for c in on_disk["cells"] if c["status"] == "dropped")
    assert all(c["where"] == "docker local engine" for c in on_disk["cells"] if c["status"] == "planned")
    assert not any((tmp_path / "m" / c["run_id"] / "result.json").exists() for c in on_disk["cells"])
    assert lines == []


def test_read_manifest_rejects_a_folder_without_one(tmp_path):
    with pytest.raises(UserError, match="not a matrix folder"):
        matrix.read_manifest(tmp_path)


# --- reusing a matrix id, refusals ------------------------------------------------------------------------


def test_a_matrix_id_asked_something_else_is_refused_and_its_record_kept(tmp_path):
    first = matrix.run(request(tmp_path, "docker"), print, dry_run=True)
    on_disk = (tmp_path / "m" / "matrix.json").read_text()
    with pytest.raises(UserError, match=r"already holds a matrix with other settings \(scenarios: .*batch_sizes"):
        matrix.run(request(tmp_path, "docker", scenarios=["default"], batch_sizes=[1]), print, dry_run=True)
    with pytest.raises(UserError, match="other settings \\(target: 'docker' -> 'local'"):
        matrix.run(request(tmp_path, "local", gpus=["cpu"]), print, dry_run=True)
    assert (tmp_path / "m" / "matrix.json").read_text() == on_disk

    # The same request again (only shown more verbosely) continues the same matrix.
    again = matrix.run(request(tmp_path, "docker", DockerOptions(verbose=True)), print, dry_run=True)
    assert again.created_at == first.created_at
    assert [c.run_id for c in again.cells] == [c.run_id for c in first.cells]


def test_a_matrix_resumed_from_another_folder_names_the_same_data(tmp_path, monkeypatch):
    """`--data data/x.jsonl` from the repo root and the absolute path are one dataset: resuming the
    matrix from elsewhere must not be refused as other settings (nor point at another file)."""
    monkeypatch.chdir(SAMPLE_DATASET.parent.parent)
    relative = dataclasses.replace(request(tmp_path, "docker").base, data=str(SAMPLE_DATASET.relative_to(Path.cwd())))
    first = matrix.run(request(tmp_path, "docker", base=relative), print, dry_run=True)
    assert first.request["data"] == str(SAMPLE_DATASET.resolve())
    monkeypatch.chdir(tmp_path)
    again = matrix.run(request(tmp_path, "docker"), print, dry_run=True)  # the absolute path, from elsewhere
    assert again.created_at == first.created_at


def test_a_matrix_id_naming_another_folder_is_refused(tmp_path):
    (tmp_path / "m" / "some-run").mkdir(parents=True)
    with pytest.raises(UserError, match="exists and is not a matrix folder"):
        matrix.run(request(tmp_path, "docker"), print, dry_run=True)
    assert not (tmp_path / "m" / "matrix.json").exists()


def test_matrices_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    second = time.gmtime()
    monkeypatch.setattr(time, "gmtime", lambda *_: second)  # a --dry-run, then the real one, in one second
    first = matrix.run(request(tmp_path, "docker", matrix_id=None, gpus=["t4"]), print, dry_run=True)
    other = matrix.run(request(tmp_path, "docker", matrix_id=None, gpus=["h100"]), print, dry_run=True)
    assert first.matrix_id.endswith("-matrix") and other.matrix_id == first.matrix_id + "-2"
    for manifest, gpu in ((first, "t4"), (other, "h100")):
        assert matrix.read_manifest(tmp_path / manifest.matrix_id) == manifest
        assert {c.gpu for c in manifest.cells} == {gpu}


def test_a_generated_id_taken_while_planning_moves_on(tmp_path):
    taken = tmp_path / "20260101-000000-matrix"
    taken.mkdir()
    folder = matrix._create_folder(tmp_path, taken.name, generated=True)
    assert folder != taken and folder.name.endswith("-matrix") and folder.is_dir()
    assert matrix._create_folder(tmp_path, taken.name, generated=False) == taken  # a named one is resumed


def test_a_matrix_where_no_cell_can_run_is_refused_and_leaves_nothing(cli, tmp_path):
    for args, reason in (
        (["--gpus", "t4"], "image cpu has a CPU-only torch"),
        (["--batch-sizes", "dynamic"], "batch size dynamic hands every prompt to vLLM"),
    ):
        proc = cli(["matrix", "--images", "cpu", *args, "--model", HUB_MODEL, "--results", str(tmp_path), "--dry-run"])
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert f"error: no cell of the matrix can run: cpu-{'t4' if 't4' in args else 'cpu'}-" in proc.stderr
        assert reason in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_refused_matrix_creates_no_folder(cli, tmp_path):
    proc = cli(["matrix", "--images", "cpux", "--model", HUB_MODEL, "--results", str(tmp_path), "--matrix-id", "badx"])
    assert proc.returncode == 2 and "unknown image 'cpux'" in proc.stderr
    assert not (tmp_path / "badx").exists()


def test_local_target_drops_gpus_this_machine_lacks(cli, tmp_path):
    if any((kind := catalog.match_gpu(g.name, g.memory_bytes)) and kind.key == "t4" for g in nvml.list_gpus()):
        pytest.skip("this machine has a T4")
    manifest = matrix.run(
        request(tmp_path, "local", images=["cpu", "hf"], scenarios=None, gpus=["cpu", "t4"], batch_sizes=[1]),
        print,
        dry_run=True,
    )
    by = {c.run_id: c for c in manifest.cells}
    assert by["cpu-cpu-fp32-bs1"].status == "planned"
    assert by["hf-t4-default-bs1"].status == "dropped"
    assert by["hf-t4-default-bs1"].reason.startswith("no NVIDIA T4 on this machine: it ")

    args = ["--images", "hf", "--gpus", "t4", "--scenarios", "fp32", "--model", HUB_MODEL, "--limit", "1"]
    proc = cli(["matrix", *args, "--results", str(tmp_path), "--matrix-id", "t4"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "no cell of the matrix can run: hf-t4-fp32-bs1: no NVIDIA T4 on this machine" in proc.stderr
    assert not (tmp_path / "t4").exists()


GATED_MODEL = "meta-llama/Llama-2-7b-chat-hf"


def test_a_local_matrix_of_a_gated_model_needs_a_local_token_unless_dry_run(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    base = LaunchRequest(model=GATED_MODEL, data=str(SAMPLE_DATASET), limit=3)
    # The token is checked before the target's own checks; a launch's engine check needs an engine, not a token.
    monkeypatch.setattr(DispatchTarget, "check", lambda self, request, cells, launching: None)
    for target in ("local", "docker"):
        req = request(
            tmp_path / target, target, images=["cpu"], scenarios=None, gpus=["cpu"], batch_sizes=[1], base=base
        )
        with pytest.raises(UserError, match=f"{GATED_MODEL} is gated on the Hugging Face hub: .* set HF_TOKEN$"):
            matrix.plan(req)
        assert not (tmp_path / target).exists()
        lines: list[str] = []
        assert matrix.run(req, lines.append, dry_run=True).cells[0].status == "planned"  # nothing downloads
        # ... but the real run will be refused until HF_TOKEN is set where it runs: a dry run says so.
        assert lines == [
            f"warning: {GATED_MODEL} is gated on the Hugging Face hub: accept its licence there and set HF_TOKEN "
            "before the real run (a dry run downloads nothing)"
        ]
        monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 30)
        assert matrix.plan(req).cells
        monkeypatch.delenv("HF_TOKEN")


# --- prices ----------------------------------------------------------------------------------------------


def test_prices_parse_per_gpu_and_for_every_gpu():
    assert matrix.parse_prices(["t4=0.2", "A100-80GB=1.5", "0.9"]) == {"t4": 0.2, "a100-80gb": 1.5, "*": 0.9}
    assert matrix.parse_prices([]) == {}
    for bad, message in (
        ("t4=cheap", "give USD per GPU-hour"),
        ("t4=-1", "give USD per GPU-hour"),
        ("nan", "give USD per GPU-hour"),
        ("t5=1", "unknown GPU"),
    ):
        with pytest.raises(UserError, match=message):
            matrix.parse_prices([bad])
    with pytest.raises(UserError, match="names t4 twice"):
        matrix.parse_prices(["t4=1", "t4=2"])


def test_each_cell_records_its_price_and_where_it_comes_from(tmp_path):
    req = request(tmp_path, "docker", images=["hf"], scenarios=None, gpus=["t4", "h100"], batch_sizes=[1])
    req.prices = {"h100": 2.5}
    by_gpu = {cell.entry.gpu: cell for cell in matrix.plan(req, dry_run=True).cells}
    assert by_gpu["h100"].request.price_per_hour == 2.5  # a docker cell is launched with it
    assert (by_gpu["h100"].config.price_per_hour_usd, by_gpu["h100"].config.price_source) == (
        2.5,
        "given: --price-per-hour",
    )
    t4 = by_gpu["t4"].config
    assert t4.price_per_hour_usd == 0.526 and t4.price_source == f"catalog: {catalog.get_gpu('t4').price_source}"
    assert "on-demand" in t4.price_source and by_gpu["t4"].request.price_per_hour is None

    req = request(tmp_path, "docker", images=["hf"], scenarios=None, gpus=["t4"], matrix_id="m2")
    req.prices = {"h100": 2.5}
    with pytest.raises(UserError, match=r"--price-per-hour names h100, which --gpus does not \(t4\)"):
        matrix.plan(req, dry_run=True)
    cpu = matrix.plan(request(tmp_path, "local", images=["cpu"], scenarios=None, gpus=["cpu"], matrix_id="m3"))
    assert cpu.cells[0].config.price_per_hour_usd is None
    assert cpu.cells[0].config.price_source == "none: the catalog has no price for cpu; pass --price-per-hour"


def test_a_dry_run_ends_with_the_command_that_runs_it(tmp_path, capsys):
    from runner.cli import main

    args = ["matrix", "--images", "cpu", "--model", HUB_MODEL, "--limit", "2", "--price-per-hour", "0.1"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--results", str(tmp_path), "--dry-run"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 0, err
    (matrix_id,) = [p.name for p in tmp_path.iterdir()]
    assert "the same command with --matrix-id" not in err, "the same command would only dry-run again"
    (line,) = [line for line in err.splitlines() if line.startswith("dry run: nothing was launched")]
    assert line == (
        f"dry run: nothing was launched. To run it: runner matrix --images cpu --model {HUB_MODEL} --limit 2 "
        f"--results {tmp_path} --price-per-hour 0.1 --matrix-id {matrix_id}"
    )


# --- dispatch --------------------------------------------------------------------------------------------


def test_docker_hosts_parse_per_gpu_and_default():
    assert parse_hosts(["t4=ssh://me@t4-vm", "A100-80GB=ssh://me@a100-vm"]) == {
        "t4": "ssh://me@t4-vm",
        "a100-80gb": "ssh://me@a100-vm",
    }
    assert parse_hosts(["ssh://me@gpu-vm"]) == {"*": "ssh://me@gpu-vm"}
    with pytest.raises(UserError, match="unknown GPU"):
        parse_hosts(["t5=ssh://x"])
    with pytest.raises(UserError, match="twice"):
        parse_hosts(["t4=ssh://a", "t4=ssh://b"])


def test_a_gpu_without_a_host_fails_before_anything_runs(tmp_path):
    options = DockerOptions(hosts={"t4": "ssh://me@t4-vm"})
    with pytest.raises(UserError, match="no --docker-host for GPU a100-80gb"):
        matrix.run(request(tmp_path, "docker", options, gpus=["t4", "a100-80gb"]), print, dry_run=True)
    assert not (tmp_path / "m").exists()


def test_cells_of_one_host_run_in_turn_and_hosts_at_once(tmp_path, monkeypatch):
    """The only dispatch rule: one cell at a time per host (a GPU), all hosts at once."""
    spans: list[tuple[str | None, str, float, float]] = []
    lock = threading.Lock()

    def fake_launch(req, on_line, resume=None):
        start = time.monotonic()
        time.sleep(0.15)
        with lock:
            spans.append((req.executor_options.get("docker_host"), req.run_id, start, time.monotonic()))
        assert req.executor == "docker" and req.results == tmp_path / "m"
        assert req.executor_options["registry"] == "registry.example.com/you" and req.executor_options["tag"] == "0.1.0"
        status = "failed" if req.gpu == "h100" else "completed"
        return tmp_path, SimpleNamespace(status=status, metrics=SimpleNamespace(documents=3), error=None)

    monkeypatch.setattr("runner.launching.launch", fake_launch)
    monkeypatch.setattr(DispatchTarget, "check_engines", lambda *_: None)  # stand-in hosts: no engines to check
    options = DockerOptions(hosts={"t4": "ssh://me@t4-vm", "*": "ssh://me@big-vm"})
    req = request(
        tmp_path,
        "docker",
        options,
        images=["hf"],
        scenarios=None,
        gpus=["t4", "a100-80gb", "h100"],
        registry="registry.example.com/you",
        tag="0.1.0",
    )
    manifest = matrix.run(req, lambda line: None)

    assert len(spans) == 6
    hosts = {host for host, *_ in spans}
    assert hosts == {"ssh://me@t4-vm", "ssh://me@big-vm"}
    for host in hosts:
        mine = sorted((s, e) for h, _, s, e in spans if h == host)
        assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(mine)), f"{host} ran two cells at once"
    t4 = [(s, e) for h, _, s, e in spans if h == "ssh://me@t4-vm"]
    big = [(s, e) for h, _, s, e in spans if h == "ssh://me@big-vm"]
    assert any(s1 < e2 and s2 < e1 for s1, e1 in t4 for s2, e2 in big), "the two hosts never overlapped"

    status = {c.gpu: (c.status, c.result_status) for c in manifest.cells}
    assert status == {"t4": ("done", "completed"), "a100-80gb": ("done", "completed"), "h100": ("done", "failed")}
    assert {c.where for c in manifest.cells} == {"docker ssh://me@t4-vm", "docker ssh://me@big-vm"}


def test_a_cell_that_cannot_launch_is_an_error_and_the_rest_run(tmp_path, monkeypatch):
    def fake_launch(req, on_line, resume=None):
        if req.batch_size == 8:
            raise UserError("image sumbench/hf:0.1.0 not found")
        return tmp_path, SimpleNamespace(status="completed", metrics=SimpleNamespace(documents=3), error=None)

    monkeypatch.setattr("runner.launching.launch", fake_launch)
    monkeypatch.setattr(DispatchTarget, "check_engines", lambda *_: None)  # stand-in hosts: no engines to check
    manifest = matrix.run(request(tmp_path, "docker", images=["hf"], scenarios=None, gpus=["t4"]), lambda _: None)
    by = {c.batch_size: c for c in manifest.cells}
    assert by[8].status == "error" and "not found" in by[8].reason
    assert by[1].status == "done" and by[1].result_status == "completed"


def test_local_target_refuses_docker_hosts():
    with pytest.raises(UserError, match="--target docker"):
        DispatchTarget("local", DockerOptions(hosts={"t4": "ssh://x"}))


def test_options_of_another_target_are_refused(cli):
    proc = cli(["matrix", "--images", "cpu", "--model", HUB_MODEL, "--bucket", "s3://b", "--dry-run"])
    assert proc.returncode == 2
    assert "--bucket applies to --target sky, not local" in proc.stderr


# --- logs and YAML shared by the remote targets ----------------------------------------------------------


def test_result_is_recovered_from_a_log_split_into_chunks(finished_run, tmp_path):
    result = json.loads((finished_run / "result.json").read_text())
    line = "(sumbench-task, pid=42) ::sumbench:: " + json.dumps(
        {"event": "result", "status": "completed", "result": result}
    )
    text = "(sumbench-task, pid=42) loading model\n" + line + "\n(sumbench-task, pid=42) done\n"
    chunks = [text[i : i + 97] for i in range(0, len(text), 97)]  # boundaries fall inside the JSON line
    recovered = collect_output(tmp_path, [*chunks, None], "remote.log")
    assert recovered is not None and recovered.model_dump(mode="json") == result
    assert json.loads((tmp_path / "result.json").read_text()) == result
    assert (tmp_path / "remote.log").read_text() == text


def test_no_result_line_leaves_the_folder_without_a_result(tmp_path):
    assert collect_output(tmp_path, ["Traceback (most recent call last):\n", "Killed\n"], "remote.log") is None
    assert not (tmp_path / "result.json").exists()


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=30)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), documents, max_size=5))
def test_yaml_writer_round_trips_through_pyyaml(data):
    assert yaml.safe_load(to_yaml(data)) == data


def test_yaml_writer_keeps_scripts_readable():
    text = to_yaml({"run": 'set -e\npython -m runner.worker "$run_dir"\n', "accelerators": "T4:1"})
    assert text == 'run: |\n  set -e\n  python -m runner.worker "$run_dir"\naccelerators: T4:1\n'


# --- real matrices ---------------------------------------------------------------------------------------


def check_matrix_tree(results: Path, matrix_id: str, executor: str) -> dict:
    """Four completed cpu cells and their dropped neighbour, all in one results tree."""
    manifest = json.loads((results / matrix_id / "matrix.json").read_text())
    cells = {c["run_id"]: c for c in manifest["cells"]}
    kept = {f"cpu-cpu-{s}-bs{b}" for s in ("fp32", "bf16") for b in (1, 2)}
    assert {k for k, c in cells.items() if c["status"] == "done"} == kept
    assert all(cells[k]["result_status"] == "completed" for k in kept)
    dropped = [c for c in cells.values() if c["status"] == "dropped"]
    assert dropped and all("flash-attn" in c["reason"] for c in dropped)
    schema = json.loads(SCHEMA_FILE.read_text())
    for run_id in kept:
        result = json.loads((results / matrix_id / run_id / "result.json").read_text())
        jsonschema.validate(result, schema)
        assert result["status"] == "completed" and result["metrics"]["documents"] == 3
        assert result["config"]["run_id"] == run_id
        assert result["config"]["launch"]["executor"] == executor
        assert f"-{result['config']['scenario']}-bs{result['config']['batch_size']}" in run_id
        assert len((results / matrix_id / run_id / "docs.jsonl").read_text().splitlines()) == 3
    assert not [c for c in cells.values() if c["status"] not in ("done", "dropped")]
    return manifest


CPU_MATRIX = [
    "--images",
    "cpu",
    "--scenarios",
    "fp32,bf16,flash-attn",
    "--gpus",
    "cpu",
    "--batch-sizes",
    "1,2",
    "--limit",
    "3",
    "--max-new-tokens",
    "8",
]


@pytest.mark.slow
def test_local_matrix_end_to_end(cli, tiny_model, tmp_path):
    args = ["matrix", *CPU_MATRIX, "--model", str(tiny_model), "--results", str(tmp_path), "--matrix-id", "e2e"]
    proc = cli(args, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_matrix_tree(tmp_path, "e2e", "process")
    assert "[cpu-cpu-fp32-bs1] completed: 3 documents" in proc.stderr
    summary = proc.stderr.split("matrix e2e (local)", 1)[1]  # the closing table: each finished cell's docs/s
    dps = json.loads((tmp_path / "e2e" / "cpu-cpu-fp32-bs1" / "result.json").read_text())["metrics"]["docs_per_second"]
    assert re.search(rf"cpu-cpu-fp32-bs1 .*completed .*{dps:.3f}", summary)
    assert f"tables, failures and plots: runner report {tmp_path / 'e2e'}" in " ".join(summary.split())

    # The same command again keeps what completed and runs nothing.
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("e2e/*/result.json")}
    again = cli(args, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("e2e/*/result.json")} == stamps
    check_matrix_tree(tmp_path, "e2e", "process")

    # A host stopped after a cell's result.json but before matrix.json said so: that cell counts as done.
    manifest_path = tmp_path / "e2e" / "matrix.json"
    manifest = json.loads(manifest_path.read_text())
    cell = next(c for c in manifest["cells"] if c["status"] == "done")
    cell.update(status="launched", result_status=None)
    manifest_path.write_text(json.dumps(manifest))
    third = cli(args, timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("e2e/*/result.json")} == stamps
    check_matrix_tree(tmp_path, "e2e", "process")

    # One report for the whole tree; the dropped cells are listed as such, with their reason.
    report = cli(["report", str(tmp_path / "e2e")], timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "## Cells not run" in report.stdout
    not_run = report.stdout.split("## Cells not run", 1)[1]
    assert not_run.count("| flash-attn | cpu | cpu |") == 2  # batch 1 and 2
    assert "needs a CUDA GPU" in not_run or "does not run scenario flash-attn" in not_run
    assert "4 runs on cpu: 4 completed in 4 cells." in report.stdout


def _docker_ready() -> str | None:
    """Why the Docker matrix cannot run here, or None when it can."""
    try:
        import docker

        from runner.executors import docker as _  # noqa: F401  (the executor is built by another issue)
    except ImportError as exc:
        return f"no Docker executor yet ({exc})"
    reference = catalog.get_image("cpu").reference(
        os.environ.get("SUMBENCH_REGISTRY", ""), os.environ.get("SUMBENCH_TAG") or __version__
    )
    try:
        client = docker.from_env()
        client.ping()
    except Exception:
        return 'no Docker engine answers (eval "$(bash scripts/docker-engine.sh env)")'
    try:
        client.images.get(reference)
    except Exception:
        return f"{reference} is not built (make docker-ready)"
    return None


@pytest.mark.docker
@pytest.mark.slow
def test_docker_matrix_end_to_end(cli, tiny_model, tmp_path):
    if (why := _docker_ready()) is not None:
        pytest.skip(why)
    args = [
        "matrix",
        "--target",
        "docker",
        *CPU_MATRIX,
        "--model",
        str(tiny_model),
        "--results",
        str(tmp_path),
        "--matrix-id",
        "docker-e2e",
    ]
    proc = cli(args, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = check_matrix_tree(tmp_path, "docker-e2e", "docker")
    assert {c["where"] for c in manifest["cells"] if c["status"] == "done"} == {"docker local engine"}


@pytest.mark.slow
def test_ctrl_c_on_a_matrix_leaves_a_manifest_that_says_where_it_stopped(tiny_model, tmp_path):
    """Ctrl-C mid-cell: the cell's worker writes its partial result and matrix.json says so (not
    'launched'); the cell never started stays planned; the closing table and the resume command show."""
    from conftest import wait_for
    from test_resume import start_launch

    from runner.contract.rundir import read_docs

    args = ["matrix", "--images", "cpu", "--scenarios", "fp32", "--batch-sizes", "1,2", "--limit", "6",
            "--max-new-tokens", "8", "--model", str(tiny_model), "--results", str(tmp_path)]  # fmt: skip
    host = start_launch(args, {"SUMBENCH_INJECT_DELAY_S": "1"})
    try:
        first = lambda: next(tmp_path.glob("*-matrix/cpu-cpu-fp32-bs1"), None)  # noqa: E731
        wait_for(lambda: first() is not None and len(read_docs(first())) >= 1, timeout=180, what="a first batch")
        os.killpg(host.pid, signal.SIGINT)
        _, err = host.communicate(timeout=90)
    finally:
        host.kill()
    assert host.returncode == 130, err[-2000:]
    matrix_dir = first().parent
    cells = {c["run_id"]: c for c in json.loads((matrix_dir / "matrix.json").read_text())["cells"]}
    assert (cells["cpu-cpu-fp32-bs1"]["status"], cells["cpu-cpu-fp32-bs1"]["result_status"]) == ("done", "partial")
    assert cells["cpu-cpu-fp32-bs2"]["status"] == "planned"
    assert f"the same command with --matrix-id {matrix_dir.name}" in " ".join(err.split())
