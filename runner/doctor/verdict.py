"""Per catalog image: can it run here now, with which executor, on which cards, and if not, what is missing.

Each executor is judged on what it needs, in the order a person would fix it: a GPU image needs a GPU
before anything else (building an image does not help a machine without one), then the software that
reaches it (this Python's CUDA torch, or the engine's NVIDIA runtime and the built image). Whether a
card can run the image at all is ``runner.compat.check``, the rule ``launch`` applies, tried for every
scenario the image has: an image runs on a card if one of its scenarios does.

"The one thing missing" is the first blocker of the executor an image is meant for: the process
executor for the cpu image (the embedded default), Docker for the GPU images (pinned CUDA stacks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from runner import compat
from runner.contract import catalog
from runner.contract.catalog import Gpu, Image
from runner.doctor.engine import EngineSurvey, LocalImage
from runner.doctor.gpus import Card, GpuSurvey
from runner.doctor.stack import WORKER_STACK, PythonStack, install_hint, scenario_needs
from runner.executors.docker.engine import missing_image_message
from runner.executors.docker.gpus import TOOLKIT_FIX
from runner.scenarios import Scenario, get_scenario

CATALOG_FIX = "add it to runner/contract/catalog/gpus.toml (nvml_names) to run on it"


@dataclass(frozen=True)
class Place:
    """One executor's answer for one image."""

    executor: str
    runs: bool
    gpus: list[str]
    """Where it runs: ``cpu``, or the catalog names (``--gpu``) of the cards it runs on."""
    scenarios: list[str]
    missing: str | None


@dataclass(frozen=True)
class ImageVerdict:
    image: str
    device: str
    runs: bool
    where: list[str]
    """The executors it runs with: process, docker."""
    gpus: list[str]
    missing: str | None
    """The one thing to fix, when it runs nowhere."""
    process: Place
    docker: Place


def judge(image: Image, gpus: GpuSurvey, stack: PythonStack, engine: EngineSurvey) -> ImageVerdict:
    local = next((i for i in engine.images if i.image == image.key), None)  # None: no engine to ask
    process = judge_process(image, gpus, stack)
    docker = judge_docker(image, gpus, engine, local)
    places = [p for p in (process, docker) if p.runs]
    meant = process if image.device == "cpu" else docker
    return ImageVerdict(
        image=image.key,
        device=image.device,
        runs=bool(places),
        where=[p.executor for p in places],
        gpus=sorted({g for p in places for g in p.gpus}),
        missing=None if places else meant.missing,
        process=process,
        docker=docker,
    )


def judge_process(image: Image, gpus: GpuSurvey, stack: PythonStack) -> Place:
    """The process executor: this Python's packages, on this machine's cards."""
    if image.device == "cpu":
        targets = [catalog.get_gpu("cpu")]
    else:
        if blocker := _card_blocker(gpus.cards, gpus.problem, "this machine"):
            return _blocked("process", blocker)
        targets = _catalog_gpus(gpus.cards)
    if missing := stack.missing(list(WORKER_STACK)):
        return _blocked("process", f"this Python lacks {', '.join(missing)}: {install_hint(missing)}")
    if image.device != "cpu" and stack.torch.kind != "cuda":
        build = f"torch {stack.packages['torch'].version or '?'} is a {stack.torch.kind} build"
        return _blocked("process", f"this Python's {build}: install a CUDA build, or use --executor docker")

    def packages(scenario: Scenario) -> list[str]:
        missing = stack.missing(scenario_needs(scenario))
        hint = install_hint(missing, cpu=image.device == "cpu")
        return [f"scenario {scenario.name} needs {', '.join(missing)}: {hint}"] if missing else []

    return _on_cards("process", image, targets, packages)


def judge_docker(image: Image, gpus: GpuSurvey, engine: EngineSurvey, local: LocalImage | None) -> Place:
    """The Docker executor: the engine, its GPUs and runtime, and the image built there."""
    gpu_image = image.device != "cpu"
    if gpu_image and not engine.remote and (blocker := _card_blocker(gpus.cards, gpus.problem, "this machine")):
        return _blocked("docker", blocker)
    if not engine.reachable:
        return _blocked("docker", f"no Docker engine: {engine.engine} does not answer")
    if gpu_image:
        if blocker := _card_blocker(engine.cards or [], engine.gpu_problem, engine.engine):
            return _blocked("docker", blocker)
        if engine.gpu_runtime == "none":
            return _blocked("docker", f"{engine.engine} registers no NVIDIA runtime: {TOOLKIT_FIX}")
    if local is None or not local.present:
        ref = image.reference(engine.registry, engine.tag)
        return _blocked("docker", missing_image_message(ref, image, engine.engine, engine.registry, engine.tag))
    targets = _catalog_gpus(engine.cards or []) if gpu_image else [catalog.get_gpu("cpu")]
    return _on_cards("docker", image, targets, lambda scenario: [])


def _card_blocker(cards: list[Card], problem: str | None, where: str) -> str | None:
    if not cards:
        return problem or f"no NVIDIA GPU on {where}"
    if not any(c.catalog for c in cards):
        names = ", ".join(sorted({c.name for c in cards}))
        return f"the GPUs of {where} ({names}) are not in the catalog: {CATALOG_FIX}"
    return None


def _catalog_gpus(cards: list[Card]) -> list[Gpu]:
    return [catalog.get_gpu(key) for key in dict.fromkeys(c.catalog for c in cards if c.catalog)]


def _on_cards(executor: str, image: Image, targets: list[Gpu], more: Callable[[Scenario], list[str]]) -> Place:
    """Where ``image`` runs among ``targets``: the cards on which one of its scenarios passes the rules
    (and ``more``, what else a scenario needs there); else the default scenario's first reason."""
    gpus: list[str] = []
    scenarios: list[str] = []
    reasons: list[str] = []
    for gpu in targets:
        for name in image.scenarios:
            scenario = get_scenario(name)
            why = compat.check(image, scenario, gpu) + more(scenario)
            if not why:
                gpus += [gpu.key] if gpu.key not in gpus else []
                scenarios += [name] if name not in scenarios else []
            elif name == image.default_scenario:
                reasons += why
    if gpus:
        return Place(executor, True, gpus, scenarios, None)
    return _blocked(executor, reasons[0] if reasons else f"no card here runs image {image.key}")


def _blocked(executor: str, reason: str) -> Place:
    return Place(executor, False, [], [], reason)
