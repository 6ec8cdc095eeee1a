"""The ``runner`` command line.

Subcommands are imported only when they run, so ``runner --help`` stays instant and the host side
never pays for (or needs) torch.
"""

from __future__ import annotations

import difflib
import importlib
import sys

import click

from runner import __version__
from runner.cli.failures import os_error_line, run_in_command_context, usage_line
from runner.contract.errors import INTERRUPTED_EXIT_CODE, UserError

# name -> (module, attribute, one-line help shown by `runner --help` without importing the module)
COMMANDS = {
    "launch": ("runner.cli.launch", "launch", "Run one benchmark cell: image x scenario x GPU x batch size."),
    "plan": ("runner.cli.plan", "plan", "Show what fits on a GPU: per image and scenario, the largest batch."),
    "report": ("runner.cli.report", "report", "Tables, failures, quality gate and plots from result folders."),
    "compare": ("runner.cli.compare", "compare", "Compare two runs, or two sets of runs, metric by metric."),
    "matrix": ("runner.cli.matrix", "matrix", "Run a matrix of cells on Docker hosts, SkyPilot or Kubernetes."),
    "study": ("runner.cli.study", "study", "Plan or run a study file (studies/*.toml): a matrix written down."),
    "data": ("runner.cli.data", "data", "Datasets: inspect a JSONL file, fetch a fixed sample from the hub."),
    "model": ("runner.cli.model", "model", "Models without downloads: tiny, synthetic of a real shape, AWQ."),
    "catalog": ("runner.cli.catalog", "catalog", "List the images, GPUs and scenarios sumbench knows."),
    "schema": ("runner.cli.schema", "schema", "Write or check the JSON Schema of result.json."),
    "doctor": ("runner.cli.doctor", "doctor", "Check what this machine or a Docker host can run, before launching."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        return importlib.util.find_spec(COMMANDS[name][0]) is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr, _ = COMMANDS[name]
        return run_in_command_context(getattr(importlib.import_module(module), attr))

    def resolve_command(self, ctx: click.Context, args: list[str]):
        """click suggests close names from ``self.commands``, which a lazy group leaves empty: suggest ours."""
        name = click.utils.make_str(args[0])
        if not ctx.resilient_parsing and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.7)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="sumbench runner")
def cli() -> None:
    """sumbench: which LLM backend, quantization and batch size to run on which GPU for summarization,
    and what it costs in speed, quality, memory, money and failures.

    \b
    Quick start (CPU, no downloads):
      runner model tiny .cache/tiny-llama
      runner launch --model .cache/tiny-llama --batch-size 4
    """


# click >= 8.2 raises this for a group run without a subcommand; older click prints the help itself.
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _hear_interrupts() -> None:
    """A job a script starts in the background (``runner launch ... &``) begins with SIGINT ignored, as does
    every worker it starts: Ctrl-C or ``kill -INT`` would leave the run going, unwatched. Restore Python's
    handler, so SIGINT stops the run the way it does in the foreground."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2, never a traceback."""
    _hear_interrupts()
    try:
        cli.main(args=argv, prog_name="runner", standalone_mode=False)
    except UserError as exc:
        _error(str(exc), exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except NO_ARGS_IS_HELP as exc:  # `runner data` alone: the group's help, as click shows it
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        _error(usage_line(exc), exc.exit_code)
    except click.ClickException as exc:
        _error(exc.format_message(), exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(INTERRUPTED_EXIT_CODE)
    except OSError as exc:  # outside any command (a CommandContext turns those into a UserError)
        if isinstance(exc, BrokenPipeError):
            raise
        _error(os_error_line(exc, {}), UserError.exit_code)


def _error(message: str, code: int) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)
