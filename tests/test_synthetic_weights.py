"""Synthetic weights for every scenario: a random checkpoint written once and loaded by from_pretrained,
`runner model synthetic`, and the weights a result records as measured on the loaded model."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import run_cli

from runner.contract.weights import RANDOM_WEIGHTS_KEY, has_random_weights

BNB = importlib.util.find_spec("bitsandbytes") is not None


def test_cached_checkpoint_is_written_once_per_architecture_and_seed(tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    from runner.worker.footprint import measure_weights
    from runner.worker.models import synthetic_config
    from runner.worker.synthetic import CACHE_ENV, cached_checkpoint

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    folder, written = cached_checkpoint(synthetic_config("tiny-llama"), seed=0, dtype="float16", device="cpu")
    assert written and folder.parent == tmp_path and has_random_weights(str(folder))
    again, written_again = cached_checkpoint(synthetic_config("tiny-llama"), seed=0, dtype="float16", device="cpu")
    assert again == folder and not written_again
    other, _ = cached_checkpoint(synthetic_config("tiny-llama"), seed=1, dtype="float16", device="cpu")
    assert other != folder
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temporary folder left behind"

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float16)
    weights = measure_weights(model)
    assert weights.parameters == sum(p.numel() for p in model.parameters())
    assert weights.storage_dtypes == {"float16": weights.parameters}
    assert set(weights.linear_layers) == {"Linear"}
    assert 16 <= weights.bits_per_parameter < 16.1  # fp16 weights and a few fp32 rotary buffers


def test_result_records_the_weights_measured(finished_run):
    weights = json.loads((finished_run / "result.json").read_text())["backend"]["weights"]
    assert weights["storage_dtypes"] == {"float32": weights["parameters"]}
    assert 32 <= weights["bits_per_parameter"] < 32.1
    assert weights["linear_layers"]["Linear"] >= 14


@pytest.mark.slow
@pytest.mark.skipif(not BNB, reason="bitsandbytes is not installed here (pip install bitsandbytes: its CPU backend)")
@pytest.mark.parametrize(
    ("scenario", "linear", "stored"), [("4-bit", "Linear4bit", "uint8"), ("8-bit", "Linear8bitLt", "int8")]
)
def test_quantized_scenario_runs_with_synthetic_weights(tmp_path, scenario, linear, stored):
    """Once a TypeError (from_config cannot quantize); now a random checkpoint quantized as it loads, on the
    CPU through bitsandbytes' CPU backend, and the result says what ran: bitsandbytes layers, packed weights."""
    proc = run_cli(
        [
            "launch", "--model", "tiny-llama", "--synthetic-weights", "--scenario", scenario, "--force",
            "--limit", "3", "--batch-size", "2", "--max-new-tokens", "4", "--results", str(tmp_path / "r"),
            "--run-id", "q",
        ],
        env={"SUMBENCH_SYNTHETIC_CACHE": str(tmp_path / "cache")},
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "r" / "q" / "result.json").read_text())
    assert result["status"] == "completed" and result["metrics"]["documents"] == 3
    weights = result["backend"]["weights"]
    assert weights["linear_layers"][linear] == 14  # 2 layers x (4 attention + 3 MLP) projections
    assert stored in weights["storage_dtypes"]
    assert weights["bits_per_parameter"] < 16  # the embeddings stay fp16; the projections do not
    assert result["backend"]["details"]["synthetic_checkpoint"]["written_now"] is True
    assert "bits/weight as loaded" in proc.stdout


def test_model_synthetic_writes_a_marked_checkpoint_that_launch_runs(tmp_path):
    out = tmp_path / "random-tiny"
    proc = run_cli(["model", "synthetic", "tiny-llama", str(out), "--seed", "3"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config[RANDOM_WEIGHTS_KEY] is True and config["hidden_size"] == 64
    assert (out / "tokenizer.json").is_file() and not list(out.glob(".*"))
    proc = run_cli(
        ["launch", "--model", str(out), "--limit", "2", "--max-new-tokens", "4", "--results", str(tmp_path / "r"),
         "--run-id", "s"]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "r" / "s" / "result.json").read_text())
    assert result["status"] == "completed" and result["quality_meaningful"] is False


def test_model_synthetic_refuses_an_unknown_architecture(tmp_path):
    proc = run_cli(["model", "synthetic", "llama-2-8b", str(tmp_path / "x")])
    assert proc.returncode == 2
    assert "unknown architecture 'llama-2-8b'" in proc.stderr and "llama-2-7b" in proc.stderr
    assert not (tmp_path / "x").exists()
