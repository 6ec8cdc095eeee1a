"""Study files: a matrix written down once, validated, and run again by anyone with ``runner study run``.

A study file is TOML whose keys are ``runner matrix``'s options, named as the flag without its dashes
(``--batch-sizes`` is ``batch_sizes``), so it is a file form of a matrix rather than a second way to
describe one; comma-separated options are lists, repeatable ``GPU=VALUE`` options are tables
(``docker_host = {t4 = "ssh://me@t4-vm"}``). Four keys are the study's own: ``name`` (the matrix id, so
running the file again resumes the same matrix), ``description``, ``images`` written as a table of
image -> scenarios, which runs only those pairs instead of every image with every scenario, and
``scenario_models`` (scenario -> model and base_model, for a scenario that needs another checkpoint).

One pydantic model (``StudyFile``) checks the keys and their types, and refuses an unknown key by name;
the values then go through the matrix command's own option types, so a bad GPU, batch size or size
gets the same one-line error as on the command line. A ``model``, ``data`` or ``results`` path that starts
with ``./`` or ``../`` is read from the study file's folder; any other is as given (a hub id, or a path
from where the command runs).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from runner.contract.errors import UserError
from runner.matrix import StudyFile

# Options of `runner matrix` that say how a command runs, not what the study is.
NOT_STUDY = ("collect_dir", "dry_run", "verbose")
RELATIVE_TO_FILE = ("model", "data", "results")


class ScenarioModel(BaseModel):
    """The checkpoint one scenario runs instead of the study's ``model`` (an AWQ copy for vllm-awq)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    base_model: str | None = None


class _Own(BaseModel):
    """The study's own keys; the matrix options are added to this model from the command's parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="The matrix id (default: the file's name without .toml).")
    description: str | None = None
    images: list[str] | dict[str, list[str]] | None = None
    scenario_models: dict[str, ScenarioModel] | None = Field(
        None, description="scenario -> {model, base_model}: a scenario whose checkpoint differs from model's."
    )


def _field_type(param: click.Option) -> Any:
    if param.is_flag:
        return bool
    if param.multiple:  # --docker-host GPU=URL, --price-per-hour GPU=USD
        return dict[str, str | float] | list[str | float] | str | float
    if param.name in ("scenarios", "gpus"):
        return list[str] | str
    if param.name == "batch_sizes":
        return list[int | str] | int | str
    if isinstance(param.type, click.types.IntParamType):
        return int
    if isinstance(param.type, click.types.FloatParamType):
        return float
    return str | int | float


def _matrix_command() -> click.Command:
    from runner.cli.matrix import matrix

    return matrix


def _model() -> type[BaseModel]:
    """One model: the study's own keys plus every ``runner matrix`` option a study can set."""
    fields = {
        param.name: (_field_type(param) | None, None)
        for param in _matrix_command().params
        if isinstance(param, click.Option) and param.name not in NOT_STUDY and param.name not in _Own.model_fields
    }
    return create_model("Study", __base__=_Own, **fields)  # type: ignore[call-overload]


@dataclass
class Study:
    """A study file read and checked: its values as the matrix command's options, and the file itself."""

    path: Path
    values: dict[str, Any]  # only the keys the file sets
    file: StudyFile

    @property
    def name(self) -> str:
        return self.values.get("name") or self.path.stem

    @property
    def scenario_models(self) -> dict[str, dict[str, str]] | None:
        models = self.values.get("scenario_models")
        return {s: {k: v for k, v in f.items() if v is not None} for s, f in models.items()} if models else None

    @property
    def pairs(self) -> dict[str, list[str]] | None:
        images = self.values.get("images")
        return images if isinstance(images, dict) else None


def load(path: Path) -> Study:
    """Read, parse and validate a study file; one line naming the bad key or value when it is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such study file (see studies/ for examples)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    model = _model()
    try:
        values = model.model_validate(data).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise UserError(f"{path}: {_first_error(exc, list(model.model_fields))}") from None
    for key in RELATIVE_TO_FILE:
        if key in values:
            values[key] = _from_file(path, values[key])
    for fields in (values.get("scenario_models") or {}).values():
        fields["model"] = _from_file(path, fields["model"])
    return Study(path, values, StudyFile(path.name, text))


def _from_file(path: Path, value: Any) -> Any:
    """A ./ or ../ path read from the study file's folder; any other value as it is."""
    if isinstance(value, str) and value.startswith(("./", "../")):
        return os.path.normpath(path.parent / value)
    return value


def _first_error(exc: ValidationError, keys: list[str]) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"] if not str(part).startswith(("list[", "dict[", "str", "int")))
    if error["type"] == "extra_forbidden":
        key = str(error["loc"][0])
        close = difflib.get_close_matches(key, keys, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key {key!r}: {hint}a study's keys are runner matrix's options (see runner matrix --help)"
    return f"key {where!r}: {error['msg']}"


def _words(flag: str, param: click.Option, value: Any) -> list[str]:
    """A study value as the words of the flag on a command line."""
    if param.is_flag:
        return [flag] if value else []
    if param.multiple:
        items = [f"{k}={v}" for k, v in value.items()] if isinstance(value, dict) else value
        items = items if isinstance(items, list) else [items]
        return [word for item in items for word in (flag, str(item))]
    if isinstance(value, list):
        return [flag, ",".join(str(item) for item in value)]
    return [flag, str(value)]


def matrix_arguments(study: Study, given: set[str]) -> list[str]:
    """The ``runner matrix`` arguments the study file stands for, leaving out the options in ``given``
    (set on the command line, which override the file's)."""
    words: list[str] = []
    values = {key: value for key, value in study.values.items() if key != "scenario_models"}
    images = values.pop("images", None)
    if images is not None and "images" not in given:
        words += ["--images", ",".join(images)]
    if "matrix_id" not in values and "matrix_id" not in given:
        words += ["--matrix-id", study.name]
    for param in _matrix_command().params:
        if isinstance(param, click.Option) and param.name in values and param.name not in given:
            words += _words(max(param.opts, key=len), param, values[param.name])
    return words
