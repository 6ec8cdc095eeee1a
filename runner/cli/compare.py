"""``runner compare``: two runs, or two sets of runs, metric by metric, with significance across runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Significance level of the t-tests on per-run docs/s and call time and per-document ROUGE.",
)
@click.option(
    "--noise-threshold",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.05,
    show_default=True,
    help="Speed changes (docs/s, call time) smaller than this share are within noise: never called better or "
    "worse, however small p is (0 turns it off).",
)
@click.option(
    "--allow-different",
    is_flag=True,
    help="Show the comparison even when the runs did different work (dataset, model, output length, number "
    "of documents) or one has no documents; the warnings stay, and a run without documents gets no verdicts.",
)
def compare(runs: tuple[str, ...], fmt: str, alpha: float, noise_threshold: float, allow_different: bool) -> None:
    """Compare side B against side A: RUN_A RUN_B, or RUN_A... vs RUN_B... (sets of runs).

    Shows each metric side by side (a side's mean over its runs) with its absolute and relative change.
    The unit of a speed test is a run, one process: with at least two runs a side (the folders of
    `runner launch --repeat N`, or several folders), Welch's t-test on per-run docs/s and call time says
    whether the sides differ, and a change under --noise-threshold (5%) is within noise; one run each gets
    the difference and "no verdict". ROUGE is tested per
    document (a paired t-test). Runs that did different work (another dataset sample, model, output
    length or number of documents) or have no documents are refused with exit code 2.

    \b
    Examples:
      runner compare results/RUN-A results/RUN-B
      runner compare results/cell-a-r* vs results/cell-b-r*
      runner compare results/RUN-A results/RUN-B --format json --alpha 0.01
    """
    from runner.contract.errors import UserError
    from runner.report.comparable import same_run
    from runner.report.compare import compare_runs
    from runner.report.loading import load_run

    side_a, side_b = _sides(runs)
    a, b = [load_run(p) for p in side_a], [load_run(p) for p in side_b]
    from runner.report.serving import is_serving

    if any(is_serving(r.result) for r in a + b):
        if len(a) != 1 or len(b) != 1:
            raise click.UsageError("serving runs are compared one run against one: give RUN-A RUN-B")
        from runner.report.serving_compare import render

        click.echo(render(a[0], b[0], fmt, allow_different), nl=False)
        return
    if len(a) == len(b) == 1 and (warning := same_run(a[0], b[0])):
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    cmp = compare_runs(a, b, alpha, noise_threshold)
    if cmp.refusal and not allow_different:
        raise UserError(f"{cmp.refusal}; pass --allow-different to compare anyway")
    click.echo(_json(cmp) if fmt == "json" else _markdown(cmp), nl=False)


def _sides(names: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """Split ``A... vs B...``; two folders without ``vs`` are one run a side."""
    from runner.contract.errors import UserError

    runs = [Path(n) for n in names]
    for name, path in zip(names, runs, strict=True):
        if name != "vs" and not path.is_dir():
            raise UserError(f"{name} is not a run folder (no such directory): give run folders, split by `vs`")
    if "vs" in names:
        i = names.index("vs")
        side_a, side_b = runs[:i], runs[i + 1 :]
    elif len(runs) == 2:
        side_a, side_b = [runs[0]], [runs[1]]
    else:
        raise UserError(
            f"runner compare got {len(runs)} run folders: give two (RUN_A RUN_B), or sets split by `vs` "
            "(RUN_A1 RUN_A2 vs RUN_B1 RUN_B2)"
        )
    if not side_a or not side_b:
        raise UserError("runner compare needs run folders on both sides of `vs`, e.g. A-r1 A-r2 vs B-r1 B-r2")
    return side_a, side_b


def _side_name(runs) -> str:
    first = runs[0].result.run_id
    return first if len(runs) == 1 else f"{first} and {len(runs) - 1} more"


def _markdown(cmp) -> str:
    from runner.report.compare import config_table, metrics_table, verdict_rule
    from runner.report.render_md import markdown_table

    lines = [f"# {_side_name(cmp.runs_a)} (A) vs {_side_name(cmp.runs_b)} (B)", ""]
    lines += [f"- **warning:** {w}" for w in cmp.warnings]
    if cmp.warnings:
        lines.append("")
    lines += [*markdown_table(config_table(cmp)), "", *markdown_table(metrics_table(cmp)), ""]
    lines += [f"- {test.sentence()}" for test in cmp.tests]
    lines += [
        "",
        verdict_rule(cmp.alpha, cmp.noise),
        "",
        "Speed is tested across runs, each one process, never across the batches of one run: they share the "
        "process's state (first-use costs, memory layout, a busy neighbour) and are not independent samples. "
        "`runner launch --repeat N` gives a side several runs.",
    ]
    return "\n".join(lines) + "\n"


def _json(cmp) -> str:
    data = {
        "a": [str(r.path) for r in cmp.runs_a],
        "b": [str(r.path) for r in cmp.runs_b],
        "refusal": cmp.refusal,
        "noise_threshold": cmp.noise,
        "warnings": cmp.warnings,
        "config": [{"field": name, "a": a, "b": b} for name, a, b in cmp.config],
        "metrics": [{k: v for k, v in m.row().items() if not k.endswith("_shown")} for m in cmp.metrics],
        "tests": [
            {
                "name": t.name,
                "a": t.a,
                "b": t.b,
                "significant": t.welch.significant if t.welch else None,
                "within_noise": t.within_noise,
                "p": t.welch.p if t.welch else None,
                "t": _finite(t.welch.t) if t.welch else None,
                "df": t.welch.df if t.welch else None,
                "t_test": t.welch.name if t.welch else None,
                "identical": t.identical,
                "alpha": t.welch.alpha if t.welch else None,
                "summary": t.sentence(),
            }
            for t in cmp.tests
        ],
    }
    return json.dumps(data, indent=2, default=str) + "\n"


def _finite(value: float) -> float | str:
    """JSON has no infinity; a t of ±inf (two different constant samples) is written as a string."""
    return value if math.isfinite(value) else str(value)
