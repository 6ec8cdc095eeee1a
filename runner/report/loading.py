"""Find and read run folders.

Users point ``runner report`` at whatever they have: one run folder, a ``results/`` folder, or a tree
of results copied back from several machines. Every ``result.json`` below the given paths is a run.
A folder that cannot be read is skipped with a warning rather than failing the whole report, because
one corrupt folder out of fifty should not hide the other forty-nine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from runner import rundir
from runner.errors import UserError
from runner.schema import RunResult


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
    """One run folder; raises ``UserError`` when it is not a finished run."""
    return Run(path, rundir.read_result(path))


def find_runs(paths: Iterable[Path]) -> Loaded:
    """Every run below ``paths``, in a stable order; unreadable or unfinished folders become warnings."""
    loaded = Loaded()
    seen: set[Path] = set()
    for root in paths:
        if not root.exists():
            raise UserError(f"{root} does not exist")
        for folder in _run_folders(root):
            key = folder.resolve()
            if key in seen:
                continue
            seen.add(key)
            if not (folder / rundir.RESULT).exists():
                loaded.warnings.append(f"{folder}: no {rundir.RESULT} (still running, or the host was killed): skipped")
                continue
            try:
                loaded.runs.append(load_run(folder))
            except UserError as exc:
                loaded.warnings.append(f"{exc}: skipped")
        loaded.dropped += _dropped_cells(root, loaded.warnings)
    if not loaded.runs and not loaded.dropped:
        raise UserError(f"no sumbench results under {', '.join(map(str, paths))} (looked for */{rundir.RESULT})")
    loaded.runs.sort(key=lambda r: (r.result.started_at, r.result.run_id))
    return loaded


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
