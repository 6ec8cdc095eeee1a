"""Repeated runs of one cell: mean ± standard deviation, and a warning when the machine is noisy.

One run's docs/s is one sample of a noisy quantity (clock boost, a neighbour on a shared host, thermal
throttling). ``runner launch --repeat N`` runs the same cell N times into folders ``<id>-r1..-rN`` on the
same dataset, and this module says how much the numbers moved. The report uses the same ``Stat`` to
fold repeats of a cell into one row, so both show the same mean ± stdev.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from runner.contract.schema import RunResult, Status

# Above this coefficient of variation of docs/s, differences between cells smaller than the noise are
# not worth reading; 5% is the level at which pyperf also flags a benchmark as unstable.
CV_WARN = 0.05


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation and count of one metric over repeats."""

    mean: float
    stdev: float
    n: int

    @property
    def cv(self) -> float | None:
        """Coefficient of variation (stdev / mean); None when it is undefined."""
        return self.stdev / abs(self.mean) if self.n > 1 and self.mean else None

    def format(self, spec: str = ".3f") -> str:
        if self.n < 2:
            return format(self.mean, spec)
        return f"{self.mean:{spec}} ± {self.stdev:{spec}}"


def stat(values: Iterable[float | None]) -> Stat | None:
    """The ``Stat`` of the values that are present; None when none is."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    stdev = statistics.stdev(present) if len(present) > 1 else 0.0
    return Stat(statistics.fmean(present), stdev, len(present))


@dataclass(frozen=True)
class RepeatSummary:
    runs: int
    docs_per_second: Stat | None
    output_tokens_per_second: Stat | None
    rouge1: Stat | None
    warnings: tuple[str, ...]


def summarize(results: Sequence[RunResult]) -> RepeatSummary:
    """Mean ± stdev over the completed runs, with warnings for noise and mismatched datasets."""
    done = [r for r in results if r.status == "completed"]
    dps = stat(r.metrics.docs_per_second for r in done)
    warnings = []
    if len(done) < len(results):
        warnings.append(f"{len(results) - len(done)} of {len(results)} runs did not complete; they are left out")
    if dps is not None and dps.cv is not None and dps.cv > CV_WARN:
        warnings.append(
            f"docs/s varies by {dps.cv:.1%} (coefficient of variation) across repeats, more than {CV_WARN:.0%}: "
            "the machine is noisy; compare cells with `runner compare` or run more repeats"
        )
    hashes = {r.dataset.sha256 for r in done if r.dataset}
    if len(hashes) > 1:
        warnings.append(f"the repeats ran on {len(hashes)} different datasets: they are not repeats of one cell")
    return RepeatSummary(
        runs=len(done),
        docs_per_second=dps,
        output_tokens_per_second=stat(r.metrics.output_tokens_per_second for r in done),
        rouge1=stat(r.metrics.rouge.rouge1 if r.metrics.rouge else None for r in done),
        warnings=tuple(warnings),
    )


def summary_lines(summary: RepeatSummary) -> list[str]:
    """What ``runner launch --repeat`` prints after the last run."""

    def show(s: Stat | None, spec: str) -> str:
        return "-" if s is None else s.format(spec)

    lines = [
        f"{summary.runs} repeats: docs/s {show(summary.docs_per_second, '.3f')} · "
        f"output tokens/s {show(summary.output_tokens_per_second, '.1f')} · ROUGE-1 {show(summary.rouge1, '.4f')}"
    ]
    lines += [f"warning: {w}" for w in summary.warnings]
    return lines


def worst_status(results: Sequence[RunResult]) -> Status:
    """The status the command exits with: failed beats partial beats completed."""
    statuses = {r.status for r in results}
    return next(s for s in ("failed", "partial", "completed") if s in statuses)  # type: ignore[return-value]


def repeat_requests(req, n: int) -> list:
    """``n`` copies of a ``LaunchRequest`` whose run ids share one stem and end in ``-r1`` .. ``-rN``.

    The stem is fixed before the first run starts, so the repeats sort together and the report can
    tell them apart from a rerun of the cell an hour later (which gets its own timestamp).
    """
    if n == 1:
        return [req]
    from runner.contract import catalog, rundir

    image = catalog.get_image(req.image)
    scenario = req.scenario or image.default_scenario
    stem = req.run_id or rundir.new_run_id(image.key, catalog.get_gpu(req.gpu).key, scenario, req.batch_size)
    return [dataclasses.replace(req, run_id=f"{stem}-r{i}") for i in range(1, n + 1)]
