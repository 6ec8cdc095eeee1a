"""Markdown: the default format, readable in a terminal and rendered by GitHub, GitLab and notebooks."""

from __future__ import annotations

import os
from pathlib import Path

from runner.report.document import Report, Table


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> list[str]:
    headers = [c.header for c in table.columns]
    rule = ["---:" if c.numeric else "---" for c in table.columns]
    lines = ["| " + " | ".join(map(_escape, headers)) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(map(_escape, cells)) + " |" for cells in table.cells()]
    return lines


def render_markdown(report: Report, link_base: Path | None = None) -> str:
    """The report as Markdown; figures appear as links to the files ``--plots`` wrote: relative to
    ``link_base`` (the folder of ``--out``) so the links survive moving both, else as given."""
    lines = [f"# {report.title}", "", *report.summary, ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        if section.table is not None:
            lines += [*markdown_table(section.table), ""]
        for note in section.footnotes:
            lines += [f"- {note}"]
        if section.footnotes:
            lines.append("")
        for figure in section.figures:
            if figure.path is not None:
                link = (
                    figure.path
                    if link_base is None
                    else Path(os.path.relpath(figure.path.resolve(), link_base.resolve()))
                )
                lines += [f"![{figure.title}]({link.as_posix()})", ""]
    return "\n".join(lines).rstrip() + "\n"
