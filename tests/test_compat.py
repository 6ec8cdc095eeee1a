"""The GPU rules: what the original study learned by crashing, refused before launch with a reason."""

from __future__ import annotations

import pytest

from runner import compat
from runner.contract.catalog import get_gpu, get_image, images
from runner.scenarios import SCENARIOS, get_scenario


def reasons(image: str, scenario: str, gpu: str) -> list[str]:
    return compat.check(get_image(image), get_scenario(scenario), get_gpu(gpu))


@pytest.mark.parametrize("gpu", ["t4", "v100-16gb", "v100-32gb"])
def test_flash_attention_needs_ampere(gpu: str):
    found = reasons("hf-flash", "flash-attn", gpu)
    assert any("FlashAttention-2 needs an Ampere GPU" in r and "8.0" in r for r in found), found


@pytest.mark.parametrize("gpu", ["a10g", "l4", "a100-40gb", "a100-80gb", "h100", "h200"])
def test_flash_attention_runs_on_ampere_and_newer(gpu: str):
    assert reasons("hf-flash", "flash-attn", gpu) == []


def test_awq_refused_on_volta_allowed_on_turing_with_a_note():
    assert any("AWQ kernels need compute capability 7.5" in r for r in reasons("vllm-awq", "vllm-awq", "v100-16gb"))
    assert reasons("vllm-awq", "vllm-awq", "t4") == []
    note = compat.awq_note(get_scenario("vllm-awq"), get_gpu("t4"))
    assert note and "Marlin" in note[0]
    assert compat.awq_note(get_scenario("vllm-awq"), get_gpu("a10g")) == []


def test_bf16_on_turing_runs_as_fp16_and_says_so():
    dtype, notes = compat.adjustments(get_scenario("bf16"), get_gpu("t4"))
    assert dtype == "float16"
    assert notes and "runs it as fp16" in notes[0]
    assert compat.adjustments(get_scenario("bf16"), get_gpu("a100-40gb")) == ("bfloat16", [])
    assert compat.adjustments(get_scenario("bf16"), get_gpu("cpu")) == ("bfloat16", [])


def test_torch_build_must_ship_kernels_for_the_gpu():
    """Current CUDA wheels dropped sm_70: the hf image is refused on a V100, hf-legacy is not."""
    found = reasons("hf", "default", "v100-16gb")
    assert any("no kernels for compute capability 7.0" in r for r in found), found
    assert reasons("hf-legacy", "default", "v100-16gb") == []
    assert reasons("hf", "default", "t4") == []


def test_int8_needs_turing():
    assert any("8-bit matmul" in r for r in reasons("hf-legacy", "8-bit", "v100-32gb"))
    assert reasons("hf-bnb", "8-bit", "t4") == []


def test_cpu_rules():
    assert reasons("cpu", "fp32", "cpu") == []
    assert any("built for CUDA GPUs" in r for r in reasons("hf", "default", "cpu"))
    assert any("CPU-only torch" in r for r in reasons("cpu", "fp32", "t4"))
    assert any("needs a CUDA GPU" in r for r in reasons("cpu", "fp32", "cpu") + reasons("hf-bnb", "4-bit", "cpu"))


def test_scenario_must_belong_to_the_image():
    found = reasons("vllm", "default", "a100-80gb")
    assert any("does not run scenario default" in r for r in found)
    assert any("needs the hf backend" in r for r in found)


def test_every_image_runs_its_default_scenario_somewhere():
    """A catalog entry nobody can launch is a typo, not an image."""
    for image in images().values():
        assert image.default_scenario in image.scenarios
        assert all(name in SCENARIOS for name in image.scenarios), image.key
        gpu = "cpu" if image.device == "cpu" else "a100-80gb"
        assert compat.check(image, get_scenario(image.default_scenario), get_gpu(gpu)) == [], image.key


def test_vllm_runs_on_a_cpu_only_in_the_vllm_cpu_image():
    assert reasons("vllm-cpu", "vllm", "cpu") == []
    assert any("needs a CUDA GPU" in r for r in reasons("cpu", "vllm", "cpu") + reasons("vllm", "vllm", "cpu"))
    assert any("CPU-only torch" in r and "vllm-cpu" in r for r in reasons("vllm-cpu", "vllm", "t4"))
    # vLLM's CPU build serves AWQ and compressed-tensors W4A16 checkpoints (CPUWNA16 kernels).
    assert reasons("vllm-cpu", "vllm-awq", "cpu") == []
