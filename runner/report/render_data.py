"""CSV and JSON: the report's rows with raw numbers, for pandas, spreadsheets and other tools.

Numbers stay unformatted (docs/s as a float, memory in bytes) so nothing is lost to rounding. CSV is
one flat table, as spreadsheet tools expect: every results row (cells and lead-3 baselines, all GPUs),
every failed run and every matrix cell that was never run, told apart by the ``table`` and ``kind``
columns (``cell``, ``lead3``, ``failed``, ``not_run``): a cell a rule refused before launch did not fail.
"""

from __future__ import annotations

import csv
import io
import json

from runner.report.document import Report, Row

ROW_SECTIONS = ("results", "serving", "failures", "not_run")
"""The sections whose rows the CSV holds; each row carries its own ``kind``."""


def _rows(report: Report) -> list[Row]:
    rows = []
    for section in report.sections:
        if section.table is None or section.kind not in ROW_SECTIONS:
            continue
        for row in section.table.rows:
            rows.append({"table": section.kind, **row})
    return rows


def render_csv(report: Report) -> str:
    rows = _rows(report)
    fields = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, restval="", lineterminator="\n")
    writer.writeheader()
    # A list (a cell's run ids) becomes one space-separated field; JSON keeps it a list.
    writer.writerows({k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def render_json(report: Report) -> str:
    data = {
        "title": report.title,
        "summary": report.summary,
        "warnings": report.warnings,
        "sections": [
            {
                "title": s.title,
                "kind": s.kind,
                "paragraphs": s.paragraphs,
                "footnotes": s.footnotes,
                "rows": s.table.rows if s.table is not None else [],
                "figures": [
                    {"name": f.name, "title": f.title, "path": str(f.path) if f.path else None} for f in s.figures
                ],
            }
            for s in report.sections
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
