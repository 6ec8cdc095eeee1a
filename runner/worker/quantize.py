"""4-bit AWQ checkpoints made offline, on a CPU if need be, with llm-compressor.

llm-compressor is the vLLM project's maintained quantizer (AutoAWQ, which the awq-quantize image runs, is
archived and stuck at transformers 4.51). Its AWQModifier searches per-channel scales on calibration text,
then writes 4-bit integer weights with 16-bit activations in the compressed-tensors format, which vLLM
serves with its WNA16 kernels on GPUs and CPUs (``runner.contract.quant_formats``). Calibration uses documents the
caller hands over, so nothing is downloaded. llm-compressor is imported only here, in its own environment:
it pins compressed-tensors and transformers apart from vLLM's (the ``quantize`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# Largest first: the usual AWQ group, then smaller ones for models whose layers are narrower than 128.
GROUP_SIZES = (128, 64, 32)


def group_size_for(hidden_size: int, intermediate_size: int) -> int:
    """The largest of GROUP_SIZES that divides every quantized layer's input width."""
    for size in GROUP_SIZES:
        if hidden_size % size == 0 and intermediate_size % size == 0:
            return size
    raise ValueError(
        f"no AWQ group size in {GROUP_SIZES} divides hidden_size {hidden_size} and intermediate_size "
        f"{intermediate_size}: pass --group-size"
    )


def calibration_ids(tokenizer, texts: Sequence[str], samples: int, max_tokens: int) -> list[list[int]]:
    """Token ids of the first ``samples`` non-empty texts, each cut to ``max_tokens``."""
    ids = [tokenizer(t, truncation=True, max_length=max_tokens)["input_ids"] for t in texts if t.strip()]
    if not ids:
        raise ValueError("no calibration text: give documents with text in them")
    return ids[:samples]


def allow_cpu_only_torch() -> None:
    """llm-compressor 0.14's AWQ pins its cached activations (``pin_memory``) to speed copies to a GPU; on a
    CPU-only torch build pinning raises "Cannot access accelerator device when none is available". With no
    accelerator there is nothing to copy to, so pinning is skipped: the results are the same."""
    import torch
    from llmcompressor.pipelines.cache import IntermediatesCache

    if torch.accelerator.is_available():
        return
    if not getattr(IntermediatesCache.pin_memory, "sumbench_skipped", False):

        def pin_memory(self, batch_index: int, input_names: list[str] | None = None) -> None:
            return None

        pin_memory.sumbench_skipped = True  # type: ignore[attr-defined]
        IntermediatesCache.pin_memory = pin_memory


def quantize_awq(
    model_dir: Path,
    out_dir: Path,
    texts: Sequence[str],
    *,
    group_size: int | None = None,
    samples: int = 16,
    max_tokens: int = 512,
) -> Path:
    """AWQ-quantize the checkpoint in ``model_dir`` to 4-bit asymmetric integer weights in groups, calibrated
    on ``texts``; write it (compressed-tensors, pack-quantized) and the tokenizer to ``out_dir``.

    lm_head stays 16-bit, as in AutoAWQ's checkpoints. The source's config.json keys carry over, the
    random-weights mark included, so a run of a quantized tiny model still says its ROUGE is noise."""
    import torch
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.awq import AWQModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    allow_cpu_only_torch()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # A CPU searches the scales in float32: its half-precision matmuls are slow or missing.
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype="auto" if torch.cuda.is_available() else torch.float32
    )
    size = group_size or group_size_for(model.config.hidden_size, model.config.intermediate_size)
    scheme = {
        "targets": ["Linear"],
        "weights": {"num_bits": 4, "type": "int", "symmetric": False, "strategy": "group", "group_size": size},
    }
    ids = calibration_ids(tokenizer, texts, samples, max_tokens)
    oneshot(
        model=model,
        dataset=Dataset.from_dict({"input_ids": ids}),
        recipe=[AWQModifier(ignore=["lm_head"], config_groups={"group_0": scheme})],
        max_seq_length=max_tokens,
        num_calibration_samples=len(ids),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, save_compressed=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
