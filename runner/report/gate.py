"""The quality gate: does an optimization keep the summaries as good as the reference?

Speed from a quantized model or a faster kernel is only worth having if quality holds. MLPerf
Inference's summarization benchmarks accept a submission whose ROUGE reaches 99% of the reference
implementation's, and sumbench applies the same rule: each scenario's ROUGE-1 must be at least 99% of
the reference scenario's on the same GPU, model, dataset, output length and prompt. The reference is fp16
(``default``) on a GPU and ``fp32`` on a CPU, unless ``--reference`` names another. On a CPU ``default``
still runs fp16 (``runner.scenarios``), a precision most CPUs only emulate, while fp32 is the cpu image's own
default scenario: there ``default`` is the reference only when no fp32 run exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from runner.contract.weights import weights_kinds
from runner.report.cells import Cell, CellKey

THRESHOLD = 0.99
DEFAULT_REFERENCES = ("default",)
CPU_REFERENCES = ("fp32", "default")

Verdict = Literal["pass", "fail", "reference", "no reference", "n/a", "not gated"]


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    ratio: float | None = None
    reference: str | None = None
    reference_rouge1: float | None = None
    reason: str = ""

    def label(self) -> str:
        """The table cell: 'pass 100.2%', 'FAIL 96.1%', 'reference', or why there is no verdict."""
        if self.verdict in ("pass", "fail"):
            return f"{'pass' if self.verdict == 'pass' else 'FAIL'} {self.ratio:.1%}"
        if self.verdict in ("n/a", "not gated"):
            return f"{self.verdict} ({self.reason})"
        return self.verdict


def references_for(gpu: str, reference: str | None) -> tuple[str, ...]:
    """The scenarios tried as the reference, in order of preference."""
    if reference:
        return (reference,)
    return CPU_REFERENCES if gpu == "cpu" else DEFAULT_REFERENCES


def quality_gate(cells: Sequence[Cell], reference: str | None = None) -> dict[CellKey, GateResult]:
    """A verdict for every cell, judged against the reference cells that share its quality key."""
    by_quality: dict[tuple, list[Cell]] = {}
    for cell in cells:
        by_quality.setdefault(cell.key.quality_key, []).append(cell)
    verdicts: dict[CellKey, GateResult] = {}
    for group in by_quality.values():
        ref_name = next(
            (
                name
                for name in references_for(group[0].key.gpu, reference)
                if any(c.key.scenario == name for c in group)
            ),
            None,
        )
        ref_cells = [c for c in group if c.key.scenario == ref_name]
        for cell in group:
            verdicts[cell.key] = _judge(cell, ref_name, ref_cells, reference)
    return verdicts


def _judge(cell: Cell, ref_name: str | None, ref_cells: list[Cell], asked: str | None) -> GateResult:
    if ref_name is None:
        wanted = " or ".join(references_for(cell.key.gpu, asked))
        return GateResult("no reference", reason=f"no {wanted} run on this GPU, model and dataset")
    if cell.key.scenario == ref_name:
        if own := weights_kinds(cell.results):  # its ROUGE holds no other row to anything
            return GateResult("not gated", reference=ref_name, reason=" and ".join(own))
        return GateResult("reference", reference=ref_name)
    if kinds := weights_kinds(r for c in (cell, *ref_cells) for r in c.results):
        return GateResult("n/a", reference=ref_name, reason=" and ".join(kinds))
    ref_scores = [s for c in ref_cells if (s := c.rouge("rouge1")) is not None]
    mine = cell.rouge("rouge1")
    if mine is None or not ref_scores:
        return GateResult("n/a", reference=ref_name, reason="no ROUGE: the dataset has no reference summaries")
    # Every reference run counts once, whichever batch size it used: greedy fp16 output should not
    # depend on the batch, and averaging the runs is fairer than picking one.
    total = sum(s.mean * s.n for s in ref_scores)
    ref = total / sum(s.n for s in ref_scores)
    if ref <= 0:
        return GateResult("n/a", reference=ref_name, reference_rouge1=ref, reason=f"{ref_name} ROUGE-1 is 0")
    ratio = mine.mean / ref
    return GateResult("pass" if ratio >= THRESHOLD else "fail", ratio, ref_name, ref)
