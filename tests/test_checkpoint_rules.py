"""An AWQ scenario needs an AWQ checkpoint: said from the checkpoint's own config.json before a GPU is paid
for, by ``runner launch`` (refused, --force goes on and records why) and ``runner matrix`` (the cell is
dropped with the reason, the others run). Real tiny checkpoints written by ``runner model tiny``; the AWQ
one is a copy whose config.json carries the quantization_config AutoAWQ writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import one_line

from runner import compat
from runner.launching import LaunchRequest, build_config
from runner.paths import SAMPLE_DATASET
from runner.scenarios import get_scenario

AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}


@pytest.fixture(scope="module")
def awq_model(tiny_model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("awq") / "tiny-llama-awq"
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "quantization_config": AWQ}))
    return folder


def test_a_plain_checkpoint_cannot_serve_awq_and_the_reason_says_what_it_is(tiny_model):
    problem = compat.checkpoint_problem(get_scenario("vllm-awq"), str(tiny_model))
    assert problem is not None
    assert "serves AWQ checkpoints" in problem and "quantization_config says nothing" in problem


def test_an_awq_checkpoint_synthetic_weights_and_other_scenarios_pass(tiny_model, awq_model):
    assert compat.checkpoint_problem(get_scenario("vllm-awq"), str(awq_model)) is None
    assert compat.checkpoint_problem(get_scenario("vllm-awq"), "llama-2-7b", synthetic_weights=True) is None
    assert compat.checkpoint_problem(get_scenario("default"), str(tiny_model)) is None
    # A hub id whose config this machine does not hold: no guess.
    assert compat.checkpoint_problem(get_scenario("vllm-awq"), "someone/unknown-model-AWQ") is None
    # A known hub id of a plain fp16 model is known not to be AWQ.
    assert "not one" in compat.checkpoint_problem(get_scenario("vllm-awq"), "meta-llama/Llama-2-7b-chat-hf")


def test_launch_refuses_before_any_folder_and_force_records_the_reason(capsys, tiny_model, tmp_path):
    results = tmp_path / "results"
    line = one_line(
        capsys,
        ["launch", "--image", "vllm-awq", "--gpu", "a100-80gb", "--model", str(tiny_model), "--data",
         str(SAMPLE_DATASET), "--results", str(results)],
    )  # fmt: skip
    assert line.startswith("error: scenario vllm-awq serves AWQ checkpoints, and ")
    assert line.endswith("(--force runs it anyway)")
    assert not results.exists()

    req = LaunchRequest(model=str(tiny_model), data=str(SAMPLE_DATASET), image="vllm-awq", gpu="a100-80gb", force=True)
    config, _ = build_config(req)
    assert config.forced and "serves AWQ checkpoints" in (config.incompatibility or "")


def test_a_matrix_drops_the_awq_cell_of_a_plain_checkpoint_and_keeps_the_rest(cli, tiny_model, tmp_path):
    proc = cli(
        ["matrix", "--images", "hf,vllm-awq", "--gpus", "a100-80gb", "--model", str(tiny_model), "--target",
         "sky", "--allow-local-images", "--dry-run", "--results", str(tmp_path), "--matrix-id", "awq"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cells = {c["image"]: c for c in json.loads((tmp_path / "awq" / "matrix.json").read_text())["cells"]}
    assert cells["hf"]["status"] == "planned"
    assert cells["vllm-awq"]["status"] == "dropped"
    assert "serves AWQ checkpoints" in cells["vllm-awq"]["reason"]


def test_an_awq_checkpoint_runs_planned_and_records_its_base_model(cli, awq_model, tmp_path):
    """The AWQ folder passes the check, and --base-model reaches every cell's config.json (what the report
    gates it against: see test_report's quantized-checkpoint test)."""
    proc = cli(
        ["matrix", "--images", "vllm-awq", "--gpus", "a100-80gb,t4", "--model", str(awq_model), "--base-model",
         "tiny-llama", "--target", "sky", "--allow-local-images", "--dry-run", "--results", str(tmp_path),
         "--matrix-id", "awq"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "awq" / "matrix.json").read_text())
    assert {c["status"] for c in manifest["cells"]} == {"planned"}
    for cell in manifest["cells"]:
        config = json.loads((tmp_path / "awq" / cell["run_id"] / "config.json").read_text())
        assert config["base_model"] == "tiny-llama" and not config["forced"]
