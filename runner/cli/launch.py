"""``runner launch``: one benchmark cell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from runner.cli.options import cell_options
from runner.cli.serving_options import pop_serving, serving_options
from runner.cli.types import BATCH_SIZE
from runner.contract.errors import INTERRUPTED_EXIT_CODE, UserError

if TYPE_CHECKING:
    from runner.contract.schema import RunResult

# What --resume takes besides the folder: how this attempt is run and watched. Everything else describes
# the cell, which the folder's config.json already fixes (a resumed run must not mix two settings).
RESUME_OPTIONS = {"resume", "timeout", "verbose", "docker_host", "gpu_uuids", "docker_network"}


@click.command()
@click.option("--image", default="cpu", show_default=True, help="Image from the catalog (`runner catalog images`).")
@click.option(
    "--gpu",
    default="cpu",
    show_default=True,
    help="GPU type from the catalog (`runner catalog gpus`): t4, a100-80gb, ...",
)
@click.option("--scenario", help="Scenario (`runner catalog scenarios`); default: the image's own default.")
@click.option(
    "--batch-size",
    type=BATCH_SIZE,
    default="1",
    show_default=True,
    help="Documents per generate call; auto = largest the memory plan allows for the run's longest prompt (on a "
    "CPU without --max-batch-size: at most 8, and at least two batches), halved on OOM; dynamic = vLLM decides.",
)
@cell_options
@serving_options
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder that gets one sub-folder per run.",
)
@click.option(
    "--executor",
    type=click.Choice(["process", "docker"]),
    default="process",
    show_default=True,
    help="process: a subprocess of this Python; docker: the image in a container.",
)
@click.option("--docker-host", help="Docker engine to use, e.g. ssh://user@gpu-vm (Docker's own ssh transport).")
@click.option(
    "--gpu-uuid",
    "gpu_uuids",
    multiple=True,
    help="With --executor docker: run on this card (nvidia-smi -L) instead of the first of the --gpu type.",
)
@click.option(
    "--registry",
    envvar="SUMBENCH_REGISTRY",
    show_envvar=True,
    help="With --executor docker: the registry the image was pushed to (REGISTRY/sumbench/IMAGE:TAG); the "
    "engine pulls it from there when it lacks it. Default: local names, which only a bake on that engine makes.",
)
@click.option(
    "--tag",
    envvar="SUMBENCH_TAG",
    show_envvar=True,
    help="With --executor docker: the image tag (default: this sumbench's version, as `docker buildx bake` tags).",
)
@click.option(
    "--docker-network",
    help="With --executor docker: container network (default: none; host where a hub model downloads).",
)
@click.option("--run-id", help="Name of the run folder (default: timestamp-image-gpu-scenario-batch).")
@click.option(
    "--resume",
    "resume",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Continue a stopped run folder without repeating or losing a document.",
)
@click.option(
    "--force", is_flag=True, help="Run an image/scenario/GPU combination the rules refuse; the failure is recorded."
)
@click.option(
    "--price-per-hour", type=click.FloatRange(0), help="USD per GPU-hour for $/1k docs (default: the catalog's)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(1),
    help="Stop the worker after this many seconds from its start (model load included); finished documents "
    "are kept as a partial result with error Timeout, and --resume continues.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Run the cell N times (run ids ending -r1..-rN) and print mean ± stdev of speed and ROUGE-1.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show every worker log line.")
def launch(
    resume: Path | None,
    verbose: bool,
    docker_host: str | None,
    gpu_uuids: tuple[str, ...],
    docker_network: str | None,
    registry: str | None,
    tag: str | None,
    repeat: int,
    **options,
) -> None:
    """Run one cell (image x scenario x GPU x batch size) and collect its results.

    The worker writes RESULTS/RUN-ID/ with config.json, docs.jsonl (one record per document, as each
    completes), result.json, worker.log, output.log (everything the worker process printed), and error.log
    when it fails. A failed or interrupted run still
    writes result.json and keeps every finished document; --resume RUN-DIR continues it.

    Exit code: 0 completed, 3 partial, 1 failed, 130 interrupted (Ctrl-C or SIGTERM, before or after the
    first document: the result says partial, Interrupted, and --resume finishes it).

    \b
    Examples:
      runner launch --model .cache/tiny-llama --batch-size 4
      runner launch --image hf --gpu a100-80gb --model meta-llama/Llama-2-7b-chat-hf --batch-size auto
      runner launch --image vllm-awq --gpu t4 --executor docker --batch-size dynamic \\
        --model /models/llama-2-7b-chat-awq --base-model llama-2-7b-chat
      runner launch --resume results/RUN-ID
    """
    from runner.console import RunProgress, console, stdout_console, summary_table
    from runner.contract import rundir
    from runner.contract.aggregate import interrupted
    from runner.launching import LaunchRequest, check_launch_options, execute, prepare
    from runner.repeats import repeat_requests, summarize, summary_lines

    docker_options = {"docker_host": docker_host, "gpu_uuids": gpu_uuids, "network": docker_network}
    executor_options = {k: v for k, v in docker_options.items() if v}
    if executor_options and options["executor"] != "docker" and resume is None:
        raise click.UsageError("--docker-host, --gpu-uuid and --docker-network need --executor docker")
    ctx = click.get_current_context()
    typed_refs = [f"--{n}" for n in ("registry", "tag") if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE]
    if typed_refs and options["executor"] != "docker" and resume is None:
        raise click.UsageError(f"{' and '.join(typed_refs)} name a container image: they need --executor docker")
    if options["executor"] == "docker":  # from the environment too (SUMBENCH_REGISTRY, SUMBENCH_TAG)
        executor_options |= {k: v for k, v in {"registry": registry, "tag": tag}.items() if v is not None}
    typed = set(_given_options(ctx, set(), names=True))
    serving, serving_given = pop_serving(options, typed)
    req = LaunchRequest(**options, executor_options=executor_options, serving=serving, serving_given=serving_given)
    if resume is None and not options["model"]:
        raise click.UsageError("Missing option '--model' (only --resume RUN-DIR runs without one).")
    if repeat > 1 and resume is not None:
        raise click.UsageError("--repeat starts new runs; it cannot be combined with --resume")
    if resume is not None and (given := _given_options(click.get_current_context(), RESUME_OPTIONS)):
        raise UserError(
            f"--resume continues {resume} with the settings it started with; it does not take {', '.join(given)} "
            "(to change them, start a new run with another --run-id)"
        )
    if resume is None:
        check_launch_options(req)
    out = stdout_console()  # the progress bar and log lines stay on stderr; the summaries are the result
    results = []
    requests = repeat_requests(req, repeat)
    for i, one in enumerate(requests):
        if repeat > 1 and rundir.completed(done := one.results / str(one.run_id)):
            # The same --repeat command again finishes the set: what completed stays, and counts.
            kept = f"{one.run_id}: already completed, kept ({done})"
            console.print(kept, markup=False, highlight=False, soft_wrap=True)
            results.append(rundir.read_result(done))
            continue
        prepared = prepare(one, resume)
        cfg = prepared.config
        with RunProgress(f"{cfg.image}/{cfg.scenario} on {cfg.gpu}", verbose=verbose) as progress:
            result = execute(prepared, progress.on_line)
        out.print(summary_table(result, prepared.run_dir))
        results.append(result)
        if interrupted(result) and i + 1 < len(requests):
            stem = str(one.run_id).rsplit("-r", 1)[0]
            console.print(
                f"stopped: {len(requests) - i - 1} repeats not started; the same command with --run-id {stem} "
                "finishes the set",
                markup=False,
                highlight=False,
                soft_wrap=True,  # one line a script can find, whatever the terminal's width
            )
            break
    if repeat > 1:
        for line in summary_lines(summarize(results)):
            out.print(line, markup=False, highlight=False)
    sys.exit(exit_code(results))


def exit_code(results: list[RunResult]) -> int:
    """0 when every run completed, 3 when one stopped part-way, 1 when one failed; and the interruption's
    own code when a person stopped one (Ctrl-C, SIGTERM), wherever it was: that says nothing about the
    cell, and a script should tell it from a failure (``--resume`` finishes the run)."""
    from runner.contract.aggregate import interrupted
    from runner.repeats import worst_status

    if any(interrupted(r) for r in results):
        return INTERRUPTED_EXIT_CODE
    return {"completed": 0, "partial": 3}.get(worst_status(results), 1)


def _given_options(ctx: click.Context, allowed: set[str], names: bool = False) -> list[str]:
    """The options typed on the command line, other than ``allowed``, as the user spells them (or by
    their parameter names)."""
    return [
        param.name if names else max(param.opts, key=len)
        for param in ctx.command.params
        if param.name not in allowed and ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE
    ]
