"""The run folder: ``config.json``, ``docs.jsonl``, ``result.json``, ``worker.log``, ``error.log``.

Shared by the worker (which writes it) and the host (which reads it, resumes it, and finishes it when
a worker died without a word). Records are appended and flushed one batch at a time, and JSON files are
replaced atomically, so a crash at any moment leaves every finished document readable.

Two more guards keep that promise when things go badly: a worker holds a lock on the folder, so two
workers never append the same documents to one ``docs.jsonl``; and it sets a little disk space aside
while it runs, so that a full disk, which stops the records, still leaves room for ``result.json``
to say what happened.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from runner.contract import versions
from runner.contract.errors import UserError
from runner.contract.schema import DocRecord, RunConfig, RunResult


@contextlib.contextmanager
def writable_results(results: Path) -> Iterator[None]:
    """Folders made or probed under ``results`` in this block: an OSError becomes one line naming the
    folder and the fix, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise UserError(
            f"results folder {results} is not writable ({_why_not(results, exc)}): pass --results DIR"
        ) from None


def _why_not(results: Path, exc: OSError) -> str:
    """The reason in words that fit the folder. The OS's own can mislead: /proc/self exists, yet making a
    folder in it fails with "No such file or directory"; and a path under a regular file says "Not a
    directory" without naming the file."""
    for path in (results, *results.parents):
        if path.exists() and not path.is_dir():
            return f"{path} is a file, not a folder"
    if results.is_dir() and exc.filename is not None and Path(os.fsdecode(exc.filename)) != results:
        return f"it exists, but creating {os.fsdecode(exc.filename)} in it fails: {exc.strerror}"
    return exc.strerror or str(exc)


def probe_writable(folder: Path) -> None:
    """Write and remove a file now, so a folder that takes no files fails before any work, not after it."""
    probe = folder / ".write-test"
    probe.write_text("")
    probe.unlink()


CONFIG = "config.json"
DOCS = "docs.jsonl"
RESULT = "result.json"
WORKER_LOG = "worker.log"
# Everything the worker process printed, as the executor received it: the worker's log lines and also what
# never reaches its logger (a backend's own engine processes, CUDA and native-crash messages).
OUTPUT_LOG = "output.log"
ERROR_LOG = "error.log"
LOCK = ".lock"
RESERVE = ".reserve"
RESERVE_BYTES = 1 << 20  # far more than result.json and error.log need, and nothing on any real disk


def new_run_id(image: str, gpu: str, scenario: str, batch_size: object) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{image}-{gpu}-{scenario}-bs{batch_size}").strip("-")
    return f"{stamp}-{slug}"


_PROC_STATUS = Path("/proc/self/status")


def current_umask() -> int:
    """This process's umask, read without changing it where the kernel says it (Linux 4.7+, ``Umask:`` in
    /proc/self/status). Elsewhere the only way is to set one and put it back, which is process-wide: a
    thread creating a file in between would get the temporary mask, so it is the fallback only."""
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_file_mode() -> int:
    """The permissions ``open(path, "w")`` gives a new file (0666 less the umask): what docs.jsonl and the
    logs get. A temporary file is made 0600, which would keep result.json from a teammate, or a CI job
    under another uid, that can read every other file of the run."""
    return 0o666 & ~current_umask()


def write_json_atomic(path: Path, data: dict | str) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one; with the
    permissions a plain write would give it (``plain_file_mode``), not the temporary file's 0600."""
    text = data if isinstance(data, str) else json.dumps(data, indent=2, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), plain_file_mode())
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_config(run_dir: Path, config: RunConfig) -> None:
    write_json_atomic(run_dir / CONFIG, config.model_dump_json(indent=2))


def read_config(run_dir: Path, *, worker: bool = False) -> RunConfig:
    """``config.json``; a config from a newer sumbench is refused with what to upgrade: the image, when a
    ``worker`` reads it (``versions.PROTOCOL``), or sumbench itself on the host."""
    path = run_dir / CONFIG
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        raise UserError(f"{run_dir} is not a sumbench run folder (no {CONFIG})") from None
    except ValueError:
        raise UserError(f"{path}: invalid run config (not JSON)") from None
    found = versions.config_protocol(data)
    try:
        if worker:
            versions.check_config_for_worker(data, data.get("image") if isinstance(data, dict) else None)
        elif found > versions.PROTOCOL:
            raise versions.NewerVersion(
                f"{path} was written by a newer sumbench (protocol {found}; this one speaks {versions.PROTOCOL}): "
                "upgrade sumbench to resume or read it"
            )
    except versions.NewerVersion as exc:
        raise UserError(str(exc)) from None
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path}: invalid run config ({exc.error_count()} errors)") from None


def write_result(run_dir: Path, result: RunResult) -> None:
    """Write ``result.json``, giving back the reserved space first.

    The reserve exists for this write: on a full disk it is the room the write needs. Freed before the
    write rather than after, a folder that has a result never keeps a reserve, even when the worker (or
    the host and the worker together) is killed the moment after."""
    release_space(run_dir)
    write_json_atomic(run_dir / RESULT, result.model_dump_json(indent=2))


def reserve_space(run_dir: Path, size: int = RESERVE_BYTES) -> bool:
    """Set ``size`` bytes of disk aside for the end of the run; False where the disk has no room.

    Filesystems refuse a write when they are full, even a small one, and a run that fills the disk
    would otherwise be unable to record that it did. A reserve left by an attempt that was killed
    (SIGKILL gives no chance to free it) is removed first, so its space counts again and a file this
    process could not open (another user's, from a container) does not stand in the way.
    """
    path = run_dir / RESERVE
    try:
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, size)
            except (AttributeError, OSError) as exc:  # no fallocate here: write the zeros
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    raise
                os.write(fd, bytes(size))
        finally:
            os.close(fd)
    except OSError:
        release_space(run_dir)
        return False
    return True


def release_space(run_dir: Path) -> bool:
    """Free the space ``reserve_space`` set aside; True when there was some. A reserve that cannot be
    removed is left, never raised about: the write that follows (``result.json``) matters more."""
    try:
        (run_dir / RESERVE).unlink()
    except OSError:
        return False
    return True


def write_text_best_effort(path: Path, text: str) -> bool:
    """Write a diagnostic file (``error.log``) where a failure to write must not hide the first error."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run folder for one worker; raises ``RunFolderBusy`` if another holds it.

    Two workers on one folder (a second ``--resume`` while the first still runs) would both append the
    same pending documents. The lock is advisory (``flock``), released by the kernel when its holder
    dies, so a SIGKILLed worker never leaves a stale one behind. Its empty file is removed while still
    held; a process that opened it just before, and locks it after, finds it no longer at that path and
    tries again on a new one, so two holders never both believe they hold the folder.
    """
    try:
        import fcntl
    except ImportError:  # no flock on this platform: run unguarded
        yield
        return
    path = run_dir / LOCK
    while True:
        with path.open("a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunFolderBusy(run_dir) from None
            if not _still_at(handle, path):  # removed by the holder it waited behind: lock the new one
                continue
            try:
                yield
                return
            finally:
                path.unlink(missing_ok=True)
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _still_at(handle, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), path.stat())
    except FileNotFoundError:
        return False


def in_use(run_dir: Path) -> bool:
    """Whether a live worker holds ``run_dir`` right now."""
    if not (run_dir / LOCK).exists():
        return False
    try:
        with locked(run_dir):
            return False
    except RunFolderBusy:
        return True
    except OSError:
        return False


class RunFolderBusy(UserError):
    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"{run_dir} is in use by a running worker: wait for it to finish, or stop it before resuming")


def read_result(run_dir: Path) -> RunResult:
    """``result.json``, or one line naming the file and what is wrong with it: a run folder may have been
    copied back from elsewhere (a truncated file, a directory of that name, bytes that are not UTF-8).

    A result from a newer sumbench of the same major schema version is read without the fields this one
    does not know (they were added after it); a newer major is refused with "upgrade sumbench"."""
    path = run_dir / RESULT
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{run_dir} has no {RESULT}: the run never finished or was not a sumbench run") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(raw)
    except ValueError:
        try:  # pydantic's own parser says what is wrong with the JSON in the words the schema errors use
            return RunResult.model_validate_json(raw)
        except ValidationError as exc:
            raise UserError(f"{path}: not a valid sumbench result ({first_error(exc)})") from None
    try:
        newer_minor = versions.check_result(data, str(path))
    except versions.NewerVersion as exc:
        raise UserError(str(exc)) from None
    try:
        return RunResult.model_validate(data)
    except ValidationError as exc:
        if newer_minor and versions.drop_unknown(data, exc.errors()):
            try:
                return RunResult.model_validate(data)
            except ValidationError as again:
                exc = again
        raise UserError(f"{path}: not a valid sumbench result ({first_error(exc)})") from None


def first_error(exc: ValidationError) -> str:
    """The first problem, with the field it is in ('metrics.documents: Input should be a valid integer')."""
    first = exc.errors()[0]
    where = ".".join(map(str, first["loc"]))
    more = exc.error_count() - 1
    plural = "s" if more > 1 else ""
    return (f"{where}: " if where else "") + first["msg"] + (f"; {more} more error{plural}" if more else "")


def completed(run_dir: Path) -> bool:
    """Whether ``result.json`` says the run completed; a missing or unreadable result says it did not."""
    try:
        return read_result(run_dir).status == "completed"
    except (UserError, OSError):
        return False


def repair_docs(run_dir: Path) -> int:
    """Cut a torn final line (a crash mid-write) off ``docs.jsonl``; returns the bytes removed."""
    path = run_dir / DOCS
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep = len(data) if data.endswith(b"\n") or not data else data.rfind(b"\n") + 1
    # A complete last line that does not parse is torn too (e.g. a crash mid-fsync on some filesystems).
    lines = data[:keep].splitlines(keepends=True)
    while lines:
        try:
            DocRecord.model_validate_json(lines[-1])
            break
        except ValidationError:
            keep -= len(lines.pop())
    if keep == len(data):
        return 0
    with path.open("r+b") as f:
        f.truncate(keep)
    return len(data) - keep


def read_docs(run_dir: Path) -> list[DocRecord]:
    """Every per-document record; a torn last line is ignored (``repair_docs`` removes it)."""
    path = run_dir / DOCS
    if not path.exists():
        return []
    records = []
    lines = path.read_bytes().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(DocRecord.model_validate_json(line))
        except ValidationError:
            if number == len(lines):
                break
            raise UserError(
                f"{path}:{number}: corrupt record in the middle of the file: "
                "delete that line (its document runs again) and resume"
            ) from None
    return records


class DocWriter:
    """Appends records and makes each batch durable before the next one starts.

    A batch goes down in one write and one fsync. If that write fails (a full disk, a quota), the file
    is cut back to where the batch began, so ``docs.jsonl`` holds whole batches only and the error
    reaches the caller instead of sitting in a buffer to be retried, half-written, at close.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / DOCS
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write_batch(self, records: Iterable[DocRecord]) -> None:
        data = "".join(record.model_dump_json() + "\n" for record in records).encode("utf-8")
        start = os.fstat(self._fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
