"""HTML: one self-contained page (inline CSS, plots as base64 PNG) that can be mailed or attached to a
ticket and still shows everything, with no server, scripts or network access."""

from __future__ import annotations

import base64
from html import escape

from runner.report.document import Figure, Report, Table

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       margin: 1.5rem auto; max-width: 1800px; padding: 0 1.5rem; }
h1 { font-size: 1.7rem; margin-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
.summary { color: #57606a; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .8rem 0; font-size: 12.5px; }
th, td { border: 1px solid #d0d7de; padding: 3px 6px; white-space: nowrap; }
th { background: #f6f8fa; text-align: left; white-space: normal; vertical-align: bottom; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
tr.kind-lead3 td { color: #57606a; font-style: italic; }
td.gate-pass { color: #1a7f37; font-weight: 600; }
td.gate-fail { color: #cf222e; font-weight: 600; }
td.msg { white-space: normal; min-width: 16rem; max-width: 40rem; }
ul.notes { color: #57606a; font-size: 13px; }
.warning h2 { color: #9a6700; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: .5rem 0; flex: 0 1 calc(50% - .5rem); min-width: 420px; }
figure img { width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 12px; }
"""


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(c.header)}</th>" for c in table.columns)
    body = []
    for row, cells in zip(table.rows, table.cells(), strict=True):
        tds = []
        for column, cell in zip(table.columns, cells, strict=True):
            classes = []
            if column.numeric:
                classes.append("num")
            if column.key == "gate_label" and row.get("gate") in ("pass", "fail"):
                classes.append(f"gate-{row['gate']}")
            if column.key == "error_message":
                classes.append("msg")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            tds.append(f"<td{attr}>{escape(cell)}</td>")
        body.append(f'<tr class="kind-{escape(str(row.get("kind", "row")))}">{"".join(tds)}</tr>')
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(figure.title)}">'
        f"<figcaption>{escape(figure.title)}</figcaption></figure>"
    )


def render_html(report: Report) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(report.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(report.title)}</h1>",
        *(f'<p class="summary">{escape(line)}</p>' for line in report.summary),
    ]
    for section in report.sections:
        kind = " warning" if section.kind == "datasets" else ""
        parts.append(f'<section class="{escape(section.kind)}{kind}"><h2>{escape(section.title)}</h2>')
        parts += [f"<p>{escape(p)}</p>" for p in section.paragraphs]
        if section.table is not None:
            parts.append(_table(section.table))
        if section.footnotes:
            parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in section.footnotes) + "</ul>")
        if section.figures:
            parts.append('<div class="figures">' + "".join(_figure(f) for f in section.figures) + "</div>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
