"""Serving runs in the report: one row per load level, latency against load, the sustainable rate.

Serving runs are never folded into the offline cells: their speed is per load level, not per batch, and a
level's requests/s is not an offline run's docs/s. Their quality meets the same gate as an offline run's:
each level's ROUGE-1 against the offline reference scenario on the same GPU, model, dataset, output length
and prompt (``runner.report.gate``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runner.contract.schema import RunResult, ServingLevel
from runner.contract.serving import rate_label
from runner.contract.weights import weights_kinds
from runner.report.cells import Cell, cell_key, model_label
from runner.report.document import Column, Figure, Row, Section, Table, number, text
from runner.report.gate import THRESHOLD, references_for
from runner.report.loading import Run

NOT_OK = ("refused", "error", "timeout", "cancelled", "not_sent")


def is_serving(result: RunResult) -> bool:
    return result.serving is not None or result.config.serving is not None


def split(runs: Sequence[Run]) -> tuple[list[Run], list[Run]]:
    """(offline runs, serving runs)."""
    offline = [r for r in runs if not is_serving(r.result)]
    return offline, [r for r in runs if is_serving(r.result)]


def run_label(result: RunResult) -> str:
    return f"{result.config.image}/{result.config.scenario} {model_label(result.config.model)} ({result.run_id})"


def reference_rouge1(result: RunResult, cells: Sequence[Cell], reference: str | None) -> tuple[str, float] | None:
    """The offline reference scenario's mean ROUGE-1 for the work this serving run did, if one ran."""
    key = cell_key(result).quality_key
    for name in references_for(key[0], reference):
        scores = [s for c in cells if c.key.quality_key == key and c.key.scenario == name if (s := c.rouge("rouge1"))]
        if scores:
            return name, sum(s.mean * s.n for s in scores) / sum(s.n for s in scores)
    return None


def gate_label(result: RunResult, level: ServingLevel, found: tuple[str, float] | None, reference: str | None) -> str:
    if found is None:
        wanted = " or ".join(references_for(cell_key(result).quality_key[0], reference))
        return f"no reference (no offline {wanted} run)"
    name, ref = found
    if kinds := weights_kinds([result]):
        return f"n/a ({' and '.join(kinds)})"
    if level.rouge is None:
        return "n/a (no ROUGE)"
    if ref <= 0:
        return f"n/a ({name} ROUGE-1 is 0)"
    ratio = level.rouge.rouge1 / ref
    return f"{'pass' if ratio >= THRESHOLD else 'FAIL'} {ratio:.1%} of {name}"


def _not_ok(statuses: dict[str, int]) -> str:
    parts = [f"{statuses[s]} {s.replace('_', ' ')}" for s in NOT_OK if statuses.get(s)]
    return ", ".join(parts) or "none"


def level_rows(runs: Sequence[Run], cells: Sequence[Cell], reference: str | None) -> list[Row]:
    rows = []
    for run in runs:
        result = run.result
        if result.serving is None:
            continue
        found = reference_rouge1(result, cells, reference)
        for level in result.serving.levels:
            rows.append(
                {
                    "kind": "serving_level",
                    "run_id": result.run_id,
                    "status": result.status,
                    "model": model_label(result.config.model),
                    "scenario": result.config.scenario,
                    "server": result.serving.server,
                    "gpu": result.environment.device.catalog_gpu or result.config.gpu,
                    "request_rate": rate_label(level.request_rate),
                    "max_concurrency": level.max_concurrency,
                    "requests": level.requests,
                    "ok": level.statuses.get("ok", 0),
                    "not_ok": _not_ok(level.statuses),
                    "requests_per_second": level.requests_per_second,
                    "output_tokens_per_second": level.output_tokens_per_second,
                    "ttft_p50_s": level.ttft_s.p50,
                    "ttft_p90_s": level.ttft_s.p90,
                    "ttft_p99_s": level.ttft_s.p99,
                    "tpot_p50_ms": _ms(level.tpot_s.p50),
                    "tpot_p90_ms": _ms(level.tpot_s.p90),
                    "itl_p90_ms": _ms(level.itl_s.p90),
                    "e2e_p50_s": level.e2e_s.p50,
                    "e2e_p90_s": level.e2e_s.p90,
                    "goodput_rps": level.goodput_rps,
                    "slo_met": f"{level.slo_met}/{level.requests}" if level.slo_met is not None else None,
                    "rouge1": level.rouge.rouge1 if level.rouge else None,
                    "gate": gate_label(result, level, found, reference),
                }
            )
    return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def joined(keys: Sequence[str], spec: str) -> Callable[[Row], str]:
    """One cell for several percentiles of a row, 'p50 / p90 / ...', each shown as ``number`` shows it."""
    shows = [number(k, spec) for k in keys]
    return lambda row: " / ".join(show(row) for show in shows)


COLUMNS = [
    Column("run_id", "Run", text("run_id")),
    Column("model", "Model", text("model")),
    Column("scenario", "Scenario", text("scenario")),
    Column("request_rate", "Rate req/s", text("request_rate"), numeric=True),
    Column("max_concurrency", "Max conc.", text("max_concurrency"), numeric=True),
    Column("ok", "OK", lambda r: f"{r['ok']}/{r['requests']}", numeric=True),
    Column("not_ok", "Not OK", text("not_ok")),
    Column("requests_per_second", "Req/s", number("requests_per_second", ".3f"), numeric=True),
    Column("output_tokens_per_second", "Out tok/s", number("output_tokens_per_second", ".1f"), numeric=True),
    Column(
        "ttft_p50_s",
        "TTFT p50/p90/p99 s",
        joined(("ttft_p50_s", "ttft_p90_s", "ttft_p99_s"), ".3f"),
        numeric=True,
    ),
    Column(
        "tpot_p50_ms",
        "TPOT p50/p90 ms",
        joined(("tpot_p50_ms", "tpot_p90_ms"), ".1f"),
        numeric=True,
    ),
    Column("itl_p90_ms", "ITL p90 ms", number("itl_p90_ms", ".1f"), numeric=True),
    Column(
        "e2e_p50_s",
        "E2E p50/p90 s",
        joined(("e2e_p50_s", "e2e_p90_s"), ".3f"),
        numeric=True,
    ),
    Column("goodput_rps", "Goodput req/s", number("goodput_rps", ".3f"), numeric=True),
    Column("slo_met", "Met SLO", text("slo_met"), numeric=True),
    Column("rouge1", "ROUGE-1", number("rouge1", ".4f"), numeric=True),
    Column("gate", f"Gate (≥{THRESHOLD:.0%} ref)", text("gate")),
]


def objective(result: RunResult) -> str:
    s = result.config.serving
    if s is None or (s.slo_ttft_s is None and s.slo_tpot_s is None):
        return "no objective (--slo not given)"
    parts = [f"TTFT ≤ {s.slo_ttft_s:g} s"] if s.slo_ttft_s is not None else []
    parts += [f"TPOT ≤ {s.slo_tpot_s * 1000:g} ms"] if s.slo_tpot_s is not None else []
    return f"{' and '.join(parts)} for ≥{s.slo_attainment:.0%} of requests"


def sustainable_lines(runs: Sequence[Run]) -> list[str]:
    lines = []
    for run in runs:
        result = run.result
        if result.serving is None:
            continue
        rate = result.serving.sustainable_request_rate
        has_slo = not objective(result).startswith("no objective")
        if not has_slo:
            said = "no sustainable rate: no objective was given (--slo)"
        elif rate is None:
            said = "no level met the objective"
        else:
            said = f"sustainable rate {rate:.3g} req/s"
        lines.append(f"{run_label(result)}: {said}; objective: {objective(result)}; server: {result.serving.server}.")
    return lines


FOOTNOTES = [
    "Rate: offered requests/s, Poisson arrivals (inf: all at once). Req/s and Out tok/s: completed requests and "
    "their output tokens over the level's duration (first request sent to last answer). TTFT: sent to first "
    "streamed token; TPOT: (E2E − TTFT) / (output tokens − 1); ITL: gap between streamed chunks; E2E: sent to "
    "end of stream. Latencies over completed requests; every request counts in OK / Not OK (docs/serving.md).",
    "Goodput: requests that completed within the objective, per second. Gate: the level's ROUGE-1 against the "
    "offline reference scenario's on the same GPU, model, dataset, output length and prompt.",
]


def latency_vs_load(runs: Sequence[Run]) -> Figure | None:
    """TTFT p90 and TPOT p90 against the offered rate, one line per serving run; inf at the right edge."""
    series = [(r.result, r.result.serving.levels) for r in runs if r.result.serving and r.result.serving.levels]
    if not series:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    from runner.report.plots import DPI, _png

    finite = sorted({lv.request_rate for _, levels in series for lv in levels if lv.request_rate is not None})
    inf_x = finite[-1] * 2 if finite else 1.0

    def x(level: ServingLevel) -> float:
        return level.request_rate if level.request_rate is not None else inf_x

    fig = MplFigure(figsize=(9.0, 4.0), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    panels = (
        (axes[0], "ttft_s", 1.0, "TTFT p90 (s)", "slo_ttft_s"),
        (axes[1], "tpot_s", 1000.0, "TPOT p90 (ms)", "slo_tpot_s"),
    )
    for ax, field, scale, label, slo_field in panels:
        for result, levels in series:
            p90s = [(x(lv), getattr(lv, field).p90) for lv in levels]
            points = sorted((at, value * scale) for at, value in p90s if value is not None)
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", label=run_label(result))
        slos = {getattr(r.config.serving, slo_field) for r, _ in series if r.config.serving}
        if len(slos) == 1 and (slo := slos.pop()) is not None:
            ax.axhline(slo * scale, linestyle="--", color="grey", label="objective")
        has_inf = any(lv.request_rate is None for _, lvs in series for lv in lvs)
        ticks = [*finite, *([inf_x] if has_inf else [])]
        if len(ticks) > 1 and ticks[-1] / ticks[0] >= 4:
            ax.set_xscale("log")
        ax.set_xticks(ticks, [*map(rate_label, finite), *(["inf"] if has_inf else [])])
        ax.minorticks_off()
        ax.set_xlabel("offered request rate (req/s)")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="x-small")
    fig.suptitle("Latency vs load (serving runs)")
    return Figure("serving-latency-vs-load.png", "TTFT and TPOT p90 against the offered request rate", _png(fig))


def serving_section(
    runs: Sequence[Run], cells: Sequence[Cell], reference: str | None, with_plots: bool
) -> Section | None:
    """The serving section, or None when no run served."""
    if not runs:
        return None
    rows = level_rows(runs, cells, reference)
    section = Section(
        "Serving (load levels)",
        paragraphs=[
            "Serving runs drive a server under load; their figures are per load level and are never folded "
            "into the offline rows above.",
            *sustainable_lines(runs),
        ],
        table=Table(COLUMNS, rows) if rows else None,
        footnotes=FOOTNOTES if rows else [],
        kind="serving",
    )
    if with_plots and (figure := latency_vs_load(runs)) is not None:
        section.figures.append(figure)
    return section
