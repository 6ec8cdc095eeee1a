"""What the host knows, before a worker starts, about prompts that cannot fit the model.

A prompt fits when it has at most ``--max-input-tokens`` tokens and leaves room in the model's context for
``--max-new-tokens``. The host has no tokenizer (it imports no transformers), so it counts only what is
certain: the context the checkpoint's config.json declares, and a lower bound on each document's tokens
from the tokenizer's longest vocabulary entry. A document certainly over the limit is one the worker will
skip; when more than ``--max-skipped-fraction`` of them are, the run would fail after loading the model,
so launch refuses it first. Everything less certain is left to the worker, which counts real tokens.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from runner.contract.architectures import model_shape, runnable_context

NORMALIZER_SLACK = 2
"""A normalizer may compose characters (NFKC joins a letter and its combining accent into one) before the
tokenizer splits the text; counting at most two characters into one keeps the bound a lower bound."""


def model_context(model: str) -> tuple[str, int] | None:
    """The positions the model declares (``max_position_embeddings``...) and the key that says so; None when
    its config is unknown here, or when rope scaling may stretch the context past what it declares."""
    shape = model_shape(model)
    return None if shape is None else runnable_context(shape)


def prompt_limit(max_input_tokens: int, max_new_tokens: int, context: int | None) -> int:
    """The longest prompt that runs: the user's limit, or the context less the new tokens if that is smaller."""
    return max_input_tokens if context is None else min(max_input_tokens, context - max_new_tokens)


def longest_token_chars(model: str) -> int | None:
    """Characters in the longest entry of the model's tokenizer.json vocabulary; None without one."""
    path = Path(model).expanduser() / "tokenizer.json"
    if not path.is_file():
        return None
    try:
        vocab = json.loads(path.read_text(encoding="utf-8")).get("model", {}).get("vocab")
    except (OSError, ValueError):
        return None
    pieces = vocab.keys() if isinstance(vocab, dict) else [v[0] for v in vocab or [] if v]
    return max((len(p) for p in pieces), default=0) or None


def fewest_tokens(text: str, longest: int) -> int:
    """A number of tokens ``text`` certainly has at least, with no token longer than ``longest`` characters."""
    return math.ceil(len(text) / (longest * NORMALIZER_SLACK))


@dataclass(frozen=True)
class OverLimit:
    """Documents certainly longer than the prompt limit, out of how many."""

    ids: list[str]
    documents: int
    limit: int


def certainly_over(model: str, texts: dict[str, str], limit: int) -> OverLimit | None:
    """The documents certainly over ``limit`` tokens; None when this model's tokenizer is not readable here."""
    longest = longest_token_chars(model)
    if longest is None:
        return None
    return OverLimit([i for i, t in texts.items() if fewest_tokens(t, longest) > limit], len(texts), limit)
