"""Compatibility rules: what the original study learned by crashing, checked before launching.

Each rule gives a reason a person can act on. ``check`` returns the refusals; ``adjustments`` returns
substitutions that keep the run meaningful (bf16 on a GPU without it runs as fp16, and says so).
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.contract.catalog import Gpu, Image
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
        # vLLM runs on a CPU in an image built for it (vllm-cpu): the image's scenario list says which.
        cpu_vllm = scenario.backend == "vllm" and image.backend == "vllm" and image.device == "cpu"
        if (
            (scenario.quantization and not (cpu_vllm and scenario.quantization == "awq"))
            or scenario.attention == "flash_attention_2"
            or (scenario.backend == "vllm" and not cpu_vllm)
        ):
            reasons.append(f"scenario {scenario.name} needs a CUDA GPU")
        elif scenario.sdpa_backend == "FLASH_ATTENTION":
            reasons.append(
                f"scenario {scenario.name} measures PyTorch's CUDA FlashAttention-2 kernel, which a CPU does not "
                "have (SDPA's flash backend there is another, CPU kernel): run it on a GPU of compute capability 8.0+"
            )
        return reasons
    if image.device == "cpu":
        reasons.append(f"image {image.key} has a CPU-only torch; use a CUDA image (hf, hf-bnb, ...) on {gpu.name}")
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
    if scenario.attention == "flash_attention_2" or scenario.sdpa_backend == "FLASH_ATTENTION":
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
    from runner.contract.architectures import model_shape
    from runner.contract.quant_formats import awq_format, describe

    shape = model_shape(model)
    if shape is None:
        return None
    quantization = shape.get("quantization_config")
    if awq_format(quantization):
        return None
    return (
        f"scenario {scenario.name} serves AWQ checkpoints, and {model} is not one (its config.json's "
        f"quantization_config says {describe(quantization)}): point --model at an AWQ checkpoint, e.g. "
        "TheBloke/Llama-2-7B-Chat-AWQ, or make one with `runner model awq`"
    )


def batch_problem(scenario: Scenario, batch_size: int | str) -> str | None:
    """Why ``scenario`` cannot run batches of ``batch_size``. PyTorch's FlashAttention kernel takes no
    attention mask, and a batch of prompts of different lengths is padded and needs one: SDPA held to that
    kernel raises "No available kernel" on the first padded batch. One prompt needs no mask."""
    if scenario.sdpa_backend != "FLASH_ATTENTION" or batch_size == 1:
        return None
    return (
        f"scenario {scenario.name} runs one prompt at a time: PyTorch's FlashAttention kernel takes no attention "
        f"mask, and a padded batch needs one; use --batch-size 1 (the flash-attn scenario, whose kernel unpads "
        f"batches, runs larger ones), not --batch-size {batch_size}"
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
