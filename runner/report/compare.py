"""Two runs side by side: every metric with its change, and whether the difference is real.

A 3% docs/s gain between two runs means nothing if batches of one run already vary by 10%. Like
pyperf's ``compare_to``, the comparison tests the difference against the runs' own noise: each batch's
docs/s (size / seconds) and latency (seconds) are samples, and Welch's t-test says at ``alpha`` whether
the means differ; each document's ROUGE is a sample too, paired across the runs by document id. Whether
the two runs did the same work at all, which no test can fix, is ``comparable``'s question.

The verdict beside each metric follows the same discipline: "better" or "worse" only when the test on the
samples the metric comes from is significant. A figure measured once per run (model load, warmup, peak
memory, energy, cost) has no noise to weigh a change against, so it gets "one sample", never a direction,
however far it moved: a 0.03 s warmup that became 0.09 s is as likely a busy neighbour as a regression.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from runner import rundir
from runner.console import fmt_bytes
from runner.errors import UserError
from runner.report.cells import (
    PROCESS,
    batch_label,
    cap_label,
    checkpoint_label,
    gpu_of,
    launch_of,
    memory_cap,
    short_image_id,
)
from runner.report.comparable import refusal, settings, warnings
from runner.report.document import Column, Table, text
from runner.report.loading import Run
from runner.report.significance import ALPHA, Welch, paired_test, welch_test
from runner.schema import DocRecord, RunResult

Better = Literal["higher", "lower"] | None

DOCS_TEST, LATENCY_TEST = "docs/s per batch", "latency per batch"
ONE_SAMPLE, UNTESTED, NO_CHANGE = "one sample", "untested", "no change"


@dataclass(frozen=True)
class MetricSpec:
    name: str
    get: Callable[[RunResult], float | None]
    spec: str = ".3f"
    better: Better = None
    unit: str = ""
    test: str | None = None
    """The significance test on the samples (batches, documents) this metric is computed from, if any."""
    generated: bool = True
    """Measured while generating: a run without documents did not measure it, whatever default it holds
    (a failed run's generate time is 0.0, which is no speed)."""


def _rouge(name: str, lead3: bool = False) -> Callable[[RunResult], float | None]:
    def get(r: RunResult) -> float | None:
        scores = r.metrics.lead3_rouge if lead3 else r.metrics.rouge
        return getattr(scores, name) if scores else None

    return get


ROUGE = {"ROUGE-1": "rouge1", "ROUGE-2": "rouge2", "ROUGE-L": "rougeL"}


def rouge_test(metric: str) -> str:
    return f"{metric} per document"


METRICS = (
    MetricSpec("docs/s", lambda r: r.metrics.docs_per_second, ".3f", "higher", test=DOCS_TEST),
    MetricSpec("output tokens/s", lambda r: r.metrics.output_tokens_per_second, ".1f", "higher", test=DOCS_TEST),
    MetricSpec("latency p50", lambda r: r.metrics.latency_p50_s, ".3f", "lower", " s", test=LATENCY_TEST),
    MetricSpec("latency p90", lambda r: r.metrics.latency_p90_s, ".3f", "lower", " s", test=LATENCY_TEST),
    MetricSpec("latency p99", lambda r: r.metrics.latency_p99_s, ".3f", "lower", " s", test=LATENCY_TEST),
    MetricSpec("documents", lambda r: r.metrics.documents, "d", generated=False),
    MetricSpec("avg input tokens", lambda r: r.metrics.avg_input_tokens, ".1f"),
    MetricSpec("avg output tokens", lambda r: r.metrics.avg_output_tokens, ".1f"),
    *(MetricSpec(name, _rouge(key), ".4f", "higher", test=rouge_test(name)) for name, key in ROUGE.items()),
    MetricSpec("lead-3 ROUGE-1", _rouge("rouge1", lead3=True), ".4f"),
    # The peak up to a failure is still a peak; load and warmup happen before any document.
    MetricSpec("peak memory", lambda r: r.metrics.peak_memory_bytes, "bytes", "lower", generated=False),
    # What the run needed (the memory plan's figure), where torch measured it: reserved is the cache's size.
    MetricSpec("peak allocated", lambda r: r.metrics.peak_memory_allocated_bytes, "bytes", "lower", generated=False),
    MetricSpec("energy / doc", lambda r: r.metrics.energy_per_doc_joules, ".1f", "lower", " J"),
    MetricSpec("$ / 1k docs", lambda r: r.metrics.cost_per_1k_docs_usd, ".4f", "lower"),
    MetricSpec("generate time", lambda r: r.metrics.generate_seconds, ".2f", "lower", " s", test=DOCS_TEST),
    # Of the generate time, the model's own: what a harness change moves is the difference between the two.
    MetricSpec("model generate time", lambda r: r.metrics.model_generate_seconds, ".2f", "lower", " s", test=DOCS_TEST),
    MetricSpec("model load", lambda r: r.metrics.model_load_seconds, ".2f", "lower", " s", generated=False),
    MetricSpec("warmup", lambda r: r.metrics.warmup_seconds, ".2f", "lower", " s", generated=False),
    MetricSpec("torch.compile", lambda r: r.metrics.compile_seconds, ".2f", "lower", " s", generated=False),
)

CONFIG_FIELDS: tuple[tuple[str, Callable[[RunResult], Any]], ...] = (
    ("run id", lambda r: r.run_id),
    ("status", lambda r: r.status),
    ("image", lambda r: r.config.image),
    ("scenario", lambda r: r.config.scenario),
    ("GPU", gpu_of),
    ("device", lambda r: r.environment.device.name),
    ("model", checkpoint_label),
    (
        "backend",
        lambda r: f"{r.backend.name} {r.backend.dtype} {r.backend.attention or ''}".strip() if r.backend else None,
    ),
    ("batch", lambda r: batch_label([r])),
    # Settings like the batch size (a comparison may be about them), shown so that no one reads a capped
    # run as the whole card, or a run in the host's Python as one inside its image.
    ("GPU memory cap", lambda r: cap_label(memory_cap(r))),
    ("executor", lambda r: executor_label(r)),
    ("max new tokens", lambda r: r.config.max_new_tokens),
    ("forced output length", lambda r: r.config.force_output_length),
    ("dataset sha256", lambda r: r.dataset.sha256[:12] if r.dataset else None),
    ("batches timed", lambda r: len(r.metrics.batches)),
    ("settings", lambda r: settings(r) or "-"),
)


def executor_label(r: RunResult) -> str:
    """'process (host Python)', or 'docker' with the short id of the image it ran in."""
    executor, image_id = launch_of(r)
    if executor == PROCESS:
        return f"{PROCESS} (host Python)"
    return f"{executor} {short_image_id(image_id)}" if image_id else executor


def _show(value: float | None, spec: str, unit: str = "") -> str:
    if value is None:
        return "-"
    if spec == "bytes":
        return fmt_bytes(int(value))
    return format(value, spec) + unit


@dataclass(frozen=True)
class MetricChange:
    spec: MetricSpec
    a: float | None
    b: float | None
    test: SampleTest | None = None
    """The test named by ``spec.test`` (its ``welch`` is None when a run had too few samples for it)."""
    judged: bool = True
    """False when a run has no documents: what either run recorded is shown, with no verdict beside it."""

    @property
    def change(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def percent(self) -> float | None:
        return None if self.change is None or not self.a else self.change / abs(self.a) * 100

    @property
    def direction(self) -> str:
        """'better' or 'worse' where the metric's test says the change is real, 'no clear change' where it
        does not, 'no change' where both runs scored every document alike, 'untested' where a run had too
        few samples for it, 'one sample' for a figure measured once per run, and '' without a change, a value
        on both sides, a preferred direction, or a verdict."""
        if not self.judged or self.spec.better is None:
            return ""
        if self.test is not None and self.test.identical:
            return NO_CHANGE
        if not self.change:
            return ""
        if self.spec.test is None:
            return ONE_SAMPLE
        if self.test is None or self.test.welch is None:
            return UNTESTED
        better = (self.change > 0) == (self.spec.better == "higher")
        w = self.test.welch
        test_better = (w.mean_b > w.mean_a) == self.test.higher_is_better
        # A per-sample mean can move the other way from a whole-run figure (a slow tail batch); then
        # neither direction is established.
        if not w.significant or test_better != better:
            return "no clear change"
        return "better" if better else "worse"

    def row(self) -> dict[str, Any]:
        s = self.spec
        change = self.change
        if change is None:
            shown_change = "-"
        elif s.spec == "bytes":
            shown_change = ("+" if change > 0 else "-" if change < 0 else "") + fmt_bytes(int(abs(change)))
        else:
            shown_change = f"{change:+{s.spec}}{s.unit}"
        return {
            "metric": s.name,
            "a": self.a,
            "b": self.b,
            "change": change,
            "percent": self.percent,
            "direction": self.direction,
            "a_shown": _show(self.a, s.spec, s.unit),
            "b_shown": _show(self.b, s.spec, s.unit),
            "change_shown": shown_change,
            "percent_shown": "-" if self.percent is None else f"{self.percent:+.1f}%",
        }


@dataclass(frozen=True)
class SampleTest:
    """One significance test over a run's samples, and how to say it: per batch (Welch's test on two
    independent samples) or per document (a paired test on the documents both runs scored)."""

    name: str
    unit: str
    higher_is_better: bool
    a: list[float]
    b: list[float]
    welch: Welch | None
    per: Literal["batch", "document"] = "batch"
    spec: str = ".3f"

    @property
    def identical(self) -> bool:
        """Both runs gave every document the same score: nothing moved, so there is nothing to test."""
        return self.per == "document" and len(self.a) >= 2 and self.a == self.b

    def sentence(self) -> str:
        if self.identical:
            return (
                f"{self.name}: {statistics.fmean(self.a):{self.spec}} in both runs ({len(self.a)} documents): "
                "identical scores on every document: no test"
            )
        if self.welch is None:
            return f"{self.name}: cannot test ({self._too_few()})"
        w, s, u = self.welch, self.spec, self.unit
        return (
            f"{self.name}: {w.mean_a:{s}} ± {w.stdev_a:{s}}{u} → {w.mean_b:{s}} ± {w.stdev_b:{s}}{u} "
            f"({self._counted()}): {self._how()}, {w.verdict} "
            f"({w.name} t = {w.t:.2f}, df = {w.df:.1f}, p = {w.p:.3g}, alpha = {w.alpha:g})"
        )

    def _too_few(self) -> str:
        if self.per == "document":
            return (
                f"{len(self.a)} documents scored in both runs; the test needs 2, with reference summaries "
                "and each run's docs.jsonl beside its result.json"
            )
        hint = ": use more documents or a smaller batch" if self.a and self.b else ""
        return f"{len(self.a)} vs {len(self.b)} batches; each run needs at least 2{hint}"

    def _counted(self) -> str:
        w = self.welch
        assert w is not None
        return f"{w.n_a} documents in both runs" if self.per == "document" else f"{w.n_a} vs {w.n_b} batches"

    def _how(self) -> str:
        w = self.welch
        assert w is not None
        if w.mean_b == w.mean_a:
            return "no change"
        if self.per == "document":  # a score near 0 makes a ratio meaningless; the difference is what moved
            return f"{w.mean_b - w.mean_a:+{self.spec}} per document"
        ratio = w.mean_b / w.mean_a if w.mean_a else float("inf")
        faster = ratio > 1 if self.higher_is_better else ratio < 1
        factor = ratio if ratio >= 1 else (1 / ratio if ratio else float("inf"))
        return f"{factor:.2f}x {'faster' if faster else 'slower'}"


@dataclass
class Comparison:
    a: Run
    b: Run
    config: list[tuple[str, Any, Any]]
    metrics: list[MetricChange]
    tests: list[SampleTest]
    warnings: list[str] = field(default_factory=list)
    alpha: float = ALPHA
    refusal: str | None = None
    """Why no number of one run should be set against the other's (see ``comparable.refusal``); the CLI
    stops on it unless told to compare anyway."""


def batch_docs_per_second(result: RunResult) -> list[float]:
    return [b.size / b.seconds for b in result.metrics.batches if b.seconds > 0]


def batch_latencies(result: RunResult) -> list[float]:
    return [b.seconds for b in result.metrics.batches]


def _speed_tests(ra: RunResult, rb: RunResult, alpha: float) -> list[SampleTest]:
    tests = []
    for name, unit, higher, samples in (
        (DOCS_TEST, "", True, batch_docs_per_second),
        (LATENCY_TEST, " s", False, batch_latencies),
    ):
        xa, xb = samples(ra), samples(rb)
        tests.append(SampleTest(name, unit, higher, xa, xb, welch_test(xa, xb, alpha)))
    return tests


def doc_records(run: Run, notes: list[str]) -> dict[str, DocRecord]:
    """A run's per-document records by id. A docs.jsonl that cannot be read costs the ROUGE tests only
    (the result's own numbers stand), so it becomes a warning rather than an error."""
    try:
        return {d.id: d for d in rundir.read_docs(run.path)}
    except (UserError, OSError) as exc:
        notes.append(f"{run.result.run_id}: per-document scores unreadable ({exc}): ROUGE is untested")
        return {}


def paired_scores(a: dict[str, DocRecord], b: dict[str, DocRecord], key: str) -> tuple[list[float], list[float]]:
    """The scores of the documents both runs scored, in the same order: the pairs of a paired test."""
    ids = [i for i, d in a.items() if getattr(d, key) is not None and i in b and getattr(b[i], key) is not None]
    return [getattr(a[i], key) for i in ids], [getattr(b[i], key) for i in ids]


def _rouge_tests(a: Run, b: Run, alpha: float, notes: list[str]) -> list[SampleTest]:
    """Paired tests on per-document ROUGE, where both runs have scores at all."""
    if a.result.metrics.rouge is None or b.result.metrics.rouge is None:
        return []
    docs_a, docs_b = doc_records(a, notes), doc_records(b, notes)
    tests = []
    for name, key in ROUGE.items():
        xa, xb = paired_scores(docs_a, docs_b, key)
        welch = paired_test(xa, xb, alpha)
        tests.append(SampleTest(rouge_test(name), "", True, xa, xb, welch, per="document", spec=".4f"))
    return tests


def _value(spec: MetricSpec, r: RunResult) -> float | None:
    return None if spec.generated and not r.metrics.documents else spec.get(r)


def compare_runs(a: Run, b: Run, alpha: float = ALPHA) -> Comparison:
    ra, rb = a.result, b.result
    notes = warnings(ra, rb)
    tests = _speed_tests(ra, rb, alpha) + _rouge_tests(a, b, alpha, notes)
    by_name = {t.name: t for t in tests}
    judged = bool(ra.metrics.documents and rb.metrics.documents)
    metrics = [
        MetricChange(spec, _value(spec, ra), _value(spec, rb), by_name.get(spec.test or ""), judged) for spec in METRICS
    ]
    config = [(name, get(ra), get(rb)) for name, get in CONFIG_FIELDS]
    refused = refusal(a, b)
    if not judged:
        notes.insert(0, f"no verdicts: {refused}")
    return Comparison(a, b, config, metrics, tests, notes, alpha, refused)


def verdict_rule(alpha: float) -> str:
    """The footnote that says when the verdict column names a direction."""
    timed = ", ".join(s.name for s in METRICS if s.test in (DOCS_TEST, LATENCY_TEST))
    once = ", ".join(s.name for s in METRICS if s.test is None and s.better)
    return (
        f"The last column says better or worse only where a test finds the difference significant at alpha = "
        f"{alpha:g}: for {timed}, Welch's t-test on the per-batch timings they come from; for ROUGE, a paired "
        't-test on the per-document scores of the documents both runs summarized. "no clear change": the test '
        'does not establish a direction; "no change": both runs gave every document the same score; "untested": '
        "a run had too few batches or scored documents for it; "
        f'"one sample": a figure measured once per run ({once}), which one run cannot tell from noise, so no '
        "change in it is called better or worse."
    )


def config_table(cmp: Comparison) -> Table:
    rows = [{"field": name, "a": va, "b": vb, "same": "" if va == vb else "≠"} for name, va, vb in cmp.config]
    return Table(
        [
            Column("field", "", text("field")),
            Column("a", "A", text("a")),
            Column("b", "B", text("b")),
            Column("same", "", text("same")),
        ],
        rows,
    )


def metrics_table(cmp: Comparison) -> Table:
    rows = [m.row() for m in cmp.metrics]
    return Table(
        [
            Column("metric", "Metric", text("metric")),
            Column("a", "A", text("a_shown"), numeric=True),
            Column("b", "B", text("b_shown"), numeric=True),
            Column("change", "Change", text("change_shown"), numeric=True),
            Column("percent", "%", text("percent_shown"), numeric=True),
            Column("direction", "", text("direction")),
        ],
        rows,
    )
