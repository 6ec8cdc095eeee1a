"""Two sides of runs, metric by metric: every metric with its change, and whether the difference is real.

The unit of a speed comparison is a run, one process: the batches of one process are not independent
samples (sorted longest first, first-use costs, one machine state), and a test on them called two
repeats of one cell 4.49x apart "significant". Like pyperf's ``compare_to``, each side is a set of runs
(``runner launch --repeat N`` folders, or several folders), and Welch's t-test on the logarithms of
their per-run docs/s and call time says at ``alpha`` whether the sides differ: run-to-run noise on a
shared machine is a factor (a busy neighbour slows every step alike), and the verdict is a ratio, the
ratio of the sides' geometric means shown in the table. One run a side gets the difference and "one
run each: no verdict". Batch-to-batch spread within a run is shown as description only. Each document's
ROUGE is a sample, paired across the sides by document id. Whether the runs did the same work at all,
which no test can fix, is ``comparable``'s question.

The verdict beside each metric follows the same discipline: "better" or "worse" only when the test on the
samples the metric comes from is significant. A figure measured once per run (model load, warmup, peak
memory, energy, cost) has no noise to weigh a change against, so it gets "one sample", never a direction,
however far it moved: a 0.03 s warmup that became 0.09 s is as likely a busy neighbour as a regression.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from runner.console import fmt_bytes
from runner.contract import rundir
from runner.contract.errors import UserError
from runner.contract.schema import DocRecord, Percentiles, RunResult
from runner.report.cells import (
    PROCESS,
    batch_label,
    cap_label,
    cell_key,
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

Better = Literal["higher", "lower"] | None

DOCS_TEST, LATENCY_TEST = "docs/s per run", "call time p50 per run"
NOISE = 0.05
"""Speed changes smaller than this (5%) are "within noise" whatever the test says: a test on a few runs of
a shared machine finds drifts of that size (4% between interleaved repeats of one cell on a 2-core CI
machine, p = 0.025), and no choice of backend, quantization or batch size turns on them. Criterion's
noise threshold, in spirit; ``runner compare --noise-threshold`` sets another."""
ONE_SAMPLE, UNTESTED, NO_CHANGE, NO_VERDICT = "one sample", "untested", "no change", "no verdict"


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


def _p(p: Percentiles | None, q: str) -> float | None:
    return getattr(p, q) if p is not None else None


def rouge_test(metric: str) -> str:
    return f"{metric} per document"


METRICS = (
    MetricSpec("docs/s", lambda r: r.metrics.docs_per_second, ".3f", "higher", test=DOCS_TEST),
    MetricSpec("output tokens/s", lambda r: r.metrics.output_tokens_per_second, ".1f", "higher", test=DOCS_TEST),
    MetricSpec("call time p50", lambda r: r.metrics.latency_p50_s, ".3f", "lower", " s", test=LATENCY_TEST),
    MetricSpec("call time p90", lambda r: r.metrics.latency_p90_s, ".3f", "lower", " s"),
    MetricSpec("call time p99", lambda r: r.metrics.latency_p99_s, ".3f", "lower", " s"),
    MetricSpec("first token p50", lambda r: _p(r.metrics.time_to_first_token_s, "p50"), ".4f", "lower", " s"),
    MetricSpec("first token p90", lambda r: _p(r.metrics.time_to_first_token_s, "p90"), ".4f", "lower", " s"),
    MetricSpec("per token p50", lambda r: _p(r.metrics.time_per_output_token_s, "p50"), ".5f", "lower", " s"),
    MetricSpec("per token p90", lambda r: _p(r.metrics.time_per_output_token_s, "p90"), ".5f", "lower", " s"),
    MetricSpec("documents", lambda r: r.metrics.documents, "g", generated=False),
    MetricSpec("avg input tokens", lambda r: r.metrics.avg_input_tokens, ".1f"),
    MetricSpec("avg output tokens", lambda r: r.metrics.avg_output_tokens, ".1f"),
    *(MetricSpec(name, _rouge(key), ".4f", "higher", test=rouge_test(name)) for name, key in ROUGE.items()),
    MetricSpec("lead-3 ROUGE-1", _rouge("rouge1", lead3=True), ".4f"),
    # The peak up to a failure is still a peak; load and warmup happen before any document.
    MetricSpec("peak memory", lambda r: r.metrics.peak_memory_bytes, "bytes", "lower", generated=False),
    # What the run needed (the memory plan's figure), where torch measured it: reserved is the cache's size.
    MetricSpec("peak allocated", lambda r: r.metrics.peak_memory_allocated_bytes, "bytes", "lower", generated=False),
    # The whole card through NVML: the one memory figure measured alike for every backend on a GPU.
    MetricSpec("device memory (NVML)", lambda r: r.metrics.peak_device_memory_bytes, "bytes", "lower", generated=False),
    MetricSpec("energy / doc", lambda r: r.metrics.energy_per_doc_joules, ".1f", "lower", " J"),
    MetricSpec("$ / 1k docs", lambda r: r.metrics.cost_per_1k_docs_usd, ".4f", "lower"),
    MetricSpec("generate time", lambda r: r.metrics.generate_seconds, ".2f", "lower", " s", test=DOCS_TEST),
    # Of the generate time, the model's own: what a harness change moves is the difference between the two.
    MetricSpec("model generate time", lambda r: r.metrics.model_generate_seconds, ".2f", "lower", " s", test=DOCS_TEST),
    MetricSpec("model load", lambda r: r.metrics.model_load_seconds, ".2f", "lower", " s", generated=False),
    MetricSpec("warmup", lambda r: r.metrics.warmup_seconds, ".2f", "lower", " s", generated=False),
    MetricSpec("torch.compile", lambda r: r.metrics.compile_seconds, ".2f", "lower", " s", generated=False),
)

TIMES_AND_RATES = frozenset(
    s.name
    for s in METRICS
    if s.unit == " s" or s.test in (DOCS_TEST, LATENCY_TEST) or s.name in ("energy / doc", "$ / 1k docs")
)
"""The metrics a side folds by the geometric mean (``_value``)."""

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
    ("warm-up", lambda r: r.config.warmup),
    ("batches timed", lambda r: len(r.metrics.batches)),
    ("peak memory measures", lambda r: r.metrics.peak_memory_source),
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
        if self.test is not None and self.test.per == "run" and self.test.welch is None and self.test.a and self.test.b:
            return NO_VERDICT
        if self.test is None or self.test.welch is None:
            return UNTESTED
        better = (self.change > 0) == (self.spec.better == "higher")
        w = self.test.welch
        test_better = (w.mean_b > w.mean_a) == self.test.higher_is_better
        # A per-sample mean can move the other way from a whole-run figure (a slow tail batch); then
        # neither direction is established.
        if not w.significant or test_better != better or self.test.within_noise:
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
    """One significance test and how to say it: per run (Welch's test on the two sides' runs, each a
    process) or per document (a paired test on the documents both sides scored)."""

    name: str
    unit: str
    higher_is_better: bool
    a: list[float]
    b: list[float]
    welch: Welch | None
    per: Literal["run", "document"] = "run"
    spec: str = ".3f"
    within: str = ""
    """Per run: the batch-to-batch spread inside each side's runs, as description only (not a test)."""
    noise: float = 0.0
    """Per run: a change of the sides' geometric means smaller than this share is within noise."""

    @property
    def within_noise(self) -> bool:
        """A per-run change smaller than the noise threshold (the test's means are of log values)."""
        w = self.welch
        return self.per == "run" and w is not None and abs(math.exp(w.mean_b - w.mean_a) - 1) < self.noise

    @property
    def verdict(self) -> str:
        """'significant', 'not significant', or, for a significant change inside the threshold, says so."""
        w = self.welch
        assert w is not None
        if w.significant and self.within_noise:
            return f"significant, but within the {self.noise:.0%} noise threshold: no clear change"
        return w.verdict

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
        within = f"; {self.within}" if self.within else ""
        if self.per == "run" and self.a and self.b:
            s, u = self.spec, self.unit
            ga, gb = geometric_mean(self.a), geometric_mean(self.b)
            shown = f"{self.name}: {ga:{s}}{u} → {gb:{s}}{u} ({self._runs()}): {self._how(ga, gb)}"
            if self.welch is None:
                return f"{shown}; {self._no_verdict()}{within}"
            w = self.welch
            return (
                f"{shown}, {self.verdict} ({w.name} t on log values = {w.t:.2f}, df = {w.df:.1f}, p = {w.p:.3g}, "
                f"alpha = {w.alpha:g}){within}"
            )
        if self.welch is None:
            return f"{self.name}: cannot test ({self._too_few()})"
        w, s, u = self.welch, self.spec, self.unit
        return (
            f"{self.name}: {w.mean_a:{s}} ± {w.stdev_a:{s}}{u} → {w.mean_b:{s}} ± {w.stdev_b:{s}}{u} "
            f"({self._counted()}): {self._how(w.mean_a, w.mean_b)}, {w.verdict} "
            f"({w.name} t = {w.t:.2f}, df = {w.df:.1f}, p = {w.p:.3g}, alpha = {w.alpha:g}){within}"
        )

    def _runs(self) -> str:
        """'3 vs 3 runs: 1.2, 1.3, 1.1 | 2.0, 2.2, 2.1': a few runs are best shown, not summarized."""
        if len(self.a) == len(self.b) == 1:
            return "1 vs 1 runs"
        each = " | ".join(", ".join(f"{v:{self.spec}}" for v in side) for side in (self.a, self.b))
        return f"{len(self.a)} vs {len(self.b)} runs: {each}"

    def _no_verdict(self) -> str:
        if len(self.a) == len(self.b) == 1:
            return "one run each: no verdict (repeat each side, `runner launch --repeat N`, to test it)"
        return f"no verdict: each side needs at least 2 runs ({len(self.a)} vs {len(self.b)})"

    def _too_few(self) -> str:
        if self.per == "document":
            return (
                f"{len(self.a)} documents scored in both runs; the test needs 2, with reference summaries "
                "and each run's docs.jsonl beside its result.json"
            )
        return f"{len(self.a)} vs {len(self.b)} runs with documents; each side needs at least 2"

    def _counted(self) -> str:
        w = self.welch
        assert w is not None
        return f"{w.n_a} documents in both runs" if self.per == "document" else f"{w.n_a} vs {w.n_b} runs"

    def _how(self, mean_a: float, mean_b: float) -> str:
        """The change as one figure: for speed, the ratio of the sides' means (the table's values)."""
        if mean_b == mean_a:
            return "no change"
        if self.per == "document":  # a score near 0 makes a ratio meaningless; the difference is what moved
            return f"{mean_b - mean_a:+{self.spec}} per document"
        ratio = mean_b / mean_a if mean_a else float("inf")
        faster = ratio > 1 if self.higher_is_better else ratio < 1
        factor = ratio if ratio >= 1 else (1 / ratio if ratio else float("inf"))
        return f"{factor:.2f}x {'faster' if faster else 'slower'}"


@dataclass
class Comparison:
    a: Run
    b: Run
    """The first run of each side: its config, documents and ROUGE stand for the side."""
    config: list[tuple[str, Any, Any]]
    metrics: list[MetricChange]
    tests: list[SampleTest]
    warnings: list[str] = field(default_factory=list)
    alpha: float = ALPHA
    refusal: str | None = None
    """Why no number of one run should be set against the other's (see ``comparable.refusal``); the CLI
    stops on it unless told to compare anyway."""
    runs_a: list[Run] = field(default_factory=list)
    runs_b: list[Run] = field(default_factory=list)
    noise: float = NOISE


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def batch_docs_per_second(result: RunResult) -> list[float]:
    return [b.size / b.seconds for b in result.metrics.batches if b.seconds > 0]


def _per_run(runs: Sequence[Run], get: Callable[[RunResult], float | None]) -> list[float]:
    """One value a run, from the runs that generated documents."""
    return [v for r in runs if r.result.metrics.documents and (v := get(r.result)) is not None]


def _within(runs_a: Sequence[Run], runs_b: Sequence[Run]) -> str:
    """The batches' docs/s inside each side's runs: how steady a run was, never a test of the sides."""

    def side(runs: Sequence[Run]) -> str:
        rates = [x for r in runs for x in batch_docs_per_second(r.result)]
        if len(rates) < 2:
            return "-"
        return f"{statistics.fmean(rates):.3f} ± {statistics.stdev(rates):.3f} over {len(rates)} batches"

    return f"within runs (description only): batch docs/s {side(runs_a)} → {side(runs_b)}"


def _speed_tests(runs_a: Sequence[Run], runs_b: Sequence[Run], alpha: float, noise: float) -> list[SampleTest]:
    tests = []
    for name, unit, higher, get, within in (
        (DOCS_TEST, "", True, lambda r: r.metrics.docs_per_second, _within(runs_a, runs_b)),
        (LATENCY_TEST, " s", False, lambda r: r.metrics.latency_p50_s, ""),
    ):
        xa, xb = [v for v in _per_run(runs_a, get) if v > 0], [v for v in _per_run(runs_b, get) if v > 0]
        welch = welch_test([math.log(v) for v in xa], [math.log(v) for v in xb], alpha)
        tests.append(SampleTest(name, unit, higher, xa, xb, welch, within=within, noise=noise))
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


def _value(spec: MetricSpec, runs: Sequence[Run]) -> float | None:
    """The side's figure over its runs; one run: its own value.

    Every time and rate (docs/s, call time and token times, energy and cost per document) folds by the
    geometric mean, as the tested speeds must (their ratio is the speed-up the test's sentence gives), so
    one table never mixes two kinds of average; a memory peak by the largest, as the report does (the
    card must hold the worst repeat); counts and scores by the mean."""
    values = _per_run(runs, spec.get) if spec.generated else [v for r in runs if (v := spec.get(r.result)) is not None]
    if not values:
        return None
    if all(v == values[0] for v in values):
        return values[0]
    if spec.spec == "bytes":
        return max(values)
    if spec.name in TIMES_AND_RATES and min(values) > 0:
        return geometric_mean(values)
    return statistics.fmean(values)


def compare_runs(
    a: Run | Sequence[Run], b: Run | Sequence[Run], alpha: float = ALPHA, noise: float = NOISE
) -> Comparison:
    """Side B against side A, each one run or several (repeats of one cell)."""
    runs_a, runs_b = ([a] if isinstance(a, Run) else list(a)), ([b] if isinstance(b, Run) else list(b))
    first_a, first_b = runs_a[0], runs_b[0]
    ra, rb = first_a.result, first_b.result
    notes, mixed = warnings(ra, rb), []
    for side, runs in (("A", runs_a), ("B", runs_b)):
        for other in runs[1:]:
            if why := refusal(runs[0], other):
                notes.append(f"side {side}'s runs did different work ({other.result.run_id}): {why}")
        # A test across processes compares two cells: a side that mixes cells (batch 4 with batch 2) is a
        # sample of neither, so its first run of another cell refuses the comparison.
        if apart := next(((o, d) for o in runs[1:] if (d := _cell_difference(runs[0], o))), None):
            mixed.append(f"side {side}'s runs are not repeats of one cell ({apart[0].result.run_id}: {apart[1]})")
    tests = _speed_tests(runs_a, runs_b, alpha, noise) + _rouge_tests(first_a, first_b, alpha, notes)
    by_name = {t.name: t for t in tests}
    judged = bool(ra.metrics.documents and rb.metrics.documents)
    metrics = [
        MetricChange(spec, _value(spec, runs_a), _value(spec, runs_b), by_name.get(spec.test or ""), judged)
        for spec in METRICS
    ]
    config = [(name, get(ra), get(rb)) for name, get in CONFIG_FIELDS]
    config.append(("runs", len(runs_a), len(runs_b)))
    refused = "; ".join(why for why in (refusal(first_a, first_b), *mixed) if why) or None
    if not judged:
        notes.insert(0, f"no verdicts: {refused}")
    return Comparison(first_a, first_b, config, metrics, tests, notes, alpha, refused, runs_a, runs_b, noise)


def _cell_difference(a: Run, b: Run) -> str:
    """The fields of the cell key (``runner.report.cells``) in which two runs differ, 'batch 4 vs 2, ...';
    empty for repeats of one cell."""
    ka, kb = cell_key(a.result), cell_key(b.result)
    return ", ".join(
        f"{f.name} {getattr(ka, f.name) or '-'} vs {getattr(kb, f.name) or '-'}"
        for f in dataclasses.fields(ka)
        if getattr(ka, f.name) != getattr(kb, f.name)
    )


def verdict_rule(alpha: float, noise: float = NOISE) -> str:
    """The footnote that says when the verdict column names a direction."""
    by_docs = ", ".join(s.name for s in METRICS if s.test == DOCS_TEST)
    once = ", ".join(s.name for s in METRICS if s.test is None and s.better)
    return (
        f"The last column says better or worse only where a test finds the difference significant at alpha = "
        f"{alpha:g}: Welch's t-test on the logarithms of each side's per-run docs/s gives the verdict of {by_docs} "
        "(the sides did the same work, so these move together), the same test on per-run call time p50 that of "
        "call time p50 (a run is one process; the batches of one run are not independent samples; a side of "
        f"several runs shows their geometric mean; a change under {noise:.0%} is within noise, whatever the test "
        "says); for ROUGE, a paired t-test on the per-document scores of each side's first run, over the documents "
        'both summarized. "no verdict": fewer than 2 runs on a side; "no clear change": the test does not establish '
        'a direction, or the speed change is within noise; "no change": both sides gave every document the same '
        'score; "untested": a side had too few scored documents; '
        f'"one sample": a figure with no test here ({once}), so no change in it is called better or worse.'
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
