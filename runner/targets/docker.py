"""Targets ``local`` and ``docker``: each cell through ``runner.launching``, on the engine for its GPU.

``local`` runs every cell with the process executor on this machine, and drops the cells of a GPU type
this machine does not have (NVML, matched to the catalog) when it plans. ``docker`` runs each cell in its
image through the Docker executor, on the engine named for the cell's GPU type
(``--docker-host t4=ssh://me@t4-vm``), or on the local engine (``DOCKER_HOST``) when none is named.

A GPU runs one cell at a time, so the cells of one host run one after another; different hosts run at
the same time, one thread each. That is all the dispatching there is: no queue, no retries, no
placement. Cells go through the same ``launching.launch`` as ``runner launch``, so a cell's folder is
exactly what a single launch would have written, and re-running resumes it.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runner import launching
from runner.contract import catalog, events
from runner.contract.errors import UserError
from runner.targets import Target

ANY_GPU = "*"


@dataclass
class DockerOptions:
    """Where each GPU type's cells run: catalog GPU key -> Docker engine URL (``*``: every other GPU)."""

    hosts: dict[str, str] = field(default_factory=dict)
    verbose: bool = False


def parse_hosts(values: Iterable[str]) -> dict[str, str]:
    """``--docker-host GPU=URL`` (or a bare ``URL`` for every GPU) into a mapping."""
    hosts: dict[str, str] = {}
    for value in values:
        gpu, sep, url = value.partition("=")
        if not sep or "://" in gpu:  # a bare URL such as ssh://me@vm (it may itself contain '=')
            gpu, url = ANY_GPU, value
        else:
            gpu = catalog.get_gpu(gpu.strip()).key
        if not url.strip():
            raise UserError(f"--docker-host {value!r}: expected GPU=URL, e.g. t4=ssh://me@t4-vm")
        if gpu in hosts:
            raise UserError(f"--docker-host names {gpu if gpu != ANY_GPU else 'a default host'} twice")
        hosts[gpu] = url.strip()
    return hosts


class DispatchTarget(Target):
    """One thread per host, one cell at a time per host."""

    def __init__(self, name: str, options: DockerOptions) -> None:
        self.name = name
        self.executor = "docker" if name == "docker" else "process"
        self.options = options
        if name == "local" and options.hosts:
            raise UserError("--docker-host needs --target docker (target local runs cells in this machine's Python)")

    def drop_reason(self, cell: Any) -> str | None:
        """Target local: a GPU type this machine does not have (a docker engine's cards are listed at launch)."""
        gpu = catalog.get_gpu(cell.gpu)
        if self.name != "local" or gpu.is_cpu:
            return None
        present = [(g, catalog.match_gpu(g.name, g.memory_bytes)) for g in self.local_gpus]
        if any(kind is not None and kind.key == gpu.key for _, kind in present):
            return None
        have = ", ".join(f"{g.name} (--gpus {kind.key if kind else '?'})" for g, kind in present)
        return f"no {gpu.name} on this machine: " + (f"it has {have}" if have else "it shows no NVIDIA GPU")

    @functools.cached_property
    def local_gpus(self) -> list[Any]:
        """This machine's GPUs as NVML lists them (none without a driver), read once per matrix."""
        from runner.contract.nvml import list_gpus

        return list_gpus()

    def check(self, request: Any, cells: list[Any], *, launching: bool) -> None:
        for cell in cells:  # a GPU without a --docker-host
            self.host_for(cell.entry.gpu)
        if launching and self.name == "docker":
            self.check_engines(request, cells)

    def check_engines(self, request: Any, cells: list[Any]) -> None:
        """Every engine the matrix will use answers, its host has the cells' GPU types and a driver their
        images run on, and it holds each cell's image or can pull it from ``--registry``.

        Otherwise every cell of that engine would fail the same way, one after another, into a matrix
        folder of errors; one line before the folder is written says it once, with the fix."""
        from runner.executors.docker import DockerExecutor

        for host, group in self.groups(cells).items():
            executor = DockerExecutor(host, registry=request.registry, tag=request.tag)
            executor.check_ready(
                (catalog.get_image(c.entry.image), c.entry.scenario, catalog.get_gpu(c.entry.gpu)) for c in group
            )

    def host_for(self, gpu: str) -> str | None:
        """The engine for a GPU type; None means the local one (DOCKER_HOST or the default socket)."""
        hosts = self.options.hosts
        if not hosts:
            return None
        if gpu in hosts:
            return hosts[gpu]
        if ANY_GPU in hosts:
            return hosts[ANY_GPU]
        raise UserError(
            f"no --docker-host for GPU {gpu}: add --docker-host {gpu}=ssh://user@host "
            "(or a bare --docker-host URL for every GPU without one)"
        )

    def where(self, gpu: str) -> str:
        if self.name == "local":
            return "local"
        return f"docker {self.host_for(gpu) or 'local engine'}"

    def render(self, matrix: Any) -> None:
        for cell in matrix.cells:
            matrix.store.update(cell.run_id, where=self.where(cell.entry.gpu))

    def groups(self, cells: list[Any]) -> dict[str | None, list[Any]]:
        """Cells by host, in matrix order."""
        out: dict[str | None, list[Any]] = {}
        for cell in cells:
            out.setdefault(self.host_for(cell.entry.gpu), []).append(cell)
        return out

    def launch(self, matrix: Any, on_line: Callable[[str], None]) -> None:
        stop = threading.Event()
        groups = self.groups(matrix.cells)
        finished = [threading.Event() for _ in groups]
        threads = [
            threading.Thread(
                target=self._run_host,
                args=(matrix, host, cells, on_line, stop, done),
                name=f"sumbench-{host or 'local'}",
                daemon=True,
            )
            for (host, cells), done in zip(groups.items(), finished, strict=True)
        ]
        for thread in threads:
            thread.start()
        try:
            for done in finished:
                while not done.wait(0.5):
                    pass
        except KeyboardInterrupt:
            # The workers got the same Ctrl-C and are writing partial results; start nothing new. The
            # threads' own events say when they end: a join cut by Ctrl-C can leave a live thread
            # looking finished (CPython), and the matrix would be closed while its cells still write.
            stop.set()
            on_line("interrupted: letting the running cells write their results, starting no more")
            for done in finished:
                done.wait()
            raise

    def _run_host(
        self,
        matrix: Any,
        host: str | None,
        cells: list[Any],
        on_line: Callable[[str], None],
        stop: threading.Event,
        done: threading.Event,
    ) -> None:
        try:
            for cell in cells:
                if stop.is_set():
                    return
                self.run_cell(matrix, cell, host, on_line)
        finally:
            done.set()

    def run_cell(self, matrix: Any, cell: Any, host: str | None, on_line: Callable[[str], None]) -> None:
        store, run_id = matrix.store, cell.run_id
        store.update(run_id, status="launched", where=self.where(cell.entry.gpu))
        on_line(f"[{run_id}] started ({self.where(cell.entry.gpu)})")
        options = self.executor_options(matrix, host)
        if options:  # an image pull's progress, as the cell's own lines
            options["progress"] = lambda line: on_line(f"[{run_id}] {line}")
        request = dataclasses.replace(cell.request, executor_options=options)
        try:
            _, result = launching.launch(request, lambda line: self._relay(run_id, line, on_line))
        except UserError as exc:
            store.update(run_id, status="error", reason=str(exc))
            on_line(f"[{run_id}] error: {exc}")
        except Exception as exc:  # one cell's surprise must not stop the other cells
            store.update(run_id, status="error", reason=f"{type(exc).__name__}: {exc}")
            on_line(f"[{run_id}] error: {type(exc).__name__}: {exc}")
        else:
            store.update(run_id, status="done", result_status=result.status, reason=None)
            on_line(
                f"[{run_id}] {result.status}: {result.metrics.documents} documents"
                + (f", {result.error.error_class}" if result.error else "")
            )

    def executor_options(self, matrix: Any, host: str | None) -> dict[str, Any]:
        """The Docker executor's engine and the matrix's image reference (registry and tag)."""
        if self.executor != "docker":
            return {}
        return {"docker_host": host, "registry": matrix.request.registry, "tag": matrix.request.tag}

    def _relay(self, run_id: str, line: str, on_line: Callable[[str], None]) -> None:
        """Worker output, prefixed with its cell; only what a person watching a matrix needs."""
        event = events.parse(line)
        if event is None:
            if self.options.verbose or " ERROR " in line or line.startswith("note:"):
                on_line(f"[{run_id}] {line}")
        elif event.get("event") == "start":
            on_line(f"[{run_id}] {event.get('total')} documents to summarize")
