"""``runner study``: a matrix from a file (studies/*.toml), planned or run through ``runner matrix``'s machinery."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from runner.contract.errors import INTERRUPTED_EXIT_CODE, UserError

OVERRIDES_HELP = (
    "Any `runner matrix` option after FILE overrides the file's value for this invocation, e.g. --gpus h200 "
    "--batch-sizes 32 --limit 64 --results out/."
)
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]}


@click.group()
def study() -> None:
    """Studies: a matrix (images, scenarios, GPUs, batch sizes, model, data, target) written as a TOML file.

    A study's keys are `runner matrix`'s options without their dashes (batch_sizes = [1, 8]); `name` is the
    matrix id, so the same file run again resumes it. Examples ship in studies/.
    """


@study.command(context_settings=PASS_THROUGH, epilog=OVERRIDES_HELP)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def plan(file: Path, overrides: tuple[str, ...]) -> None:
    """Show every cell of the study FILE: what will run, and what the rules drop with their reasons.

    Reads neither the model nor the data and writes nothing; `runner study run FILE --dry-run` also checks
    every kept cell as a launch would and renders what the target needs.

    \b
    Examples:
      runner study plan studies/original.toml
      runner study plan studies/gpu-check.toml --gpus h100
    """
    from runner.matrix import preview

    loaded, request, _ = _resolve(file, overrides)
    cells = preview(request)
    kept = sum(cell.status != "dropped" for cell in cells)
    lines = [f"study {loaded.name}: {loaded.values.get('description') or file}", "", *plan_lines(cells), ""]
    counted = f"{len(cells)} {'cell' if len(cells) == 1 else 'cells'}: {kept} to run, {len(cells) - kept} dropped"
    matrix_dir = request.results / str(request.matrix_id)
    where = f"target {request.target}, matrix id {request.matrix_id}, results {matrix_dir}"
    lines.append(f"{counted} ({where})")
    click.echo("\n".join(lines))


@study.command(context_settings=PASS_THROUGH, epilog=OVERRIDES_HELP)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def run(file: Path, overrides: tuple[str, ...]) -> None:
    """Run the study FILE as a matrix: resumable (the same command again finishes it), into RESULTS/NAME/.

    The file and its sha256 are recorded with the matrix (matrix.json, and a copy as study.toml beside it);
    `runner report RESULTS/NAME` reads the result. --dry-run plans and renders without launching.

    \b
    Examples:
      runner study run studies/cpu-demo.toml
      runner study run studies/gpu-check.toml --model /models/llama-2-7b-random --results out/
      runner study run studies/original.toml --dry-run
    """
    from runner.cli.matrix import exit_code, print_summary
    from runner.console import console
    from runner.matrix import MatrixInterrupted, run, submit_steps

    def on_line(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    _, request, opts = _resolve(file, overrides)
    command = shlex.join(["runner", "study", "run", str(file), *(w for w in overrides if w != "--dry-run")])
    again = f"the same command ({command})"
    if opts["collect_dir"] is not None:
        raise UserError("runner study run has no --collect: use runner matrix --collect MATRIX-DIR")
    try:
        manifest = run(request, on_line, dry_run=opts["dry_run"])
    except MatrixInterrupted as stopped:
        print_summary(stopped.manifest, stopped.matrix_dir, again=again)
        sys.exit(INTERRUPTED_EXIT_CODE)
    matrix_dir = request.results / manifest.matrix_id
    print_summary(manifest, matrix_dir, resume=not opts["dry_run"], again=again)
    if opts["dry_run"]:
        for line in submit_steps(manifest, matrix_dir, command):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    sys.exit(0 if opts["dry_run"] else exit_code(manifest))


def _resolve(file: Path, overrides: tuple[str, ...]):
    """The study, its MatrixRequest, and the matrix options it came from (file values, then overrides)."""
    from runner import study as studies
    from runner.cli.matrix import build_request, matrix

    loaded = studies.load(file)
    name = f"runner study {click.get_current_context().info_name}"  # what an override's error names
    given_ctx = matrix.make_context(name, list(overrides))
    given = {name for name in given_ctx.params if given_ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    ctx = matrix.make_context(name, studies.matrix_arguments(loaded, given) + list(overrides))
    with ctx:
        request = build_request(ctx.params)
    if loaded.pairs and not given & {"images", "scenarios"}:
        if loaded.values.get("scenarios") is not None:
            raise UserError(f"{file}: images is a table of image -> scenarios, so scenarios has no place beside it")
        request.pairs = loaded.pairs
    if loaded.scenario_models:
        from runner.scenarios import get_scenario

        for scenario in loaded.scenario_models:
            get_scenario(scenario)  # a misspelt scenario is an error, not a model never used
        request.scenario_models = loaded.scenario_models
    request.study = loaded.file
    return loaded, request, ctx.params


def _span(sizes: list) -> str:
    """Batch sizes as typed, runs of consecutive numbers as 1-10."""
    numbers = [s for s in sizes if isinstance(s, int)]
    words = [str(s) for s in sizes if not isinstance(s, int)]
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    spans = [f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs]
    return ",".join(spans + words)


def plan_lines(cells) -> list[str]:
    """The plan as a Markdown table: one row per image, scenario and GPU (batch sizes and repeats folded),
    with its status and, for a dropped row, the rules' reason. Markdown rather than a terminal table: the
    reasons are long, and the plan is meant to be pasted into a report or an issue as it is."""
    from runner.report.document import Column, Table
    from runner.report.render_md import markdown_table

    groups: dict[tuple, list] = {}
    for cell in cells:
        groups.setdefault((cell.image, cell.scenario, cell.gpu, cell.status, cell.reason or ""), []).append(cell)
    rows = [
        {
            "image": image,
            "scenario": scenario,
            "gpu": gpu,
            "batch": _span(list(dict.fromkeys(c.batch_size for c in members))),
            "cells": str(len(members)),
            "status": status,
            "reason": reason,
        }
        for (image, scenario, gpu, status, reason), members in groups.items()
    ]
    headers = {"batch": "batch sizes"}
    columns = [
        Column(key, headers.get(key, key), lambda row, key=key: row[key], numeric=key == "cells")
        for key in ("image", "scenario", "gpu", "batch", "cells", "status", "reason")
    ]
    return markdown_table(Table(columns, rows))
