"""``runner doctor``: what sumbench can run on this machine, or on a Docker host, before anything launches."""

from __future__ import annotations

import json
from dataclasses import asdict

import click


@click.command()
@click.option(
    "--docker-host",
    help="Docker engine to check, as `runner launch --docker-host` takes it (default: DOCKER_HOST, else the "
    "local socket), e.g. ssh://user@gpu-vm.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole diagnosis as one JSON object.")
@click.option("--markdown", is_flag=True, help="Print Markdown tables instead (for an issue or a runbook).")
def doctor(docker_host: str | None, as_json: bool, markdown: bool) -> None:
    """Check what sumbench can run here: GPUs (NVML), this Python's worker stack (the process executor),
    the Docker engine, its NVIDIA runtime and sumbench images, and the Hugging Face hub; then, per catalog
    image, whether it runs here now, with which executor and on which cards, or the one thing missing.

    It launches nothing, and exits 0 whatever is missing: it is a report. A remote engine's GPUs are listed
    with nvidia-smi in a short container of an image it holds, as a launch would.

    \b
    Examples:
      runner doctor
      runner doctor --docker-host ssh://me@gpu-vm
      runner doctor --json | jq .gpu_images_run
    """
    from runner.doctor.survey import diagnose

    if as_json and markdown:
        raise click.UsageError("--json and --markdown: choose one")
    diagnosis = diagnose(docker_host)
    if as_json:
        click.echo(json.dumps(asdict(diagnosis), indent=2))
    elif markdown:
        _markdown(diagnosis)
    else:
        _terminal(diagnosis)


def _terminal(diagnosis) -> None:
    from rich.text import Text

    from runner.cli.tables import rich_table, table_console
    from runner.doctor.render import parts

    out = table_console()
    for part in parts(diagnosis):
        # The title as a line of its own: a table's title is padded to the table's width, all of it in a pipe.
        out.print(Text(part.title, style="bold"))
        out.print(rich_table(part.table, set(part.whole)))
    style = "bold green" if diagnosis.gpu_images_run else "bold red"
    out.print(Text(diagnosis.summary, style=style))


def _markdown(diagnosis) -> None:
    from runner.doctor.render import parts
    from runner.report.render_md import markdown_table

    lines: list[str] = []
    for part in parts(diagnosis):
        lines += [f"## {part.title}", "", *markdown_table(part.table), ""]
    lines.append(f"**{diagnosis.summary}**")
    click.echo("\n".join(lines))
