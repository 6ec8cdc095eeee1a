"""``runner schema``: the published JSON Schema of result.json."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runner.contract.errors import UserError
from runner.paths import SCHEMA_FILE


def rendered() -> str:
    from runner.contract.schema import json_schema

    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=SCHEMA_FILE,
    show_default="the repository's schema/result.schema.json, from any folder",
    help="Schema file to write, or with --check to compare.",
)
@click.option("--check", is_flag=True, help="Fail if the file differs from the schema the code defines.")
def schema(out: Path, check: bool) -> None:
    """Write (or --check) the JSON Schema that every result.json validates against.

    The default file is the one the repository publishes (and CI checks), wherever the command runs.

    \b
    Examples:
      runner schema
      runner schema --check
      runner schema --out /tmp/result.schema.json
    """
    if out == SCHEMA_FILE and not SCHEMA_FILE.parent.is_dir():
        # An installed sumbench has no schema/ folder: the default would write into site-packages.
        raise UserError(f"{SCHEMA_FILE.parent} does not exist (not a sumbench checkout): pass --out FILE")
    text = rendered()
    if check:
        _check(out, text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    click.echo(f"wrote {out}")


def _check(out: Path, text: str) -> None:
    """Compare ``out`` with ``text``. A file that cannot be read is said here, as a read: the entry point
    would call any OSError on --out a failure to write it."""
    write = "runner schema" if out == SCHEMA_FILE else f"runner schema --out {out}"
    if not out.exists():
        raise UserError(f"{out} does not exist: run `{write}` to write it")
    try:
        current = out.read_text()
    except OSError as exc:
        raise UserError(f"cannot read {out}: {exc.strerror}") from None
    if current != text:
        raise UserError(f"{out} is out of date: run `{write}` and commit it")
    click.echo(f"{out} is up to date")
