"""The Docker engine a launch would use: reachable or why not, its GPU runtime, and its sumbench images.

The engine is chosen and reached exactly as ``runner launch --executor docker`` does (``--docker-host``,
else DOCKER_HOST, else the local socket; SUMBENCH_REGISTRY and SUMBENCH_TAG for the image references),
by building the same ``DockerExecutor`` and calling the same ``connect``, with a shorter timeout: an
engine that does not answer in seconds is reported, not waited for.

An image is found under the reference a launch would run; images labelled ``io.sumbench.image`` under
another reference (another tag, another registry) are listed beside it, since one of them is often what
the user meant to run (``SUMBENCH_TAG=dev``).

GPUs. A local engine's containers get this machine's cards, which NVML already listed. A remote engine's
are listed as a launch lists them, by ``nvidia-smi`` in a short container of an image it holds; that is
skipped when the engine registers no GPU runtime, where it could only fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.contract import catalog
from runner.contract.errors import UserError
from runner.doctor.gpus import Card, GpuSurvey, describe
from runner.doctor.revision import Freshness, freshness
from runner.executors.docker.executor import REVISION_LABEL
from runner.executors.docker.gpus import IMAGE_LABEL, NVIDIA_RUNTIME
from runner.paths import REPO_ROOT

DOCKER_TIMEOUT_S = 10.0
LABEL_PREFIX = "io.sumbench."
OCI_LABELS = (REVISION_LABEL, "org.opencontainers.image.version")


@dataclass(frozen=True)
class LocalImage:
    image: str
    """The catalog key (the bake target)."""
    reference: str
    """What ``runner launch --image KEY --executor docker`` runs."""
    present: bool
    id: str | None = None
    created: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    """Its ``io.sumbench.*`` labels and the OCI revision and version labels."""
    freshness: Freshness | None = None
    other_references: list[str] = field(default_factory=list)
    """Other local images labelled as this catalog image."""


@dataclass(frozen=True)
class EngineSurvey:
    engine: str
    url: str | None
    remote: bool
    reachable: bool
    problem: str | None = None
    """Why the engine cannot be used, with the fix, in one line."""
    version: str | None = None
    api_version: str | None = None
    operating_system: str | None = None
    runtimes: list[str] = field(default_factory=list)
    gpu_runtime: str = "none"
    """nvidia (a registered runtime) | cdi (CDI spec folders; NVIDIA's spec if the toolkit wrote one) | none"""
    registry: str = ""
    tag: str = ""
    images: list[LocalImage] = field(default_factory=list)
    cards: list[Card] | None = None
    """The GPUs its containers can be given; None when they cannot be known (no engine, no probe)."""
    gpu_problem: str | None = None


def survey_engine(docker_host: str | None, local: GpuSurvey, head: str | None) -> EngineSurvey:
    from runner.executors.docker import DockerExecutor
    from runner.executors.docker.engine import connect, first_line, is_remote

    executor = DockerExecutor(docker_host)
    where = {"engine": executor.engine, "url": executor.url, "remote": is_remote(executor.url)}
    settings = {"registry": executor.registry, "tag": executor.tag}
    try:
        client = connect(executor.url, timeout=DOCKER_TIMEOUT_S)
    except UserError as exc:
        return EngineSurvey(**where, reachable=False, problem=f"{exc}{start_hint(executor.url)}", **settings)
    try:
        info = client.info()
        images = _images(client.images.list(), executor.registry, executor.tag, head)
        runtimes = sorted(info.get("Runtimes") or {})
        gpu_runtime = _gpu_runtime(runtimes, info.get("CDISpecDirs") or [])
        cards, gpu_problem = _engine_cards(executor.url, executor.engine, where["remote"], gpu_runtime, images, local)
    except Exception as exc:  # an engine that answered ping but not this: report, do not crash
        problem = f"{executor.engine} answered, then failed ({first_line(exc)})"
        return EngineSurvey(**where, reachable=False, problem=problem, **settings)
    finally:
        client.close()
    return EngineSurvey(
        **where,
        reachable=True,
        version=info.get("ServerVersion"),
        api_version=client.api.api_version,
        operating_system=info.get("OperatingSystem"),
        runtimes=runtimes,
        gpu_runtime=gpu_runtime,
        **settings,
        images=images,
        cards=cards,
        gpu_problem=gpu_problem,
    )


def start_hint(url: str | None) -> str:
    """How to start or check the engine at ``url``, added to ``connect``'s generic fix."""
    if url and url.startswith("ssh://"):
        return f" (check that `ssh {url.removeprefix('ssh://')} docker info` answers)"
    if url and not url.startswith("unix://"):
        return ""
    own = REPO_ROOT / "scripts" / "docker-engine.sh"
    hint = " (on Linux: `sudo systemctl start docker`"
    if own.exists():
        hint += f'; or sumbench\'s own engine, as `make test` starts it: `eval "$(bash {own} start)"`'
    return hint + ")"


def _gpu_runtime(runtimes: list[str], cdi_dirs: list[str]) -> str:
    if NVIDIA_RUNTIME in runtimes:
        return "nvidia"
    return "cdi" if cdi_dirs else "none"


def _images(found: list[Any], registry: str, tag: str, head: str | None) -> list[LocalImage]:
    """Each catalog image under the reference a launch would run, with its labels and freshness."""
    by_reference = {ref: image for image in found for ref in image.tags}
    out = []
    for entry in catalog.images().values():
        ref = entry.reference(registry, tag)
        others = sorted(
            t for image in found if (image.labels or {}).get(IMAGE_LABEL) == entry.key for t in image.tags if t != ref
        )
        image = by_reference.get(ref)
        if image is None:
            out.append(LocalImage(entry.key, ref, present=False, other_references=others))
            continue
        labels = {k: v for k, v in (image.labels or {}).items() if k.startswith(LABEL_PREFIX) or k in OCI_LABELS}
        revision = labels.get(REVISION_LABEL)
        out.append(
            LocalImage(
                entry.key,
                ref,
                present=True,
                id=image.short_id,
                created=image.attrs.get("Created"),
                labels=labels,
                freshness=freshness(revision, head, entry.bake_target),
                other_references=others,
            )
        )
    return out


def _engine_cards(
    url: str | None, engine: str, remote: bool, gpu_runtime: str, images: list[LocalImage], local: GpuSurvey
) -> tuple[list[Card] | None, str | None]:
    """The GPUs the engine's containers can get, or why they are not known. The probe gets a client of its
    own, with the SDK's usual timeout: starting a container and nvidia-smi on many cards take longer than
    the doctor waits for an answer to a plain API call."""
    if not remote:
        return local.cards, local.problem
    if gpu_runtime == "none":
        return None, f"{engine} registers no NVIDIA runtime, so it cannot give containers GPUs"
    present = [i for i in images if i.present]
    if not present:
        return None, f"its GPUs are listed with nvidia-smi in a sumbench image, and {engine} has none"
    gpu_first = sorted(present, key=lambda i: catalog.images()[i.image].device == "cpu")
    from runner.executors.docker.engine import connect
    from runner.executors.docker.gpus import probe_gpus

    try:
        client = connect(url)
        try:
            return describe(probe_gpus(client, gpu_first[0].reference, engine)), None
        finally:
            client.close()
    except UserError as exc:
        return None, str(exc)
