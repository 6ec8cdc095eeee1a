"""``runner compare``: two runs metric by metric, with significance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click


@click.command()
@click.argument("run_a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("run_b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Significance level of the t-tests on per-batch docs/s and latency and per-document ROUGE.",
)
@click.option(
    "--allow-different",
    is_flag=True,
    help="Show the comparison even when the runs did different work (dataset, model, output length, number "
    "of documents) or one has no documents; the warnings stay, and a run without documents gets no verdicts.",
)
def compare(run_a: Path, run_b: Path, fmt: str, alpha: float, allow_different: bool) -> None:
    """Compare run folder RUN_B against RUN_A.

    Shows each metric side by side with its absolute and relative change, and tests whether docs/s and
    latency differ beyond the runs' own batch-to-batch noise (Welch's t-test on per-batch timings), and
    ROUGE beyond its per-document spread (a paired t-test). Runs that did different work (another
    dataset sample, model, output length or number of documents, as when one was interrupted) or have
    no documents are refused with exit code 2.

    \b
    Examples:
      runner compare results/RUN-A results/RUN-B
      runner compare results/RUN-A results/RUN-B --format json --alpha 0.01
    """
    from runner.errors import UserError
    from runner.report.comparable import same_run
    from runner.report.compare import compare_runs
    from runner.report.loading import load_run

    a, b = load_run(run_a), load_run(run_b)
    from runner.report.serving import is_serving

    if is_serving(a.result) or is_serving(b.result):
        from runner.report.serving_compare import render

        click.echo(render(a, b, fmt, allow_different), nl=False)
        return
    if warning := same_run(a, b):
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    cmp = compare_runs(a, b, alpha)
    if cmp.refusal and not allow_different:
        raise UserError(f"{cmp.refusal}; pass --allow-different to compare anyway")
    click.echo(_json(cmp) if fmt == "json" else _markdown(cmp), nl=False)


def _markdown(cmp) -> str:
    from runner.report.compare import config_table, metrics_table, verdict_rule
    from runner.report.render_md import markdown_table

    lines = [f"# {cmp.a.result.run_id} (A) vs {cmp.b.result.run_id} (B)", ""]
    lines += [f"- **warning:** {w}" for w in cmp.warnings]
    if cmp.warnings:
        lines.append("")
    lines += [*markdown_table(config_table(cmp)), "", *markdown_table(metrics_table(cmp)), ""]
    lines += [f"- {test.sentence()}" for test in cmp.tests]
    lines += [
        "",
        verdict_rule(cmp.alpha),
        "",
        "The batches of one run share one process, so the test sees the noise within a process, not the "
        "drift between processes (memory layout, a busy neighbour); `runner launch --repeat N` measures that.",
    ]
    return "\n".join(lines) + "\n"


def _json(cmp) -> str:
    data = {
        "a": str(cmp.a.path),
        "b": str(cmp.b.path),
        "refusal": cmp.refusal,
        "warnings": cmp.warnings,
        "config": [{"field": name, "a": a, "b": b} for name, a, b in cmp.config],
        "metrics": [{k: v for k, v in m.row().items() if not k.endswith("_shown")} for m in cmp.metrics],
        "tests": [
            {
                "name": t.name,
                "a": t.a,
                "b": t.b,
                "significant": t.welch.significant if t.welch else None,
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
