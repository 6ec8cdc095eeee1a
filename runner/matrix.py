"""Matrix runs: every cell of image × scenario × GPU × batch size, on one target, into one results tree.

``runner matrix`` expands the cells, drops those that cannot run (keeping the reason), writes
``RESULTS/<matrix-id>/matrix.json`` and hands the rest to a target (``runner.targets``: ``local``,
``docker``, ``sky``, ``k8s``). Each cell's run folder is ``RESULTS/<matrix-id>/<run-id>/``, the folder
``runner launch`` writes, so ``runner report RESULTS/<matrix-id>`` reads a matrix like any tree of runs;
the manifest adds what no run folder can say: which cells were dropped, and why.

``matrix.json`` (``schema_version`` 1) is rewritten atomically whenever a cell changes state::

    {
      "kind": "sumbench-matrix",
      "schema_version": 1,
      "matrix_id": "20261201-101500-matrix",
      "target": "local" | "docker" | "sky" | "k8s",
      "created_at": "2026-12-01T10:15:00+00:00",
      "updated_at": "...",
      "request": {"images": [...], "scenarios": [...] or null (each image's default), "gpus": [...],
                  "batch_sizes": [1, 8, "auto"], "model": "...", "data": "...",
                  "registry": "...", "tag": "...", "prices": {"t4": 0.2, "*": 1.0} (--price-per-hour),
                  "options": {target options},
                  and only when asked: "repeats": N, "pairs": {image: [scenarios]},
                  "scenario_models": {scenario: {"model": ..., "base_model": ...}},
                  "study_file": "NAME.toml", "study_sha256": "..." (runner study run; the file is
                  copied beside matrix.json as study.toml)},
      "cells": [
        {
          "run_id": "hf-t4-default-bs8",     # the run folder's name, unique in the matrix
          "image": "hf", "scenario": "default", "gpu": "t4", "batch_size": 8,
          "status": "planned" | "dropped" | "launched" | "done" | "error",
          "reason": null or "why it was dropped / what failed launching or collecting it",
          "result_status": null or "completed" | "partial" | "failed",   # from result.json once done
          "where": null or "local" | "docker local engine" | "docker ssh://me@t4-vm"
                   | "sky cluster sumbench-1a2b3c4d5e" | "sky managed job sumbench-1a2b3c4d5e (id 12)"
                   | "k8s job NAMESPACE/NAME",
          "updated_at": "...",
          "repeat": null or 1..N           # with --repeats N: run_id ends in -rN
        }
      ]
    }

Cell status:
  planned   will run; ``--dry-run`` stops here (with the SkyPilot tasks or Kubernetes manifests rendered)
  dropped   never runs: an incompatibility (``runner.compat``, a scenario the image lacks, a GPU the
            target cannot select); ``reason`` says which
  launched  handed to its target, no result collected yet
  done      ``result.json`` is in the run folder; ``result_status`` says how the run itself went (a
            failed run is a result too)
  error     the target could not launch it or collect its result; ``reason`` says what happened

Running the same command again with the same ``--matrix-id`` keeps completed cells and re-runs the
rest into their existing folders, which resumes them from ``docs.jsonl``. A matrix id whose folder
holds a matrix asked something else (other images, GPUs, model, target options, ...), or a folder that
is not a matrix, is refused: ``matrix.json`` is the record of that matrix. A generated id (the time to
the second) takes a suffix (``-2``, ...) where a matrix of the same second has the folder already.

Everything is checked before the folder is created, so a refused matrix leaves nothing behind. A
matrix where every cell is dropped is refused too (``no cell of the matrix can run``, with the reasons).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from runner import __version__, compat
from runner.contract import catalog, rundir
from runner.contract.errors import UserError
from runner.contract.schema import BatchSize, RunConfig, Status
from runner.launching import LaunchRequest, build_config
from runner.model_names import gated_error, is_gated, token_checked_elsewhere
from runner.scenarios import get_scenario

ANY_GPU = "*"  # a --price-per-hour without GPU= : every GPU of the matrix without its own price

MANIFEST = "matrix.json"
SCHEMA_VERSION = 1

CellStatus = Literal["planned", "dropped", "launched", "done", "error"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MatrixCell(_Model):
    """One line of the manifest: a cell and where it stands."""

    run_id: str
    image: str
    scenario: str
    gpu: str
    batch_size: BatchSize
    status: CellStatus = "planned"
    reason: str | None = None
    result_status: Status | None = None
    where: str | None = None
    updated_at: str = ""
    repeat: int | None = None  # 1..N when the matrix runs each cell N times (--repeats); run_id ends in -rN


class MatrixManifest(_Model):
    """``matrix.json``: the whole matrix, dropped cells included."""

    kind: Literal["sumbench-matrix"] = "sumbench-matrix"
    schema_version: Literal[1] = SCHEMA_VERSION
    matrix_id: str
    target: str
    created_at: str
    updated_at: str
    request: dict[str, Any]
    cells: list[MatrixCell]


def read_manifest(path: Path) -> MatrixManifest:
    """A matrix folder's manifest (pass the folder or the file)."""
    path = path / MANIFEST if path.is_dir() else path
    try:
        return MatrixManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path.parent} is not a matrix folder (no {MANIFEST})") from None
    except ValidationError as exc:
        raise UserError(f"{path}: not a valid matrix manifest ({exc.errors()[0]['msg']})") from None


class ManifestStore:
    """The manifest on disk, updated from several dispatch threads at once."""

    def __init__(self, path: Path, manifest: MatrixManifest) -> None:
        self.path = path
        self._manifest = manifest
        self._lock = threading.Lock()
        self._save()

    @property
    def manifest(self) -> MatrixManifest:
        with self._lock:
            return self._manifest.model_copy(deep=True)

    def update(self, run_id: str, **fields: Any) -> None:
        """Change one cell and write the whole manifest (atomically: readers never see half of it)."""
        with self._lock:
            for i, cell in enumerate(self._manifest.cells):
                if cell.run_id == run_id:
                    self._manifest.cells[i] = cell.model_copy(update={**fields, "updated_at": _now()})
                    break
            else:
                raise KeyError(run_id)
            self._save()

    def _save(self) -> None:
        self._manifest.updated_at = _now()
        rundir.write_json_atomic(self.path, self._manifest.model_dump_json(indent=2))


# --- expansion -------------------------------------------------------------------------------------


def cell_run_id(image: str, gpu: str, scenario: str, batch_size: BatchSize) -> str:
    """A run folder name that says what the cell is; the matrix folder already carries the time."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", f"{image}-{gpu}-{scenario}-bs{batch_size}").strip("-")


def _unique(items: list) -> list:
    return list(dict.fromkeys(items))


def expand(
    images: list[str],
    scenarios: list[str] | None,
    gpus: list[str],
    batch_sizes: list[BatchSize],
    pairs: dict[str, list[str]] | None = None,
    repeats: int = 1,
) -> list[MatrixCell]:
    """Every cell, in the order asked; the ones the GPU rules refuse are dropped with their reasons.

    Without ``scenarios`` each image runs its own default. With them, every image is crossed with every
    scenario and a scenario an image does not ship is a dropped cell, so the manifest shows the hole.
    ``pairs`` (image -> its scenarios, a study file's ``[images]`` table) replaces that product: each image
    runs only the scenarios named for it. ``repeats`` > 1 makes N cells of each, run ids ending -r1..-rN.
    """
    cells = []
    for image in (catalog.get_image(key) for key in _unique(list(pairs) if pairs else images)):
        names = pairs[image.key] if pairs else (scenarios or [image.default_scenario])
        for scenario in (get_scenario(name) for name in _unique(names)):
            for gpu in (catalog.get_gpu(key) for key in _unique(gpus)):
                reasons = compat.check(image, scenario, gpu)
                for batch in _unique(batch_sizes):
                    why = list(reasons)
                    if batch == "dynamic" and scenario.backend != "vllm":
                        why.append(
                            f"batch size dynamic hands every prompt to vLLM; scenario {scenario.name} "
                            f"runs on {scenario.backend}"
                        )
                    elif batching := compat.batch_problem(scenario, batch):
                        why.append(batching)
                    run_id = cell_run_id(image.key, gpu.key, scenario.name, batch)
                    cells += [
                        MatrixCell(
                            run_id=f"{run_id}-r{repeat}" if repeats > 1 else run_id,
                            image=image.key,
                            scenario=scenario.name,
                            gpu=gpu.key,
                            batch_size=batch,
                            status="dropped" if why else "planned",
                            reason="; ".join(why) or None,
                            updated_at=_now(),
                            repeat=repeat if repeats > 1 else None,
                        )
                        for repeat in range(1, repeats + 1)
                    ]
    return cells


# --- planning --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StudyFile:
    """A study file as it was read: recorded with the matrix (its name and hash in matrix.json, its text
    as ``study.toml`` in the matrix folder), so the matrix says what file asked for it."""

    name: str
    text: str

    @property
    def sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


STUDY_COPY = "study.toml"


@dataclasses.dataclass
class MatrixRequest:
    """What ``runner matrix`` was asked; ``base`` carries the options every cell shares."""

    images: list[str]
    gpus: list[str]
    batch_sizes: list[BatchSize]
    base: LaunchRequest
    scenarios: list[str] | None = None
    target: str = "local"
    results: Path = Path("results")
    matrix_id: str | None = None
    registry: str = ""
    tag: str = __version__
    options: Any = None  # the target's options dataclass (DockerOptions, SkyOptions, K8sOptions)
    prices: dict[str, float] = dataclasses.field(default_factory=dict)  # GPU key or "*" -> USD per GPU-hour
    pairs: dict[str, list[str]] | None = None  # image -> its scenarios, instead of images x scenarios
    repeats: int = 1
    study: StudyFile | None = None  # the study file this matrix was run from (runner study run)
    # scenario -> {"model": ..., "base_model": ...}: a scenario that needs another checkpoint than ``base``'s
    # (vllm-awq serves an AWQ copy of the model the other scenarios run), as a study's [scenario_models].
    scenario_models: dict[str, dict[str, str]] | None = None

    def model_for(self, scenario: str) -> dict[str, str]:
        """The LaunchRequest fields (model, base_model) a scenario's cells take instead of ``base``'s."""
        return (self.scenario_models or {}).get(scenario, {})

    def price(self, gpu: str) -> float | None:
        """The --price-per-hour given for a GPU type (its own, else the bare one); None: none given."""
        return self.prices.get(gpu, self.prices.get(ANY_GPU))


def parse_prices(values: list[str] | tuple[str, ...]) -> dict[str, float]:
    """``--price-per-hour GPU=USD`` (repeatable) or a bare ``USD`` for every GPU without its own.

    Parsed like ``--docker-host GPU=URL``: a matrix crosses GPU types whose prices differ, and the one price
    ``runner launch`` takes would price them all alike.
    """
    prices: dict[str, float] = {}
    for value in values:
        gpu, sep, amount = value.rpartition("=")
        key = catalog.get_gpu(gpu.strip()).key if sep else ANY_GPU
        try:
            price = float(amount)
        except ValueError:
            price = -1.0
        if not 0 <= price < float("inf"):
            raise UserError(
                f"--price-per-hour {value!r}: give USD per GPU-hour, for one GPU type (t4=0.35) or for every GPU (0.35)"
            )
        if key in prices:
            raise UserError(f"--price-per-hour names {key if key != ANY_GPU else 'a price for every GPU'} twice")
        prices[key] = price
    return prices


@dataclasses.dataclass
class Cell:
    """A cell that will run: its manifest entry, its launch request and the config a worker reads."""

    entry: MatrixCell
    request: LaunchRequest
    config: RunConfig
    notes: list[str]

    @property
    def run_id(self) -> str:
        return self.entry.run_id

    @property
    def run_dir(self) -> Path:
        return self.request.results / self.entry.run_id


@dataclasses.dataclass
class Matrix:
    """A planned matrix: its folder, its manifest and the cells to run."""

    id: str
    dir: Path
    request: MatrixRequest
    store: ManifestStore
    cells: list[Cell]
    target: Any  # runner.targets.Target
    warnings: list[str] = dataclasses.field(default_factory=list)  # shown before anything launches


def new_matrix_id(results: Path) -> str:
    """The time to the second, with a suffix where a matrix of that second already has the folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    suffixes = itertools.chain([""], (f"-{n}" for n in itertools.count(2)))
    return next(f"{stamp}-matrix{s}" for s in suffixes if not (results / f"{stamp}-matrix{s}").exists())


def plan(req: MatrixRequest, dry_run: bool = False) -> Matrix:
    """Expand, drop, check every kept cell as ``runner launch`` would, then create the folder and matrix.json.

    Everything is checked before anything is written: a matrix refused for any reason leaves no folder.
    """
    from runner.targets import create_target

    if not req.images or not req.gpus or not req.batch_sizes:
        raise UserError("a matrix needs at least one image, one GPU and one batch size")
    target = create_target(req.target, req.options)
    matrix_id = req.matrix_id or new_matrix_id(req.results)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", matrix_id):
        raise UserError(f"--matrix-id {matrix_id!r}: use letters, digits, '.', '_' and '-'")
    matrix_dir = req.results / matrix_id
    if unknown := sorted(set(req.prices) - {ANY_GPU} - {catalog.get_gpu(g).key for g in req.gpus}):
        raise UserError(f"--price-per-hour names {', '.join(unknown)}, which --gpus does not ({', '.join(req.gpus)})")
    previous = _previous_manifest(matrix_dir, req)
    old_cells = {cell.run_id: cell for cell in previous.cells} if previous else {}
    cells = preview(req, target)
    kept: list[Cell] = []
    unpriced: dict[str, list[str]] = {}  # why the catalog's price does not apply -> the GPUs it left unpriced
    for i, entry in enumerate(cells):
        if entry.status == "dropped":
            continue
        old = old_cells.get(entry.run_id)
        if old is not None and old.status == "done" and old.result_status == "completed":
            cells[i] = old  # finished in an earlier invocation of the same matrix
            continue
        if rundir.completed(matrix_dir / entry.run_id):
            # Finished, though matrix.json never heard (the host stopped between the two writes).
            cells[i] = entry.model_copy(update={"status": "done", "result_status": "completed"})
            continue
        request = dataclasses.replace(
            req.base,
            image=entry.image,
            gpu=entry.gpu,
            scenario=entry.scenario,
            batch_size=entry.batch_size,
            results=matrix_dir,
            run_id=entry.run_id,
            executor=target.executor,
            executor_options={},
            price_per_hour=req.price(entry.gpu),
            **req.model_for(entry.scenario),
        )
        with token_checked_elsewhere():  # the target says below where its workers get a token
            config, notes = build_config(request)
        if request.price_per_hour is None and (why := target.catalog_price_problem(catalog.get_gpu(entry.gpu))):
            # No price beats a wrong one: a cost of None shows as missing, a wrong one as a fact.
            config = config.model_copy(update={"price_per_hour_usd": None, "price_source": f"none: {why}"})
            unpriced.setdefault(why, []).append(entry.gpu)
        kept.append(Cell(entry, request, config, notes))
    if all(cell.status == "dropped" for cell in cells):
        raise UserError(f"no cell of the matrix can run: {_reasons(cells)}")
    warnings = [
        f"no price recorded for {', '.join(_unique(gpus))} ($/1k docs will be missing): {why}"
        for why, gpus in unpriced.items()
    ]
    gated = next((c.request.model for c in kept if is_gated(c.request.model, req.base.synthetic_weights)), None)
    if gated is not None and (fix := target.hf_token_missing()):
        if not dry_run or target.token_in_command:
            # A dry run checks what the command itself must carry (--hf-token, --hf-token-secret): the
            # command it prints for the real run would be refused, or its pods would fail at download.
            raise gated_error(gated, fix)
        warnings.append(f"{gated_error(gated, fix)} before the real run (a dry run downloads nothing)")
    target.check(req, kept, launching=not dry_run)
    warnings += target.warnings(req, kept, launching=not dry_run)

    matrix_dir = _create_folder(req.results, matrix_id, generated=req.matrix_id is None)
    if matrix_dir.name != matrix_id:  # another matrix took the generated id meanwhile
        matrix_id = matrix_dir.name
        for cell in kept:
            cell.request = dataclasses.replace(cell.request, results=matrix_dir)
    manifest = MatrixManifest(
        matrix_id=matrix_id,
        target=req.target,
        created_at=previous.created_at if previous else _now(),
        updated_at=_now(),
        request=_describe(req),
        cells=cells,
    )
    store = ManifestStore(matrix_dir / MANIFEST, manifest)
    if req.study is not None:
        (matrix_dir / STUDY_COPY).write_text(req.study.text, encoding="utf-8")  # its sha256 is in matrix.json
    return Matrix(matrix_id, matrix_dir, req, store, kept, target, warnings)


def preview(req: MatrixRequest, target: Any = None) -> list[MatrixCell]:
    """Every cell with the rules' verdict (GPU rules, the target's, an AWQ scenario's checkpoint), without
    reading the data or writing anything: what ``runner study plan`` shows and ``plan`` starts from."""
    from runner.targets import create_target

    target = target or create_target(req.target, req.options)
    cells = expand(req.images, req.scenarios, req.gpus, req.batch_sizes, req.pairs, req.repeats)
    for i, entry in enumerate(cells):
        if entry.status == "dropped":
            continue
        if (reason := target.drop_reason(entry)) is not None or (
            reason := compat.checkpoint_problem(
                get_scenario(entry.scenario),
                req.model_for(entry.scenario).get("model", req.base.model),
                req.base.synthetic_weights,
            )
        ) is not None:
            cells[i] = entry.model_copy(update={"status": "dropped", "reason": reason})
    return cells


def _reasons(cells: list[MatrixCell]) -> str:
    """Each reason once, after the cells it drops."""
    by_reason: dict[str, list[str]] = {}
    for cell in cells:
        by_reason.setdefault(cell.reason or "dropped", []).append(cell.run_id)
    return "; ".join(f"{', '.join(run_ids)}: {reason}" for reason, run_ids in by_reason.items())


def _previous_manifest(matrix_dir: Path, req: MatrixRequest) -> MatrixManifest | None:
    """The manifest of an earlier invocation of this matrix, refused when it was asked something else."""
    if not (matrix_dir / MANIFEST).exists():
        if matrix_dir.is_dir() and any(matrix_dir.iterdir()):
            raise UserError(f"{matrix_dir} exists and is not a matrix folder: pass another --matrix-id")
        return None
    previous = read_manifest(matrix_dir)
    asked = {"target": req.target, **json.loads(json.dumps(_describe(req)))}
    before = {"target": previous.target, **previous.request}
    if changed := _differences(before, asked):
        raise UserError(
            f"{matrix_dir} already holds a matrix with other settings ({', '.join(changed)}): "
            "pass another --matrix-id, or repeat the same command to resume it"
        )
    return previous


# How a command shows, paces or prices its cells, not what they are: a resumed matrix may change these.
_NOT_SETTINGS = {"options.verbose", "options.wait", "options.poll_seconds", "options.max_parallel", "prices"}


def _differences(before: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """``name: old -> new`` for each setting that differs; one an older manifest did not record is not compared."""
    old, new = _flat(before), _flat(asked)
    return [
        f"{key}: {old[key]!r} -> {value!r}"
        for key, value in new.items()
        if key in old and key not in _NOT_SETTINGS and old[key] != value
    ]


def _flat(request: dict[str, Any]) -> dict[str, Any]:
    flat = {key: value for key, value in request.items() if key != "options"}
    return flat | {f"options.{key}": value for key, value in (request.get("options") or {}).items()}


def _create_folder(results: Path, matrix_id: str, generated: bool) -> Path:
    """The matrix folder, checked writable. A generated id whose folder appeared since it was chosen
    (another matrix started in the same second) moves on to the next free one."""
    with rundir.writable_results(results):
        results.mkdir(parents=True, exist_ok=True)
        while True:
            matrix_dir = results / matrix_id
            try:
                matrix_dir.mkdir(exist_ok=not generated)
                break
            except FileExistsError:
                if not generated:  # a file of that name
                    raise UserError(f"{matrix_dir} is a file, not a matrix folder: pass another --matrix-id") from None
                matrix_id = new_matrix_id(results)
        rundir.probe_writable(matrix_dir)
    return matrix_dir


def _resolved(path: str) -> str:
    local = Path(path).expanduser()
    return str(local.resolve()) if local.exists() else path


def _describe(req: MatrixRequest) -> dict[str, Any]:
    options = dataclasses.asdict(req.options) if dataclasses.is_dataclass(req.options) else {}
    return {
        "images": req.images,
        "scenarios": req.scenarios,
        "gpus": req.gpus,
        "batch_sizes": req.batch_sizes,
        # Resolved, as each cell's config records them: the same matrix resumed from another folder (or
        # with ./tiny for tiny) is the same model and data, and a relative path is not another one.
        "model": _resolved(req.base.model),
        "data": _resolved(req.base.data),
        "registry": req.registry,
        "tag": req.tag,
        "limit": req.base.limit,
        "max_new_tokens": req.base.max_new_tokens,
        "prices": req.prices,
        "options": options,
    } | _additions(req)


def _additions(req: MatrixRequest) -> dict[str, Any]:
    """What only some matrices ask; absent otherwise, so an earlier manifest of the same matrix still matches."""
    added: dict[str, Any] = {}
    if req.pairs:
        added["pairs"] = req.pairs
    if req.repeats > 1:
        added["repeats"] = req.repeats
    if req.scenario_models:
        added["scenario_models"] = {
            scenario: {key: _resolved(value) if key == "model" else value for key, value in fields.items()}
            for scenario, fields in req.scenario_models.items()
        }
    if req.study is not None:
        added |= {"study_file": req.study.name, "study_sha256": req.study.sha256}
    return added


def run(req: MatrixRequest, on_line, dry_run: bool = False) -> MatrixManifest:
    """Plan the matrix, render what the target needs, and (unless ``dry_run``) launch and collect it."""
    matrix = plan(req, dry_run)
    for warning in matrix.warnings:
        on_line(f"warning: {warning}")
    matrix.target.render(matrix)
    if not dry_run and matrix.cells:
        try:
            matrix.target.launch(matrix, on_line)
        except KeyboardInterrupt:
            _settle_interrupted(matrix)
            raise MatrixInterrupted(matrix.store.manifest, matrix.dir) from None
    return matrix.store.manifest


class MatrixInterrupted(KeyboardInterrupt):
    """Ctrl-C during a matrix, once matrix.json says where each cell stands: the command can still show
    what ran and how to finish it (its id may have been generated, so only the matrix knows it)."""

    def __init__(self, manifest: MatrixManifest, matrix_dir: Path) -> None:
        super().__init__(f"matrix {manifest.matrix_id} interrupted")
        self.manifest, self.matrix_dir = manifest, matrix_dir


def _settle_interrupted(matrix: Matrix) -> None:
    """After Ctrl-C, a cell still marked launched is done if its worker wrote a result (a partial one,
    as an interrupted worker does), and an error otherwise: matrix.json then says what the same command
    will resume. Cells never started stay planned."""
    for cell in matrix.store.manifest.cells:
        if cell.status != "launched":
            continue
        try:
            result = rundir.read_result(matrix.dir / cell.run_id)
        except UserError:
            matrix.store.update(cell.run_id, status="error", reason="interrupted before its worker wrote a result")
        else:
            matrix.store.update(cell.run_id, status="done", result_status=result.status, reason=None)


def submit_steps(manifest: MatrixManifest, matrix_dir: Path, command: str) -> list[str]:
    """What to do after a dry run to run the matrix for real: ``command`` is the same command without
    ``--dry-run`` (with its ``--matrix-id``, so the real run continues the manifest the dry run wrote), and
    the target adds what it needs in place first (volumes, Secrets, where the manifests are)."""
    from runner.targets import create_target

    target = create_target(manifest.target, manifest.request.get("options") or {})
    return target.submit_steps(manifest, matrix_dir, command)


def collect(matrix_dir: Path, on_line) -> MatrixManifest:
    """Collect the results of a matrix whose cells were launched without waiting (``--no-wait``)."""
    from runner.targets import create_target

    manifest = read_manifest(matrix_dir)
    target = create_target(manifest.target, manifest.request.get("options") or {})
    store = ManifestStore(matrix_dir / MANIFEST, manifest)
    target.collect(matrix_dir, store, on_line)
    return store.manifest
