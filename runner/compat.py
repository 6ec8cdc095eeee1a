"""Compatibility rules: what the original study learned by crashing, checked before launching.

Each rule gives a reason a person can act on. ``check`` returns the refusals; ``adjustments`` returns
substitutions that keep the run meaningful (bf16 on a GPU without it runs as fp16, and says so).
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.catalog import Gpu, Image
from runner.scenarios import Scenario


@dataclass(frozen=True)
class Rule:
    min_capability: tuple[int, int]
    reason: str


def check(image: Image, scenario: Scenario, gpu: Gpu) -> list[str]:
    """Reasons this image/scenario cannot run on this GPU; empty when it can."""
    if scenario.backend == "endpoint":
        return []  # only a client runs here; the server, wherever it is, is the user's
    reasons = []
    if scenario.name not in image.scenarios:
        reasons.append(
            f"image {image.key} does not run scenario {scenario.name} (it runs: {', '.join(image.scenarios)})"
        )
    if scenario.backend != image.backend:
        reasons.append(
            f"scenario {scenario.name} needs the {scenario.backend} backend; image {image.key} has {image.backend}"
        )
    if gpu.is_cpu:
        if image.device != "cpu":
            reasons.append(f"image {image.key} is built for CUDA GPUs; use --image cpu on a machine without one")
        if scenario.quantization or scenario.attention == "flash_attention_2" or scenario.backend == "vllm":
            reasons.append(f"scenario {scenario.name} needs a CUDA GPU")
        return reasons
    if image.device == "cpu":
        reasons.append(f"image cpu has a CPU-only torch; use a CUDA image (hf, hf-bnb, ...) on {gpu.name}")
        return reasons
    cap = gpu.capability
    assert cap is not None
    if image.cuda_archs and gpu.compute_capability not in image.cuda_archs:
        reasons.append(
            f"image {image.key}'s torch build has no kernels for compute capability {gpu.compute_capability} "
            f"({gpu.name}); it ships {', '.join(image.cuda_archs)}"
        )
    for rule in _rules(scenario):
        if cap < rule.min_capability:
            reasons.append(f"{rule.reason}; {gpu.name} is {gpu.compute_capability}")
    return reasons


def _rules(scenario: Scenario) -> list[Rule]:
    rules = []
    if scenario.attention == "flash_attention_2":
        rules.append(Rule((8, 0), "FlashAttention-2 needs an Ampere GPU or newer (compute capability 8.0)"))
    if scenario.quantization == "awq":
        rules.append(Rule((7, 5), "vLLM's AWQ kernels need compute capability 7.5 or newer"))
    if scenario.quantization == "bnb-int8":
        rules.append(Rule((7, 5), "bitsandbytes 8-bit matmul needs compute capability 7.5 or newer"))
    if scenario.dtype == "float8":
        rules.append(Rule((8, 9), "fp8 needs compute capability 8.9 or newer (Ada, Hopper)"))
    return rules


def checkpoint_problem(scenario: Scenario, model: str, synthetic_weights: bool = False) -> str | None:
    """Why ``model`` cannot serve ``scenario``, read from its config.json before a GPU is paid for: an AWQ
    scenario loads AWQ-quantized weights and refuses any other checkpoint (the worker would say so only
    after the image was pulled and started). None when it can, for synthetic weights (given an AWQ config
    of their own), or when this machine cannot tell (a hub id whose config is not known here)."""
    if scenario.quantization != "awq" or synthetic_weights:
        return None
    from runner.architectures import model_shape

    shape = model_shape(model)
    if shape is None:
        return None
    method = (shape.get("quantization_config") or {}).get("quant_method")
    if method == "awq":
        return None
    return (
        f"scenario {scenario.name} serves AWQ checkpoints, and {model} is not one (its config.json's "
        f"quantization_config says {method or 'nothing'}): point --model at an AWQ checkpoint, e.g. "
        "TheBloke/Llama-2-7B-Chat-AWQ"
    )


def adjustments(scenario: Scenario, gpu: Gpu) -> tuple[str, list[str]]:
    """The dtype that will actually run, with notes on any substitution."""
    if scenario.dtype == "bfloat16" and not gpu.is_cpu and not gpu.bf16:
        return "float16", [f"bf16 needs compute capability 8.0; {gpu.name} runs it as fp16"]
    return scenario.dtype, []


def awq_note(scenario: Scenario, gpu: Gpu) -> list[str]:
    if scenario.quantization == "awq" and gpu.capability and gpu.capability < (8, 0):
        return [f"AWQ on {gpu.name} uses vLLM's slower GEMM kernels; the Marlin kernels need compute capability 8.0"]
    return []
