"""Two runs side by side: every metric with its change, and whether the speed difference is real.

A 3% docs/s gain between two runs means nothing if batches of one run already vary by 10%. Like
pyperf's ``compare_to``, the comparison tests the difference against the runs' own noise: each batch's
docs/s (size / seconds) and latency (seconds) are samples, and Welch's t-test says at ``alpha`` whether
the means differ. It also says when the two runs did not do the same work, which no test can fix.

The verdict beside each metric follows the same discipline: a speed metric is "better" or "worse" only when
the test on the timings it comes from is significant, and a metric without a test only when it moved by
more than its noise threshold; anything less is "no clear change" or "within noise", never a direction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from runner.console import fmt_bytes
from runner.repeats import CV_WARN
from runner.report.cells import batch_label, gpu_of, model_label
from runner.report.document import Column, Table, text
from runner.report.gate import THRESHOLD
from runner.report.loading import Run
from runner.report.significance import ALPHA, Welch, welch_test
from runner.schema import RunResult

Better = Literal["higher", "lower"] | None

DOCS_TEST, LATENCY_TEST = "docs/s per batch", "latency per batch"

NOISE = CV_WARN
"""Relative change below which a metric without a test is "within noise": 5%, the run-to-run variation at
which pyperf calls a benchmark unstable and the report warns about repeats."""
ROUGE_NOISE = 1 - THRESHOLD
"""ROUGE moves by less than 1% between runs that are equivalent for the quality gate, which accepts 99%."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    get: Callable[[RunResult], float | None]
    spec: str = ".3f"
    better: Better = None
    unit: str = ""
    test: str | None = None
    """The significance test on the per-batch timings this metric is computed from, if any."""
    noise: float = NOISE


def _rouge(name: str, lead3: bool = False) -> Callable[[RunResult], float | None]:
    def get(r: RunResult) -> float | None:
        scores = r.metrics.lead3_rouge if lead3 else r.metrics.rouge
        return getattr(scores, name) if scores else None

    return get


METRICS = (
    MetricSpec("docs/s", lambda r: r.metrics.docs_per_second, ".3f", "higher", test=DOCS_TEST),
    MetricSpec("output tokens/s", lambda r: r.metrics.output_tokens_per_second, ".1f", "higher", test=DOCS_TEST),
    MetricSpec("latency p50", lambda r: r.metrics.latency_p50_s, ".3f", "lower", " s", test=LATENCY_TEST),
    MetricSpec("latency p90", lambda r: r.metrics.latency_p90_s, ".3f", "lower", " s", test=LATENCY_TEST),
    MetricSpec("latency p99", lambda r: r.metrics.latency_p99_s, ".3f", "lower", " s", test=LATENCY_TEST),
    MetricSpec("documents", lambda r: r.metrics.documents, "d"),
    MetricSpec("avg input tokens", lambda r: r.metrics.avg_input_tokens, ".1f"),
    MetricSpec("avg output tokens", lambda r: r.metrics.avg_output_tokens, ".1f"),
    MetricSpec("ROUGE-1", _rouge("rouge1"), ".4f", "higher", noise=ROUGE_NOISE),
    MetricSpec("ROUGE-2", _rouge("rouge2"), ".4f", "higher", noise=ROUGE_NOISE),
    MetricSpec("ROUGE-L", _rouge("rougeL"), ".4f", "higher", noise=ROUGE_NOISE),
    MetricSpec("lead-3 ROUGE-1", _rouge("rouge1", lead3=True), ".4f"),
    MetricSpec("peak memory", lambda r: r.metrics.peak_memory_bytes, "bytes", "lower"),
    MetricSpec("energy / doc", lambda r: r.metrics.energy_per_doc_joules, ".1f", "lower", " J"),
    MetricSpec("$ / 1k docs", lambda r: r.metrics.cost_per_1k_docs_usd, ".4f", "lower"),
    MetricSpec("generate time", lambda r: r.metrics.generate_seconds, ".2f", "lower", " s", test=DOCS_TEST),
    # Of the generate time, the model's own: what a harness change moves is the difference between the two.
    MetricSpec("model generate time", lambda r: r.metrics.model_generate_seconds, ".2f", "lower", " s", test=DOCS_TEST),
    MetricSpec("model load", lambda r: r.metrics.model_load_seconds, ".2f", "lower", " s"),
    MetricSpec("warmup", lambda r: r.metrics.warmup_seconds, ".2f", "lower", " s"),
)

CONFIG_FIELDS: tuple[tuple[str, Callable[[RunResult], Any]], ...] = (
    ("run id", lambda r: r.run_id),
    ("status", lambda r: r.status),
    ("image", lambda r: r.config.image),
    ("scenario", lambda r: r.config.scenario),
    ("GPU", gpu_of),
    ("device", lambda r: r.environment.device.name),
    ("model", lambda r: model_label(r.config.model)),
    (
        "backend",
        lambda r: f"{r.backend.name} {r.backend.dtype} {r.backend.attention or ''}".strip() if r.backend else None,
    ),
    ("batch", lambda r: batch_label([r])),
    ("max new tokens", lambda r: r.config.max_new_tokens),
    ("dataset sha256", lambda r: r.dataset.sha256[:12] if r.dataset else None),
    ("batches timed", lambda r: len(r.metrics.batches)),
    ("settings", lambda r: _settings(r) or "-"),
)


def _settings(r: RunResult) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(r.environment.settings.items()))


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
    test: SpeedTest | None = None
    """The test named by ``spec.test`` (its ``welch`` is None when a run had too few batches for it)."""

    @property
    def change(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def percent(self) -> float | None:
        return None if self.change is None or not self.a else self.change / abs(self.a) * 100

    @property
    def direction(self) -> str:
        """'better' or 'worse' where the change is real, 'no clear change' where the metric's test says it
        is not, 'within noise' where a metric without a test moved less than its noise threshold, and ''
        when there is no change or no preferred direction."""
        if not self.change or self.spec.better is None:
            return ""
        better = (self.change > 0) == (self.spec.better == "higher")
        if self.test is not None and self.test.welch is not None:
            w = self.test.welch
            test_better = (w.mean_b > w.mean_a) == self.test.higher_is_better
            # A per-batch mean can move the other way from a whole-run figure (a slow tail batch); then
            # neither direction is established.
            if not w.significant or test_better != better:
                return "no clear change"
        elif self.a and abs(self.change / self.a) < self.spec.noise:
            return "within noise"
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
class SpeedTest:
    """One significance test over per-batch samples, and how to say it."""

    name: str
    unit: str
    higher_is_better: bool
    a: list[float]
    b: list[float]
    welch: Welch | None

    def sentence(self) -> str:
        if self.welch is None:
            return (
                f"{self.name}: cannot test ({len(self.a)} vs {len(self.b)} batches; "
                "each run needs at least 2: use more documents or a smaller batch)"
            )
        w = self.welch
        ratio = w.mean_b / w.mean_a if w.mean_a else float("inf")
        faster = ratio > 1 if self.higher_is_better else ratio < 1
        factor = ratio if ratio >= 1 else (1 / ratio if ratio else float("inf"))
        how = "no change" if ratio == 1 else f"{factor:.2f}x {'faster' if faster else 'slower'}"
        return (
            f"{self.name}: {w.mean_a:.3f} ± {w.stdev_a:.3f}{self.unit} → {w.mean_b:.3f} ± {w.stdev_b:.3f}{self.unit} "
            f"({w.n_a} vs {w.n_b} batches): {how}, {w.verdict} "
            f"(Welch t = {w.t:.2f}, df = {w.df:.1f}, p = {w.p:.3g}, alpha = {w.alpha:g})"
        )


@dataclass
class Comparison:
    a: Run
    b: Run
    config: list[tuple[str, Any, Any]]
    metrics: list[MetricChange]
    tests: list[SpeedTest]
    warnings: list[str] = field(default_factory=list)
    alpha: float = ALPHA


def batch_docs_per_second(result: RunResult) -> list[float]:
    return [b.size / b.seconds for b in result.metrics.batches if b.seconds > 0]


def batch_latencies(result: RunResult) -> list[float]:
    return [b.seconds for b in result.metrics.batches]


def _warnings(a: RunResult, b: RunResult) -> list[str]:
    out = []
    if a.dataset and b.dataset and a.dataset.sha256 != b.dataset.sha256:
        out.append(
            f"the runs used different datasets (sha256 {a.dataset.sha256[:12]} vs {b.dataset.sha256[:12]}): "
            "speed and quality differences include the documents themselves"
        )
    elif not (a.dataset and b.dataset):
        out.append("one of the runs has no dataset record (it failed before loading one)")
    if a.config.max_new_tokens != b.config.max_new_tokens:
        out.append(f"max new tokens differ ({a.config.max_new_tokens} vs {b.config.max_new_tokens})")
    if a.environment.settings != b.environment.settings:
        out.append(
            f"the runs' environment settings differ ({_settings(a) or 'none'} vs {_settings(b) or 'none'}): "
            "allocator, attention and thread settings change memory and speed"
        )
    for label, r in (("A", a), ("B", b)):
        if r.status != "completed":
            out.append(f"{label} ({r.run_id}) is {r.status}" + (f": {r.error.error_class}" if r.error else ""))
        if not r.quality_meaningful:
            out.append(f"{label} ran synthetic weights: its ROUGE is not meaningful")
    return out


def compare_runs(a: Run, b: Run, alpha: float = ALPHA) -> Comparison:
    ra, rb = a.result, b.result
    config = [(name, get(ra), get(rb)) for name, get in CONFIG_FIELDS]
    tests = []
    for name, unit, higher, samples in (
        (DOCS_TEST, "", True, batch_docs_per_second),
        (LATENCY_TEST, " s", False, batch_latencies),
    ):
        xa, xb = samples(ra), samples(rb)
        tests.append(SpeedTest(name, unit, higher, xa, xb, welch_test(xa, xb, alpha)))
    by_name = {t.name: t for t in tests}
    metrics = [MetricChange(spec, spec.get(ra), spec.get(rb), by_name.get(spec.test or "")) for spec in METRICS]
    return Comparison(a, b, config, metrics, tests, _warnings(ra, rb), alpha)


def verdict_rule(alpha: float) -> str:
    """The footnote that says when the verdict column names a direction."""
    timed = ", ".join(s.name for s in METRICS if s.test)
    return (
        f"The last column says better or worse only for a real difference. For {timed}: when Welch's test on "
        f'the per-batch timings they come from is significant at alpha = {alpha:g}, otherwise "no clear '
        f'change". For the other metrics (and when a run has too few batches to test): when the change is over '
        f"{ROUGE_NOISE:.0%} for ROUGE (what the quality gate tolerates) or {NOISE:.0%} otherwise (the variation "
        'at which pyperf calls a benchmark unstable), otherwise "within noise".'
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
