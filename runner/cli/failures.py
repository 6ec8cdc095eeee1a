"""How the command line tells a failure that is not a ``UserError``: an OSError on a path the user gave,
and click's own usage errors, each as the one ``error:`` line the README promises."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import TracebackType

import click

from runner.contract.errors import UserError

# Parameters that name where a command writes (`report --out/--plots`, `data fetch --out`, `model tiny
# OUT_DIR`, `schema --out`). An OSError on one of these paths is a failure to write it; on any other path
# we cannot tell a read from a write, so the message only names the path.
OUTPUT_PARAMS = ("out", "plots_dir", "out_dir")


class CommandContext(click.Context):
    """The context every subcommand runs in: it still holds the command's parameters when an OSError escapes
    the command, so the error can name the output the user gave (and the option to change) in one line."""

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        result = super().__exit__(exc_type, exc, tb)
        # A closed pipe (`runner catalog gpus | head`) is no mistake: click quiets it itself.
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise UserError(os_error_line(exc, self._outputs())) from None
        return result

    def _outputs(self) -> dict[str, Path]:
        """The output paths given to this command, keyed by how the user names them (--out, OUT_DIR)."""
        return {
            _param_name(param): Path(self.params[param.name])
            for param in self.command.params
            if param.name in OUTPUT_PARAMS and self.params.get(param.name) is not None
        }


def os_error_line(exc: OSError, outputs: dict[str, Path]) -> str:
    """One line for an OSError: ``cannot write PATH: REASON; pass another --out`` when the failing path is
    an output the command was given (the path itself, a folder above it, or a file inside it), else
    ``PATH: REASON``."""
    if exc.filename is None:
        return exc.strerror or str(exc)
    failed = Path(os.fsdecode(exc.filename))
    for name, path in outputs.items():
        if _related(failed, path):
            return f"cannot write {path}: {_reason(exc, failed, path)}; pass another {name}"
    return _reason(exc, failed)


def _reason(exc: OSError, failed: Path, output: Path | None = None) -> str:
    """What went wrong and where: the OS's words after the failing path (left out when it is the output
    itself), except where those words mislead: making a folder at or under a regular file says "File
    exists" or "Not a directory", where the user needs to hear which file is in the way."""
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        for path in (failed, *failed.parents):
            if path.exists() and not path.is_dir():
                return f"{path} is a file, not a folder"
    words = exc.strerror or str(exc)
    return words if output is not None and _same(failed, output) else f"{failed}: {words}"


def _related(failed: Path, output: Path) -> bool:
    failed, output = Path(os.path.abspath(failed)), Path(os.path.abspath(output))
    return failed == output or failed in output.parents or output in failed.parents


def _same(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _param_name(param: click.Parameter) -> str:
    """How the user names a parameter: the long option (--batch-size), or an argument's metavar (OUT_DIR)."""
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return param.human_readable_name


def run_in_command_context(command: click.Command) -> click.Command:
    """Give a command (and a group's subcommands) the CommandContext. Commands are plain ``click.command``s
    in their own modules; the entry point, not each command, decides how failures are told."""
    command.context_class = CommandContext
    for sub in getattr(command, "commands", {}).values():
        run_in_command_context(sub)
    return command


def usage_line(exc: click.UsageError) -> str:
    """A click usage error as the one line the README promises, instead of click's three (Usage:, Try ...,
    Error: ...): the parameter, what is wrong with it, and where the command's help is."""
    message = exc.format_message()
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
        hint = _bad_parameter_hint(exc)
        message = f"{hint}: {exc.message}" if hint else exc.message
    if exc.ctx is not None:
        message = f"{message.rstrip('.')} (see {exc.ctx.command_path} --help)"
    return message


def _bad_parameter_hint(exc: click.BadParameter) -> str | None:
    if isinstance(exc.param_hint, str):
        return exc.param_hint
    if exc.param_hint is not None:
        return " / ".join(exc.param_hint)
    return _param_name(exc.param) if exc.param is not None else None
