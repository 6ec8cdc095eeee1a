"""The report as data, before it becomes Markdown, HTML, CSV or JSON.

Building the content once and rendering it four ways keeps the formats from drifting apart: a row
that is in the HTML table is in the CSV, with the same numbers. Rows keep raw values (floats, None)
for the data formats; each ``Column`` knows how to show its value to a person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    show: Callable[[Row], str]
    numeric: bool = False


@dataclass
class Table:
    columns: list[Column]
    rows: list[Row]

    def cells(self) -> list[list[str]]:
        """The rows as a person reads them."""
        return [[col.show(row) for col in self.columns] for row in self.rows]


@dataclass
class Figure:
    """A plot: PNG bytes, and the file it was written to when ``--plots`` asked for files."""

    name: str
    title: str
    png: bytes
    path: Path | None = None


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: Table | None = None
    footnotes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    kind: str = "text"  # results | failures | not_run | datasets | plots | text: what the data formats key on


@dataclass
class Report:
    title: str
    summary: list[str]
    sections: list[Section]
    warnings: list[str] = field(default_factory=list)
    """Lines of the summary the CLI also prints on stderr, where a report written to a file is not read."""

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]


def number(key: str, spec: str, suffix: str = "") -> Callable[[Row], str]:
    """Show ``row[key]`` with a format spec, '-' when absent, and '± stdev' when the row has one."""

    def show(row: Row) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        text = format(value, spec)
        if row.get(f"{key}_stdev") is not None and (row.get("runs") or 1) > 1:
            text += f" ± {row[f'{key}_stdev']:{spec}}"
        return text + suffix

    return show


def text(key: str) -> Callable[[Row], str]:
    return lambda row: "-" if row.get(key) is None else str(row[key])


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 cell', '2 cells', '0 runs': a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
