"""Which checkpoint formats an AWQ scenario serves, read from a checkpoint's ``quantization_config``.

Two formats hold AWQ's 4-bit integer weights with 16-bit activations: AutoAWQ's (``quant_method: awq``)
and compressed-tensors' W4A16 (``quant_method: compressed-tensors``), which llm-compressor's AWQ writes now
that AutoAWQ is archived. vLLM serves both, on GPUs and on CPUs. Both the host (before a GPU is paid for)
and the worker (before vLLM starts) ask this module, so they accept the same checkpoints.
"""

from __future__ import annotations

from typing import Any

AWQ = "awq"
COMPRESSED_TENSORS = "compressed-tensors"


def awq_format(quantization_config: Any) -> str | None:
    """``"awq"`` or ``"compressed-tensors"`` when the config describes 4-bit integer weights and unquantized
    activations in that format; None for anything else (no config, 8-bit, fp8, quantized activations)."""
    if not isinstance(quantization_config, dict):
        return None
    method = quantization_config.get("quant_method")
    if method == AWQ:
        return AWQ if quantization_config.get("bits", quantization_config.get("w_bit")) == 4 else None
    if method != COMPRESSED_TENSORS:
        return None
    groups = list((quantization_config.get("config_groups") or {}).values())
    return COMPRESSED_TENSORS if groups and all(_is_w4a16(group) for group in groups) else None


def _is_w4a16(group: Any) -> bool:
    if not isinstance(group, dict):
        return False
    weights = group.get("weights") or {}
    return (
        weights.get("num_bits") == 4
        and weights.get("type", "int") == "int"
        and not group.get("input_activations")
        and not group.get("output_activations")
    )


def describe(quantization_config: Any) -> str:
    """What a checkpoint's quantization_config says, in a few words, for a refusal."""
    if not isinstance(quantization_config, dict):
        return "nothing"
    method = quantization_config.get("quant_method") or "an unnamed method"
    if method == COMPRESSED_TENSORS:
        for group in (quantization_config.get("config_groups") or {}).values():
            weights = (group or {}).get("weights") or {}
            acts = "quantized" if (group or {}).get("input_activations") else "16-bit"
            return (
                f"{method} with {weights.get('num_bits')}-bit {weights.get('type', 'int')} weights, {acts} activations"
            )
    return method
