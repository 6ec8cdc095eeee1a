"""``runner schema``: the published JSON Schema of result.json."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runner.errors import UserError
from runner.paths import SCHEMA_FILE


def rendered() -> str:
    from runner.schema import json_schema

    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


@click.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=SCHEMA_FILE, show_default=True)
@click.option("--check", is_flag=True, help="Fail if the file differs from the schema the code defines.")
def schema(out: Path, check: bool) -> None:
    """Write (or --check) the JSON Schema that every result.json validates against."""
    text = rendered()
    if check:
        write = "runner schema" if out == SCHEMA_FILE else f"runner schema --out {out}"
        if not out.exists():
            raise UserError(f"{out} does not exist: run `{write}` to write it")
        if out.read_text() != text:
            raise UserError(f"{out} is out of date: run `{write}` and commit it")
        click.echo(f"{out} is up to date")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    click.echo(f"wrote {out}")
