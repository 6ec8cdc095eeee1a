"""What a loaded model's weights really are: bytes, weights, bits per weight, Linear layer classes.

A result records these from the model in memory, not from the scenario's name, so a 4-bit run that
silently loaded 16-bit weights (a quantizer that skipped, a checkpoint already quantized another way)
shows it. bitsandbytes packs two 4-bit weights per byte and keeps its scales beside the tensor
(``quant_state``) or on it (``SCB``): both count, and a packed tensor counts the weights it holds.
"""

from __future__ import annotations

import math
from collections import Counter

from runner.contract.schema import WeightsInfo


def _tensor_bytes(tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _scale_bytes(param) -> int:
    """Bytes of the quantization scales bitsandbytes keeps for ``param`` outside ``param`` itself."""
    total = 0
    state = getattr(param, "quant_state", None)
    while state is not None:  # 4-bit: absmax and code, and a nested state when absmax is quantized too
        tensors = (getattr(state, "absmax", None), getattr(state, "code", None))
        total += sum(_tensor_bytes(t) for t in tensors if t is not None)
        state = getattr(state, "state2", None)
    scb = getattr(param, "SCB", None)  # 8-bit: one scale per row
    if scb is not None:
        total += _tensor_bytes(scb)
    return total


def _weights_held(param) -> int:
    """Weights a parameter computes with: a packed 4-bit tensor says its unpacked shape in ``quant_state``."""
    shape = getattr(getattr(param, "quant_state", None), "shape", None)
    return math.prod(shape) if shape is not None else param.numel()


def measure_weights(model) -> WeightsInfo:
    """Bytes, weights and bits per weight of ``model`` as loaded, with its Linear layers' classes."""
    import torch

    stored = 0
    weights = 0
    dtypes: Counter[str] = Counter()
    for param in model.parameters():
        stored += _tensor_bytes(param) + _scale_bytes(param)
        weights += _weights_held(param)
        dtypes[str(param.dtype).removeprefix("torch.")] += param.numel()
    stored += sum(_tensor_bytes(b) for b in model.buffers())
    linear = Counter(type(m).__name__ for m in model.modules() if isinstance(m, torch.nn.Linear))
    return WeightsInfo(
        bytes=stored,
        parameters=weights,
        bits_per_parameter=round(8 * stored / weights, 3) if weights else 0.0,
        storage_dtypes=dict(dtypes),
        linear_layers=dict(linear),
    )
