"""A report's ``Table`` (``runner.report.document``) as a rich table on stdout, for the listing commands.

``runner catalog`` and ``runner doctor`` print the same table model that the report renders to
Markdown, so ``--markdown`` and the terminal show the same cells; this is the terminal's half.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from runner.report.document import Table

if TYPE_CHECKING:  # rich loads when a table is printed, not for --json / --markdown
    from rich.console import Console
    from rich.table import Table as RichTable


def rich_table(table: Table, whole: set[str]) -> RichTable:
    """``table`` for the terminal: the columns keyed in ``whole`` (names and references a person copies)
    never wrap; the others wrap, folding a word too long for them rather than cutting it with "…"."""
    from rich.table import Table as RichTable

    out = RichTable()
    for c in table.columns:
        out.add_column(c.header, no_wrap=c.key in whole, overflow="fold")
    for cells in table.cells():
        out.add_row(*cells)
    return out


def table_console() -> Console:
    """stdout as ``runner.console`` sets it up, except that a width given in ``COLUMNS`` is kept in a pipe
    too: a table there is as wide as its content otherwise, which suits grep but not ``COLUMNS=80 ... | less``."""
    from rich.console import Console

    from runner.console import stdout_console

    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns)) if columns.isdigit() and int(columns) > 0 else stdout_console()
