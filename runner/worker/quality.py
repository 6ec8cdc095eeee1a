"""Summary quality: ROUGE F1 with stemming (the rouge-score package) and the lead-3 baseline."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from runner.contract.schema import Rouge

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

# A sentence ends at . ! or ? followed by space and an upper-case letter, digit or quote.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(A-Z0-9])")


@cache
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge(prediction: str, references: Sequence[str]) -> Rouge:
    """F1 per ROUGE type; with several references each type takes its best reference."""
    best = dict.fromkeys(ROUGE_TYPES, 0.0)
    for ref in references:
        scores = _scorer().score(ref, prediction)
        for t in ROUGE_TYPES:
            best[t] = max(best[t], scores[t].fmeasure)
    return Rouge(**best)


def lead3(document: str) -> str:
    """The first three sentences: the extractive baseline a summarizer has to beat."""
    sentences = _SENTENCE_END.split(document.strip())
    return " ".join(s.strip() for s in sentences[:3])


def mean(scores: Sequence[Rouge]) -> Rouge | None:
    if not scores:
        return None
    n = len(scores)
    return Rouge(**{t: sum(getattr(s, t) for s in scores) / n for t in ROUGE_TYPES})
