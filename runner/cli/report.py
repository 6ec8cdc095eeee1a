"""``runner report``: tables, failures, quality gate and plots from result folders."""

from __future__ import annotations

from pathlib import Path

import click

FORMATS = ("md", "html", "csv", "json")
SUFFIXES = {"md": "md", "markdown": "md", "html": "html", "htm": "html", "csv": "csv", "json": "json"}
"""--out's suffixes and the format each means; another suffix needs --format (nothing writes a PDF)."""


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Output format (default: from the --out suffix, .md .markdown .html .htm .csv or .json; md without "
    "one); one of those suffixes must agree with it. html is one self-contained page.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here instead of stdout.")
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the plots as PNG files into this folder (html embeds them either way).",
)
@click.option(
    "--reference",
    metavar="SCENARIO",
    help="Scenario the quality gate compares against (default: default on a GPU, fp32 on a CPU).",
)
def report(
    results: tuple[Path, ...], fmt: str | None, out: Path | None, plots_dir: Path | None, reference: str | None
) -> None:
    """Report on every run below RESULTS (run folders, or folders holding run folders).

    Per GPU: one row per cell (repeats folded into mean ± stdev), fastest first, with throughput, tokens,
    ROUGE, the quality gate (ROUGE-1 ≥ 99% of the reference scenario), memory, $ per 1k docs and energy,
    beside the lead-3 baseline; then the failed runs. Runs that did different work (dataset, model, output
    length) get a warning, and the column that tells their rows apart.

    \b
    Examples:
      runner report results/
      runner report results/MATRIX-ID --out report.html
      runner report results/ --out report.md --plots plots/
      runner report results/ --format csv > cells.csv
    """
    from runner.report.build import build_report
    from runner.report.loading import find_runs
    from runner.scenarios import get_scenario

    if reference:
        get_scenario(reference)
    fmt = _format(fmt, out)  # before anything is read or written: a wrong suffix costs nothing
    loaded = find_runs(results)
    for warning in loaded.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    doc = build_report(loaded, reference, with_plots=fmt == "html" or plots_dir is not None)
    for warning in doc.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    if plots_dir is not None:
        plots_dir.mkdir(parents=True, exist_ok=True)
        for figure in doc.figures:
            figure.path = plots_dir / figure.name
            figure.path.write_bytes(figure.png)
        click.echo(f"{len(doc.figures)} plots written to {plots_dir}", err=True)
    text = _render(doc, fmt, out)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        click.echo(f"report written to {out}", err=True)


def _format(fmt: str | None, out: Path | None) -> str:
    """--format, else the one --out's suffix names. Where both are given and the suffix is a known one
    naming another format (--format md --out r.html), one of them is a slip: refused rather than written
    as one format under a name that promises another. An unknown suffix (r.txt) takes --format's word."""
    from runner.contract.errors import UserError

    if fmt is None:
        return _format_from(out)
    suffix = out.suffix.lower().lstrip(".") if out else ""
    named = SUFFIXES.get(suffix, fmt)
    if named != fmt:
        raise UserError(
            f"--format {fmt} and --out {out} disagree: .{suffix} names {named}; drop --format to write {named}, "
            f"or pass --out {out.with_suffix('.' + fmt)}"
        )
    return fmt


def _format_from(out: Path | None) -> str:
    """The format --out's suffix names; md without --out or a suffix. Another suffix is refused rather
    than written as Markdown under a name that promises something else (r.pdf)."""
    from runner.contract.errors import UserError

    suffix = out.suffix.lower().lstrip(".") if out else ""
    if not suffix:
        return "md"
    if suffix not in SUFFIXES:
        accepted = ", ".join(f".{s}" for s in SUFFIXES)
        raise UserError(
            f"--out {out}: unknown extension .{suffix}; use one of {accepted}, or name the format with --format "
            f"({', '.join(FORMATS)})"
        )
    return SUFFIXES[suffix]


def _render(doc, fmt: str, out: Path | None) -> str:
    if fmt == "html":
        from runner.report.render_html import render_html

        return render_html(doc)
    if fmt == "csv":
        from runner.report.render_data import render_csv

        return render_csv(doc)
    if fmt == "json":
        from runner.report.render_data import render_json

        return render_json(doc)
    from runner.report.render_md import render_markdown

    return render_markdown(doc, out.parent if out else None)
