"""``runner compare`` for serving runs: level by level at the rates both offered, never against an offline run.

An offline run's docs/s is per batch and a serving level's requests/s is per offered load: the two answer
different questions, so a serving run is compared only with another serving run, at each rate both ran.
The figures are shown side by side with their change; no significance test is made (one level is one
sample of a load; repeat the runs to see their spread).
"""

from __future__ import annotations

import json

from runner.contract.errors import UserError
from runner.contract.schema import ServingLevel
from runner.contract.serving import rate_label
from runner.report.cells import work_differences
from runner.report.comparable import CONSEQUENCE, labels
from runner.report.document import Column, Row, Table, text
from runner.report.loading import Run
from runner.report.render_md import markdown_table
from runner.report.serving import is_serving

FIGURES: tuple[tuple[str, str], ...] = (
    ("requests_per_second", "req/s"),
    ("output_tokens_per_second", "output tok/s"),
    ("ttft_s.p50", "TTFT p50 s"),
    ("ttft_s.p90", "TTFT p90 s"),
    ("tpot_s.p50", "TPOT p50 s"),
    ("tpot_s.p90", "TPOT p90 s"),
    ("itl_s.p90", "ITL p90 s"),
    ("e2e_s.p90", "E2E p90 s"),
    ("goodput_rps", "goodput req/s"),
    ("rouge.rouge1", "ROUGE-1"),
)


def _get(level: ServingLevel, path: str) -> float | None:
    value: object = level
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value  # type: ignore[return-value]


def check_pair(a: Run, b: Run, allow_different: bool) -> list[str]:
    """Refuse a serving run against an offline one; warnings (or a refusal) for different work."""
    la, lb = labels(a, b)
    if is_serving(a.result) != is_serving(b.result):
        serving, offline = (la, lb) if is_serving(a.result) else (lb, la)
        raise UserError(
            f"{serving} is a serving run (figures per load level) and {offline} an offline run (per batch): "
            "they measure different things; compare serving runs with serving runs, and read both in runner report"
        )
    differing = work_differences([a.result, b.result])
    said = [f"the runs did different work ({w.what}): {CONSEQUENCE[w.what]}" for w in differing]
    if said and not allow_different:
        raise UserError(f"{said[0]}; pass --allow-different to compare anyway")
    return said


def rows(a: Run, b: Run) -> list[Row]:
    levels_a = {lv.request_rate: lv for lv in (a.result.serving.levels if a.result.serving else [])}
    levels_b = {lv.request_rate: lv for lv in (b.result.serving.levels if b.result.serving else [])}
    out = []
    for rate in [r for r in levels_a if r in levels_b]:
        for path, name in FIGURES:
            va, vb = _get(levels_a[rate], path), _get(levels_b[rate], path)
            change = (vb - va) / va if va and vb is not None else None
            out.append({"rate": rate_label(rate), "figure": name, "a": va, "b": vb, "change": change})
    return out


def _num(key: str):
    return lambda row: "-" if row[key] is None else f"{row[key]:.4g}"


COLUMNS = [
    Column("rate", "Rate req/s", text("rate")),
    Column("figure", "Figure", text("figure")),
    Column("a", "A", _num("a"), numeric=True),
    Column("b", "B", _num("b"), numeric=True),
    Column("change", "B vs A", lambda r: "-" if r["change"] is None else f"{r['change']:+.1%}", numeric=True),
]


def render(a: Run, b: Run, fmt: str, allow_different: bool) -> str:
    warnings = check_pair(a, b, allow_different)
    table_rows = rows(a, b)
    only = sorted(
        {rate_label(lv.request_rate) for r in (a, b) if r.result.serving for lv in r.result.serving.levels}
        - {row["rate"] for row in table_rows}
    )
    note = f"rates run by one side only (not compared): {', '.join(only)}" if only else None
    if fmt == "json":
        data = {"a": str(a.path), "b": str(b.path), "warnings": warnings, "levels": table_rows, "note": note}
        return json.dumps(data, indent=2) + "\n"
    la, lb = labels(a, b)
    lines = [f"# {la} (A) vs {lb} (B): serving, level by level", ""]
    lines += [f"- **warning:** {w}" for w in warnings] + ([""] if warnings else [])
    lines += [*markdown_table(Table(COLUMNS, table_rows)), ""]
    if note:
        lines += [f"- {note}", ""]
    lines.append("No significance test: each level is one sample of its load; repeat the runs to see their spread.")
    return "\n".join(lines) + "\n"
