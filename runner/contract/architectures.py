"""Model shapes: the numbers the memory plan and synthetic weights need, without loading a model."""

from __future__ import annotations

import json
from pathlib import Path

# config.json values of real checkpoints, for --synthetic-weights and for planning by name.
BUILTIN_CONFIGS: dict[str, dict] = {
    "llama-2-7b": dict(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
    ),
    "llama-2-13b": dict(
        hidden_size=5120,
        intermediate_size=13824,
        num_hidden_layers=40,
        num_attention_heads=40,
        num_key_value_heads=40,
        vocab_size=32000,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
    ),
    "llama-3-8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
    ),
    "tiny-llama": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        # head_dim 32: the smallest vLLM's CPU attention runs, so every backend runs this one model.
        num_attention_heads=2,
        num_key_value_heads=1,
        vocab_size=4096,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
    ),
}
# Hub ids people type for the built-in shapes.
ALIASES = {
    "meta-llama/Llama-2-7b-chat-hf": "llama-2-7b",
    "meta-llama/Llama-2-7b-hf": "llama-2-7b",
    "meta-llama/Llama-2-13b-chat-hf": "llama-2-13b",
    "meta-llama/Meta-Llama-3-8B-Instruct": "llama-3-8b",
}


POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length")
"""config.json keys that declare the positions a model was trained for, by architecture family."""


def declared_context(config: dict) -> tuple[str, int] | None:
    """The context length config.json declares (before any rope scaling), and the key that says so."""
    for key in POSITION_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return key, value
    return None


def runnable_context(config: dict) -> tuple[str, int] | None:
    """``declared_context``, where it is the model's limit: under rope scaling (``rope_scaling``, or a
    ``rope_parameters`` type other than default) a model may run past what it declares, so None."""
    rope = config.get("rope_parameters") or {}
    if config.get("rope_scaling") or (isinstance(rope, dict) and rope.get("rope_type", "default") != "default"):
        return None
    return declared_context(config)


def model_shape(model: str) -> dict | None:
    """config.json values for a local folder, a built-in name or a known hub id; None if unknown.

    A folder comes first, as it does for ``runner launch``: a ``./tiny-llama`` beside the built-in
    ``tiny-llama`` is what the user pointed at, and what a launch would load."""
    path = Path(model).expanduser() / "config.json"
    if path.is_file():
        return json.loads(path.read_text())
    name = ALIASES.get(model, model)
    if name in BUILTIN_CONFIGS:
        return {"model_type": "llama", **BUILTIN_CONFIGS[name]}
    return None


def describe_model(model: str) -> str:
    """Which of the three ``model_shape`` took: said beside a plan, so a name that is both a folder and
    a built-in shows which one was read."""
    if (Path(model).expanduser() / "config.json").is_file():
        return f"folder {Path(model).expanduser().resolve().name}/"
    if model in BUILTIN_CONFIGS:
        return "built-in architecture"
    if model in ALIASES:
        return f"hub id, built-in shape {ALIASES[model]}"
    return "unknown"
