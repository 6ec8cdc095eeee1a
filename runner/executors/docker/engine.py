"""Which Docker engine a run goes to, how to reach it, and how it gets the images it runs.

A local engine shares this machine's disk and GPUs, a remote one (``ssh://``, tcp to another host)
does not; the executor asks ``is_remote`` to choose between mounts and copies, local NVML and
``nvidia-smi`` on the engine. Reaching an engine over ssh has quirks of docker-py's that live here.

Images. An engine runs the image it holds under the cell's reference. One that lacks it pulls it when the
reference names a registry (``--registry``/SUMBENCH_REGISTRY, or a registry host in the reference): that
is how a cloud VM gets images pushed with ``docker buildx bake --push``. Without a registry there is
nothing to pull from (``sumbench/<image>`` on Docker Hub is not ours), so the message says what to build.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlparse

from runner import __version__
from runner.contract.catalog import Image
from runner.contract.errors import UserError

LOOPBACK = ("localhost", "127.0.0.1", "::1")


def is_remote(url: str | None) -> bool:
    """Whether the engine at ``url`` sees another machine's disk and GPUs than this one."""
    if not url or url.startswith(("unix://", "npipe://")):
        return False
    return urlparse(url).hostname not in LOOPBACK


def engine_label(url: str | None) -> str:
    return url or "the local Docker engine"


def ssh_config_port(ssh_g_output: str) -> int | None:
    """The ``port`` line of ``ssh -G HOST`` (the options ssh would use for HOST, config applied)."""
    for line in ssh_g_output.splitlines():
        key, _, value = line.partition(" ")
        if key == "port" and value.strip().isdigit():
            return int(value)
    return None


def with_ssh_port(url: str) -> str:
    """``url`` with the port the user's ssh config gives its host, when the URL names none.

    docker-py runs ``ssh -p 22`` for a URL without a port, which overrides a ``Port`` line in
    ~/.ssh/config; the docker CLI does not. Asking ``ssh -G`` keeps the two in step.
    """
    parsed = urlparse(url)
    if parsed.port or not parsed.hostname:
        return url
    try:
        out = subprocess.run(["ssh", "-G", parsed.netloc], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return url
    port = ssh_config_port(out.stdout) if out.returncode == 0 else None
    return url if port in (None, 22) else parsed._replace(netloc=f"{parsed.netloc}:{port}").geturl()


def connect(url: str | None, timeout: float | None = None):
    """A client for the engine at ``url`` (default: DOCKER_HOST, else the local socket).

    ``use_ssh_client`` runs the ``ssh`` command for ssh:// URLs, so the user's ssh config, keys and
    agent apply as they do for the docker CLI. ``timeout`` (seconds, per API call) defaults to the SDK's
    minute, which a run's long calls need; ``runner doctor`` asks for less, to say "unreachable" quickly.
    """
    import docker

    if url and url.startswith("ssh://") and not _has_module("paramiko"):
        # docker-py's ssh transport imports paramiko even when it runs the ssh command instead.
        raise UserError(f"{url} needs the Docker SDK's ssh support: pip install 'sumbench[ssh]'")
    limit = {} if timeout is None else {"timeout": timeout}
    try:
        if url and url.startswith("ssh://"):
            client = docker.DockerClient(base_url=with_ssh_port(url), use_ssh_client=True, **limit)
        else:  # from_env, so DOCKER_TLS_VERIFY and DOCKER_CERT_PATH apply to a tcp:// engine
            client = docker.from_env(environment={**os.environ, **({"DOCKER_HOST": url} if url else {})}, **limit)
        client.ping()
    except Exception as exc:  # DockerException, requests' errors, OSError: all mean "no engine there"
        if url and url.startswith("ssh://"):
            host = urlparse(url).hostname
            raise UserError(
                f"cannot reach {url} ({first_line(exc)}): check that `ssh {urlparse(url).netloc}` logs in without "
                f"a prompt and that Docker runs on {host} (`docker info` there)"
            ) from None
        raise UserError(
            f"cannot reach {engine_label(url)} ({first_line(exc)}): start Docker, or point DOCKER_HOST or "
            "--docker-host at a running engine"
        ) from None
    return client


PULL_PROGRESS_S = 10.0
"""Seconds between two progress lines of a pull: a 10 GB image takes minutes, and a silent launch looks hung."""


REVISION_SETTING = "REVISION=$(git rev-parse HEAD)"
"""Every bake command sumbench prints stamps the image with the checkout's commit: a worker in an image
built without it records no code revision."""


def bake_command(image: Image, registry: str, tag: str, push: bool = False, docker_host: str | None = None) -> str:
    """The bake command that makes the image of this reference (``--push``: and sends it to the registry;
    ``docker_host``: on that engine, for a remote one)."""
    settings = (f"DOCKER_HOST={docker_host} " if docker_host else "") + f"{REVISION_SETTING} "
    settings += (f"REGISTRY={registry} " if registry else "") + (f"TAG={tag} " if tag != __version__ else "")
    return f"{settings}docker buildx bake {'--push ' if push else ''}{image.bake_target}"


def missing_image_message(ref: str, image: Image, engine: str, registry: str, tag: str) -> str:
    """What to do about an image the engine lacks. A remote engine builds it there (bake on this checkout
    with DOCKER_HOST pointing at it), or pulls it from a registry it was pushed to."""
    remote = engine.startswith(("ssh://", "tcp://", "http://", "https://")) and is_remote(engine)
    hint = f"build it with `{bake_command(image, registry, tag, docker_host=engine if remote else None)}`"
    if registry:
        hint += f" or pull it with `docker pull {ref}`"
    elif remote:
        hint += f", or push it to a registry (`{bake_command(image, 'REGISTRY', tag, push=True)}`) and pass --registry"
    return f"image {ref} not found on {engine}: {hint}"


def names_registry(ref: str, registry: str = "") -> bool:
    """Whether an absent ``ref`` can be pulled: a registry was given, or the reference's first component is
    a registry host (Docker's rule: it has a '.' or a ':', or is ``localhost``)."""
    if registry:
        return True
    first, slash, _ = ref.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def pullable_problem(client, ref: str, image: Image, engine: str, registry: str, tag: str) -> str | None:
    """Why ``ref`` is neither on the engine nor pullable from its registry, in one line; None when it can
    run. Asks the registry through the engine (the engine's credentials and network, as a pull would)
    for the manifest only: nothing is downloaded before the matrix starts."""
    import docker

    try:
        client.images.get(ref)
        return None
    except docker.errors.ImageNotFound:
        pass
    if not names_registry(ref, registry):
        return missing_image_message(ref, image, engine, registry, tag)
    try:
        client.images.get_registry_data(ref)
    except Exception as exc:  # APIError from the engine, or the connection to it
        return pull_failed_message(ref, image, engine, registry, tag, first_line(exc))
    return None


def pull_failed_message(ref: str, image: Image, engine: str, registry: str, tag: str, reason: str) -> str:
    return (
        f"image {ref} is not on {engine} and cannot be pulled ({reason}): check the registry and tag, "
        f"`docker login` on the engine's host for a private registry, or push it with "
        f"`{bake_command(image, registry, tag, push=True)}`"
    )


def pull(client, ref: str, engine: str, progress: Callable[[str], None], *, image: Image, registry: str, tag: str):
    """Pull ``ref`` onto the engine, with a progress line now and then; returns the pulled image.

    The SDK's low-level pull streams the engine's progress events (``images.pull`` would wait in silence
    for the whole image); an event with an ``error`` is the pull failing part-way."""
    from docker.utils import parse_repository_tag

    repository, ref_tag = parse_repository_tag(ref)
    progress(f"pulling {ref} onto {engine}")
    layers: dict[str, tuple[int, int]] = {}
    shown = time.monotonic()
    try:
        for event in client.api.pull(repository, tag=ref_tag, stream=True, decode=True):
            if "error" in event:
                raise RuntimeError(str(event["error"]).strip())
            detail = event.get("progressDetail") or {}
            if event.get("status") == "Downloading" and detail.get("total"):
                layers[event.get("id", "")] = (int(detail.get("current") or 0), int(detail["total"]))
            if layers and time.monotonic() - shown >= PULL_PROGRESS_S:
                shown = time.monotonic()
                done, total = (sum(pair[i] for pair in layers.values()) for i in (0, 1))
                progress(f"pulling {ref}: {done / 1e9:.2f} of {total / 1e9:.2f} GB of the layers started so far")
        pulled = client.images.get(ref)
    except Exception as exc:  # the engine's APIError, an error event, a dropped connection
        raise UserError(pull_failed_message(ref, image, engine, registry, tag, first_line(exc))) from None
    progress(f"pulled {ref} ({repo_digest(pulled.attrs.get('RepoDigests') or [], ref) or pulled.id})")
    return pulled


def repo_digest(digests: Iterable[str], ref: str) -> str | None:
    """The registry digest of the image as pushed under ``ref``'s repository; None for a local build."""
    last = ref.rsplit("/", 1)[-1]
    repository = ref[: ref.rindex(":")] if ":" in last else ref
    digests = list(digests)
    return next((d for d in digests if d.split("@", 1)[0] == repository), digests[0] if digests else None)


def first_line(exc: BaseException) -> str:
    """The useful part of an error: the engine's own words for an API error, not the HTTP request."""
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
