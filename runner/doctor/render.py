"""The diagnosis as titled tables, for the terminal (rich) and ``--markdown`` alike.

Tables use the report's own ``Column``/``Table`` model, as ``runner catalog`` does, so both outputs show
the same cells. Every state is worded with what to do about it where something is missing: the output
is read on a machine being set up, and pasted into issues.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.console import fmt_bytes
from runner.doctor.engine import EngineSurvey, LocalImage
from runner.doctor.gpus import Card
from runner.doctor.hf import HubSurvey
from runner.doctor.stack import OPTIONAL, WORKER_STACK, PythonStack, install_hint
from runner.doctor.survey import Diagnosis
from runner.doctor.verdict import ImageVerdict
from runner.report.document import Column, Table


@dataclass(frozen=True)
class Part:
    title: str
    table: Table
    whole: frozenset[str] = frozenset()
    """Keys of the columns that must not wrap (names and references a person copies)."""


def field(header: str, key: str) -> Column:
    return Column(key, header, lambda row: "-" if row.get(key) in (None, "") else str(row[key]))


def parts(d: Diagnosis) -> list[Part]:
    checks = Table(
        [field("area", "area"), field("check", "check"), field("state", "state")],
        [
            *_sumbench_rows(d),
            *_gpu_rows(d),
            *_process_rows(d.process),
            *_docker_rows(d.docker),
            *_hub_rows(d.hub),
        ],
    )
    out = [Part("sumbench doctor", checks, frozenset({"area", "check"}))]
    if d.gpus.cards:
        out.append(Part("GPUs on this machine (NVML)", _cards(d.gpus.cards), frozenset({"catalog"})))
    if d.docker.remote and d.docker.cards:
        out.append(Part(f"GPUs of {d.docker.engine} (nvidia-smi)", _cards(d.docker.cards), frozenset({"catalog"})))
    if d.docker.reachable:
        out.append(Part(f"sumbench images on {d.docker.engine}", _images(d.docker.images), frozenset({"reference"})))
    title = "What can run here"
    if d.docker.remote:
        title = f"What can run (process: this machine; docker: {d.docker.engine})"
    out.append(Part(title, _verdicts(d.images), frozenset({"image"})))
    return out


def _sumbench_rows(d: Diagnosis) -> list[dict[str, Any]]:
    where = f"checkout {d.revision[:12]}" if d.revision else "not a git checkout (images' revisions not compared)"
    return [{"area": "sumbench", "check": "version", "state": f"{d.sumbench}, {where}"}]


def _gpu_rows(d: Diagnosis) -> list[dict[str, Any]]:
    cards = d.gpus.cards
    if not cards:
        return [{"area": "GPU", "check": "NVIDIA driver", "state": d.gpus.problem}]
    drivers = ", ".join(sorted({f"{c.driver} (CUDA {c.cuda})" for c in cards}))
    unknown = [c.name for c in cards if c.catalog is None]
    named = f"{len(cards)} card(s)" + (f"; not in the catalog: {', '.join(unknown)}" if unknown else "")
    return [
        {"area": "GPU", "check": "NVIDIA driver", "state": drivers},
        {"area": "GPU", "check": "cards", "state": named},
    ]


def _process_rows(stack: PythonStack) -> list[dict[str, Any]]:
    worker = [stack.packages[name] for name in WORKER_STACK]
    missing = [p.name for p in worker if not p.importable]
    present = ", ".join(f"{p.name} {p.version or '?'}" for p in worker if p.importable)
    state = (
        present
        if not missing
        else f"missing {', '.join(missing)}: {install_hint(missing)}" + (f" (present: {present})" if present else "")
    )
    torch = {
        "cuda": f"CUDA {stack.torch.cuda}",
        "cpu": "CPU only: GPU images need --executor docker here",
        "rocm": "ROCm: sumbench's GPU images are CUDA builds",
        "unknown": "unknown (no version.py, no +cuXXX label)",
        "missing": "not installed",
    }[stack.torch.kind]
    optional = ", ".join(
        f"{name} {stack.packages[name].version or '?'}" if stack.packages[name].importable else f"{name}: not installed"
        for name in OPTIONAL
    )
    return [
        {"area": "process", "check": "python", "state": f"{stack.python} ({stack.executable})"},
        {"area": "process", "check": "worker stack", "state": state},
        {"area": "process", "check": "torch build", "state": torch},
        {"area": "process", "check": "optional", "state": optional},
    ]


def _docker_rows(engine: EngineSurvey) -> list[dict[str, Any]]:
    if not engine.reachable:
        return [{"area": "docker", "check": "engine", "state": engine.problem}]
    facts = [f"Docker {engine.version}", f"API {engine.api_version}", engine.operating_system]
    runtime = {
        "nvidia": "nvidia runtime registered",
        "cdi": "CDI enabled (GPUs if the NVIDIA toolkit wrote a spec); no nvidia runtime registered",
        "none": "none: runtimes " + ", ".join(engine.runtimes) + "; GPU images need the NVIDIA Container Toolkit",
    }[engine.gpu_runtime]
    rows = [
        {"area": "docker", "check": "engine", "state": f"{engine.engine}: " + ", ".join(filter(None, facts))},
        {"area": "docker", "check": "GPU runtime", "state": runtime},
    ]
    if engine.remote:
        state = f"{len(engine.cards)} card(s)" if engine.cards else engine.gpu_problem or "none"
        rows.append({"area": "docker", "check": "engine's GPUs", "state": state})
    return rows


def _hub_rows(hub: HubSurvey) -> list[dict[str, Any]]:
    if hub.token_variable:
        token = f"set ({hub.token_variable})"
    else:
        token = "not set: gated models (meta-llama/...) need HF_TOKEN"
    cache = hub.cache + ("" if hub.cache_exists else " (not created yet)")
    if hub.reachable:
        answer = f"reachable ({hub.endpoint})"
    else:
        answer = ("unreachable: " if hub.reachable is False else "not asked: ") + str(hub.problem)
    return [
        {"area": "hub", "check": "token", "state": token},
        {"area": "hub", "check": "cache", "state": cache},
        {"area": "hub", "check": "hub", "state": answer},
    ]


def _cards(cards: list[Card]) -> Table:
    rows = [
        {
            "index": c.index,
            "name": c.name,
            "catalog": c.catalog or "not in the catalog",
            "memory": fmt_bytes(c.memory_bytes),
            "capability": c.compute_capability,
            "driver": c.driver,
            "cuda": c.cuda,
        }
        for c in cards
    ]
    columns = [
        field("#", "index"),
        field("name", "name"),
        field("--gpu", "catalog"),
        field("memory", "memory"),
        field("capability", "capability"),
        field("driver", "driver"),
        field("CUDA", "cuda"),
    ]
    return Table(columns, rows)


def _images(images: list[LocalImage]) -> Table:
    rows = []
    for i in images:
        rows.append(
            {
                "image": i.image,
                "reference": i.reference,
                "present": f"yes ({(i.id or '').removeprefix('sha256:')})" if i.present else "no",
                "revision": i.freshness.detail if i.freshness else None,
                "torch": i.labels.get("io.sumbench.torch"),
                "cuda": i.labels.get("io.sumbench.cuda"),
                "others": ", ".join(i.other_references) or None,
            }
        )
    columns = [
        field("image", "image"),
        field("reference", "reference"),
        field("here", "present"),
        field("built from", "revision"),
        field("torch", "torch"),
        field("CUDA", "cuda"),
        field("other tags", "others"),
    ]
    return Table(columns, rows)


def _verdicts(verdicts: list[ImageVerdict]) -> Table:
    rows = []
    for v in verdicts:
        if v.runs:
            other = v.docker if v.process.runs else v.process
            note = None if other.runs else f"{other.executor}: {other.missing}"
            where = f"{', '.join(v.where)} on {', '.join(v.gpus)}"
        else:
            note, where = v.missing, None
        rows.append({"image": v.image, "runs": "yes" if v.runs else "no", "where": where, "missing": note})
    columns = [
        field("image", "image"),
        field("runs here", "runs"),
        field("where", "where"),
        field("missing", "missing"),
    ]
    return Table(columns, rows)
