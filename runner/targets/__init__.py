"""Where ``runner matrix`` sends its cells: this machine, Docker hosts, SkyPilot or Kubernetes.

A target never schedules anything itself. ``local`` and ``docker`` hand each cell to the executors
``runner launch`` uses; ``sky`` and ``k8s`` render one engine-native object per cell (a SkyPilot task,
a Kubernetes Job) and let that engine place, retry and tear down. Every target ends the same way: the
cell's run folder under ``RESULTS/<matrix-id>/<run-id>/`` holds a ``result.json``.

Shared here: the paths a remote container sees, the image reference a remote engine pulls, the
worker-output collector (remote engines hand back logs, and the worker prints its whole result as a
marked line in them), and the YAML they render (PyYAML), so rendering needs neither SkyPilot nor the
Kubernetes client installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from runner.contract import catalog, events, rundir
from runner.contract.errors import UserError, unknown_name
from runner.contract.schema import RunConfig, RunResult

TARGETS = ("local", "docker", "sky", "k8s")

# Inside a remote container: read-only inputs and the writable results root.
CONTAINER_ROOT = "/sumbench"
CONTAINER_CONFIG = f"{CONTAINER_ROOT}/config/config.json"
CONTAINER_DATA_DIR = f"{CONTAINER_ROOT}/data"
CONTAINER_MODEL_DIR = f"{CONTAINER_ROOT}/model"
CONTAINER_RESULTS = f"{CONTAINER_ROOT}/results"
CONTAINER_CACHE = f"{CONTAINER_ROOT}/cache"


class Target:
    """What every target does. ``runner.matrix`` plans the cells; a target renders, launches, collects."""

    name = ""
    executor = "process"  # the executor a cell's LaunchRequest names (only local and docker run one)
    # Whether what a worker needs for a gated model is an option of the command (--hf-token,
    # --hf-token-secret), which a dry run can check, rather than the environment of the real run.
    token_in_command = False

    def drop_reason(self, cell: Any) -> str | None:
        """Why this target cannot run a cell the GPU rules allow (e.g. no node label for the GPU)."""
        return None

    def check(self, request: Any, cells: list[Any], *, launching: bool) -> None:
        """Refuse what ``render`` or, when ``launching`` (not a dry run), ``launch`` would refuse; runs before
        the matrix folder is created, so a refused matrix leaves nothing behind."""

    def warnings(self, request: Any, cells: list[Any], *, launching: bool) -> list[str]:
        """Choices that run but that the user would likely not make knowingly; one line each, shown before
        anything launches (and in a dry run)."""
        return []

    def catalog_price_problem(self, gpu: catalog.Gpu) -> str | None:
        """Why the catalog's on-demand price would be wrong for this target's cells of ``gpu``, when it is
        known to be (a spot instance, another cloud); the cell then records no price unless one is given."""
        return None

    def submit_steps(self, manifest: Any, matrix_dir: Path, command: str) -> list[str]:
        """The closing lines of a dry run: how to run, for real, the matrix it planned."""
        return [f"dry run: nothing was launched. To run it: {command}"]

    def hf_token_missing(self) -> str | None:
        """For a gated hub model: what to do so each worker gets a Hugging Face token; None when it will.

        Workers started here (local, docker) get this machine's HF_TOKEN.
        """
        from runner.model_names import local_hf_token

        return None if local_hf_token() else "set HF_TOKEN"

    def render(self, matrix: Any) -> None:
        """Write what the engine needs into the matrix folder; ``--dry-run`` stops after this."""

    def launch(self, matrix: Any, on_line: Callable[[str], None]) -> None:
        """Run the planned cells and collect their results, updating matrix.json as they go."""
        raise NotImplementedError

    def collect(self, matrix_dir: Path, store: Any, on_line: Callable[[str], None]) -> None:
        """Collect results of cells launched earlier without waiting."""
        raise UserError(f"target {self.name} collects each cell as it runs; there is nothing to collect later")


def create_target(name: str, options: Any = None) -> Target:
    """The target called ``name``; ``options`` is its options dataclass, or a dict read from matrix.json."""
    if name in ("local", "docker"):
        from runner.targets.docker import DispatchTarget, DockerOptions

        return DispatchTarget(name, _options(DockerOptions, options))
    if name == "sky":
        from runner.targets.sky import SkyOptions, SkyTarget

        return SkyTarget(_options(SkyOptions, options))
    if name == "k8s":
        from runner.targets.k8s import K8sOptions, K8sTarget

        return K8sTarget(_options(K8sOptions, options))
    raise unknown_name("target", name, TARGETS)


def _options(cls: type, options: Any) -> Any:
    if options is None:
        return cls()
    if isinstance(options, dict):
        return cls(**options)
    if not isinstance(options, cls):
        raise TypeError(f"expected {cls.__name__}, got {type(options).__name__}")
    return options


def image_reference(image_key: str, registry: str, tag: str) -> str:
    """The reference a remote engine pulls: what ``REGISTRY=... TAG=... docker buildx bake --push`` pushed."""
    return catalog.get_image(image_key).reference(registry, tag)


def container_config(
    config: RunConfig, *, data_path: str, model_path: str | None, reference: str, executor: str
) -> RunConfig:
    """The config a remote worker reads: host paths swapped for the container's, the image recorded.

    The host resolved ``model`` and ``data`` to absolute local paths; a pod or a cloud VM sees them
    where the target mounts them instead. A hub id or a built-in architecture name stays as it is.
    """
    launch = config.launch.model_copy(update={"executor": executor, "image": reference})
    update: dict[str, Any] = {"data": data_path, "launch": launch}
    if model_path is not None:
        update["model"] = model_path
    return config.model_copy(update=update)


def local_model_dir(config: RunConfig) -> Path | None:
    """The local checkpoint folder a cell uses, or None for a hub id or a built-in architecture."""
    path = Path(config.model)
    return path if path.is_absolute() and path.is_dir() else None


def collect_output(
    run_dir: Path, chunks: Iterable[str | None], log_name: str, on_line: Callable[[str], None] | None = None
) -> RunResult | None:
    """Save a remote worker's output as ``run_dir/log_name`` and recover ``result.json`` from it.

    The worker prints its complete result as one ``::sumbench::`` line, so logs alone are enough to
    finish a run folder when the engine's disk is gone (a torn-down cluster, a pod on an emptyDir).
    The last result line wins (a retried pod logs one per attempt) and replaces any result.json of an
    earlier invocation of the same cell.
    """
    result: RunResult | None = None
    with (run_dir / log_name).open("w", encoding="utf-8") as log:
        for line in _lines(chunks):
            log.write(line + "\n")
            if on_line is not None:
                on_line(line)
            # Engines may prefix each line (SkyPilot: "(task, pid=N) "); the mark starts the event.
            mark = line.find(events.MARK)
            event = events.parse(line[mark:]) if mark >= 0 else None
            if event and event.get("event") == "result" and isinstance(event.get("result"), dict):
                try:
                    result = RunResult.model_validate(event["result"])
                except ValidationError:
                    continue
    if result is not None:
        rundir.write_result(run_dir, result)
    return result


def _lines(chunks: Iterable[str | None]) -> Iterator[str]:
    """Whole lines from a stream of text chunks that may split or join lines (engines stream logs in pieces)."""
    pending = ""
    for chunk in chunks:
        if chunk is None:
            continue
        pending += chunk
        *complete, pending = pending.split("\n")
        yield from (line.rstrip("\r") for line in complete)
    if pending:
        yield pending.rstrip("\r")


def require(module: str, extra: str, why: str) -> Any:
    """Import an optional engine client, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        if extra == "sky":  # SkyPilot's pins conflict with the worker extra's: never this environment
            raise UserError(
                f"{why} needs SkyPilot, which cannot share this environment (its click pin conflicts with the "
                "worker's): give it its own venv, `make sky-env`, and run .cache/venv-sky/bin/runner "
                "(see docs/scale-out.md)"
            ) from None
        raise UserError(
            f"{why} needs the {module!r} package: pip install 'sumbench[{extra}]' (see docs/scale-out.md)"
        ) from None


# --- YAML ------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, with multi-line strings (a task's ``run`` script) as literal blocks a person can
    read; PyYAML itself falls back to a quoted scalar where a block would not keep the text exactly."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text.rstrip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(data: dict[str, Any]) -> str:
    """One YAML document for ``data`` (plain data: dicts, lists, strings, numbers, booleans, None), keys in
    order. Non-ASCII is escaped: written raw, PyYAML lets a few characters (NEL, U+2028) read back as line breaks."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1 << 16)


def to_yaml_documents(docs: Iterable[dict[str, Any]]) -> str:
    """Several documents separated by ``---``, as ``kubectl apply -f`` reads them."""
    return "---\n".join(to_yaml(doc) for doc in docs)
