"""Find and read run folders.

Users point ``runner report`` at whatever they have: one run folder, a ``results/`` folder, or a tree
of results copied back from several machines. Every ``result.json`` below the given paths is a run.
A folder that cannot be read is skipped with a warning rather than failing the whole report, because
one corrupt folder out of fifty should not hide the other forty-nine.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from runner.contract import rundir
from runner.contract.errors import UserError
from runner.contract.schema import RunResult
from runner.report.document import counted


@dataclass(frozen=True)
class Run:
    """One run folder and its parsed ``result.json``."""

    path: Path
    result: RunResult


@dataclass(frozen=True)
class Dropped:
    """A matrix cell that never ran because a rule refused it (``matrix.json``)."""

    matrix_id: str
    image: str
    scenario: str
    gpu: str
    batch_size: str
    reason: str


@dataclass
class Loaded:
    runs: list[Run] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)


def load_run(path: Path) -> Run:
    """One run folder; raises ``UserError`` when it is not a finished run, saying why and what to do."""
    return Run(path, read_result(path))


def read_result(run_dir: Path) -> RunResult:
    """``result.json`` as ``rundir.read_result`` reads it, but a folder without one is told apart: a run
    still going, one that stopped (and how to finish it), or no run at all."""
    if not (run_dir / rundir.RESULT).exists():
        raise UserError(unfinished(run_dir))
    return rundir.read_result(run_dir)


def unfinished(run_dir: Path) -> str:
    """Why a folder has no ``result.json``: a run still going, one that stopped (resume it), or no run."""
    if not (run_dir / rundir.CONFIG).exists():
        return f"{run_dir} is not a sumbench run folder (no {rundir.RESULT} or {rundir.CONFIG})"
    done = _documents_done(run_dir)
    if rundir.in_use(run_dir):
        return f"{run_dir}: the run has not finished yet ({done} so far): a worker is still writing to it"
    return (
        f"{run_dir}: the run did not finish ({done}, no {rundir.RESULT}: its worker was stopped or killed); "
        f"finish it with `runner launch --resume {shlex.quote(str(run_dir))}`"
    )


def _documents_done(run_dir: Path) -> str:
    """'3 documents done', counted from docs.jsonl's lines: a hint, so a torn last line may count."""
    try:
        with (run_dir / rundir.DOCS).open("rb") as f:
            n = sum(1 for line in f if line.strip())
    except OSError:
        n = 0
    return f"{counted(n, 'document')} done"


def find_runs(paths: Iterable[Path]) -> Loaded:
    """Every run below ``paths``, in a stable order; unreadable or unfinished folders become warnings."""
    paths = list(paths)
    loaded = Loaded()
    seen: set[Path] = set()
    problems: list[str] = []
    for root in paths:
        if not root.exists():
            raise UserError(f"{root} does not exist")
        for folder in _run_folders(root):
            key = folder.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                loaded.runs.append(load_run(folder))
            except UserError as exc:
                problems.append(str(exc))
                loaded.warnings.append(f"skipped {exc}")
        loaded.dropped += _dropped_cells(root, loaded.warnings)
    if not loaded.runs and not loaded.dropped:
        raise UserError(_nothing_found(paths, problems))
    loaded.runs.sort(key=lambda r: (r.result.started_at, r.result.run_id))
    return loaded


def _nothing_found(paths: Iterable[Path], problems: list[str]) -> str:
    """One line for a report with no run in it: why the folders that look like runs are not."""
    where = ", ".join(map(str, paths))
    if not problems:
        return f"no sumbench results under {where} (looked for */{rundir.RESULT})"
    others = len(problems) - 1
    more = f" (and {counted(others, 'more folder')})" if others else ""
    return f"no finished sumbench run under {where}: {problems[0]}{more}"


def _dropped_cells(root: Path, warnings: list[str]) -> list[Dropped]:
    """The cells each matrix below ``root`` dropped, with their reasons."""
    from runner.matrix import MANIFEST, read_manifest

    manifests = (
        [root] if root.is_file() and root.name == MANIFEST else sorted(root.rglob(MANIFEST)) if root.is_dir() else []
    )
    dropped = []
    for path in manifests:
        try:
            manifest = read_manifest(path)
        except UserError as exc:
            warnings.append(f"{exc}: skipped")
            continue
        dropped += [
            Dropped(manifest.matrix_id, c.image, c.scenario, c.gpu, str(c.batch_size), c.reason or "")
            for c in manifest.cells
            if c.status == "dropped"
        ]
    return dropped


def _run_folders(root: Path) -> list[Path]:
    if root.is_file():
        return [root.parent] if root.name == rundir.RESULT else []
    # A log or records without a result mark a run that never finished; a bare config.json does not
    # (model checkpoints have one too).
    marks = [m for name in (rundir.RESULT, rundir.WORKER_LOG, rundir.OUTPUT_LOG, rundir.DOCS) for m in root.rglob(name)]
    return sorted({m.parent for m in marks})
