"""Weights whose summaries mean nothing, and the words every part of sumbench uses for them.

Two kinds of run score ROUGE that says nothing about a model's quality:

- ``--synthetic-weights``: a real architecture's shape filled with random values on the worker; the
  run's own config says so, and its output length is forced.
- a checkpoint ``runner model tiny`` or ``runner model synthetic`` built (or the cache of random
  checkpoints behind a quantized ``--synthetic-weights`` run): random weights saved with
  ``save_pretrained``, loaded like any real checkpoint. Nothing in a run's config tells it from a trained
  model, so the builder writes ``RANDOM_WEIGHTS_KEY: true`` into the checkpoint's own ``config.json``.
  That file is the one every loader reads and every copy or mount of a checkpoint carries (a marker file
  beside it could be left behind by a copy of the files a loader needs), and transformers keeps an
  unknown key as it is.

The worker (``runner.worker.run``) and the host (``runner.launching.finish_dead_run``) both decide
``quality_meaningful`` and its note with ``quality_caveat``, so a result says the same whoever writes it;
the console, the report and ``runner compare`` name the reason with ``weights_kind``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from runner.contract.schema import RunConfig, RunResult

RANDOM_WEIGHTS_KEY = "sumbench_random_weights"
"""The ``config.json`` key set to true in every random checkpoint sumbench builds (``runner model tiny``,
``runner model synthetic``)."""

SYNTHETIC = "synthetic weights"
RANDOM = "random weights"

SUMMARY_NOTES = {
    SYNTHETIC: "  (not meaningful: synthetic weights, output length forced)",
    RANDOM: "  (not meaningful: a random checkpoint from `runner model tiny/synthetic`; speed and memory are real)",
}
"""Beside ROUGE in a run's summary on the console, by ``weights_kind``."""

FOOTNOTES = {
    SYNTHETIC: "output length was forced, so ROUGE is not meaningful",
    RANDOM: "the model is a random checkpoint (runner model tiny or synthetic), never trained, so ROUGE is "
    "not meaningful (its speed and memory are real)",
}
"""The report's footnote to a ROUGE it marks as not meaningful, by ``weights_kind``."""


def has_random_weights(model: str) -> bool:
    """Whether ``model`` is a folder whose ``config.json`` declares random weights. A hub id, a built-in
    name or an unreadable file is not: only a checkpoint that says so is marked, never one guessed at."""
    try:
        config = json.loads((Path(model).expanduser() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get(RANDOM_WEIGHTS_KEY) is True


def quality_caveat(config: RunConfig) -> str | None:
    """The note a result carries when its ROUGE means nothing (``quality_meaningful`` false); None when
    the weights may be trained."""
    if config.synthetic_weights:
        return f"synthetic weights: output length forced to {config.max_new_tokens} tokens; ROUGE is not meaningful"
    if has_random_weights(config.model):
        return (
            f"random weights: the model is a checkpoint of random weights ({RANDOM_WEIGHTS_KEY} in its "
            "config.json), so its summaries are noise and ROUGE is not meaningful; speed and memory are real"
        )
    return None


def weights_kind(result: RunResult) -> str | None:
    """Why a result's ROUGE means nothing, in two words ('synthetic weights', 'random weights'); None
    when it may mean something. A result that is not meaningful without synthetic weights ran a marked
    random checkpoint: ``quality_caveat`` knows no third reason."""
    if result.quality_meaningful:
        return None
    return SYNTHETIC if result.config.synthetic_weights else RANDOM


def weights_kinds(results: Iterable[RunResult]) -> list[str]:
    """The distinct ``weights_kind``s of ``results``, synthetic first; empty when every ROUGE may mean something."""
    kinds = {kind for r in results if (kind := weights_kind(r)) is not None}
    return [k for k in (SYNTHETIC, RANDOM) if k in kinds]
