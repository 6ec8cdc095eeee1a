"""Which Docker engine a run goes to, how to reach it, and what to say about its images.

A local engine shares this machine's disk and GPUs, a remote one (``ssh://``, tcp to another host)
does not; the executor asks ``is_remote`` to choose between mounts and copies, local NVML and
``nvidia-smi`` on the engine. Reaching an engine over ssh has quirks of docker-py's that live here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from urllib.parse import urlparse

from runner import __version__
from runner.catalog import Image
from runner.errors import UserError

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


def connect(url: str | None):
    """A client for the engine at ``url`` (default: DOCKER_HOST, else the local socket).

    ``use_ssh_client`` runs the ``ssh`` command for ssh:// URLs, so the user's ssh config, keys and
    agent apply as they do for the docker CLI.
    """
    import docker

    if url and url.startswith("ssh://") and not _has_module("paramiko"):
        # docker-py's ssh transport imports paramiko even when it runs the ssh command instead.
        raise UserError(f"{url} needs the Docker SDK's ssh support: pip install 'sumbench[ssh]'")
    try:
        if url and url.startswith("ssh://"):
            client = docker.DockerClient(base_url=with_ssh_port(url), use_ssh_client=True)
        else:  # from_env, so DOCKER_TLS_VERIFY and DOCKER_CERT_PATH apply to a tcp:// engine
            client = docker.from_env(environment={**os.environ, **({"DOCKER_HOST": url} if url else {})})
        client.ping()
    except Exception as exc:  # DockerException, requests' errors, OSError: all mean "no engine there"
        raise UserError(
            f"cannot reach {engine_label(url)} ({first_line(exc)}): start Docker, or point DOCKER_HOST or "
            "--docker-host at a running engine"
        ) from None
    return client


def missing_image_message(ref: str, image: Image, engine: str, registry: str, tag: str) -> str:
    settings = (f"REGISTRY={registry} " if registry else "") + (f"TAG={tag} " if tag != __version__ else "")
    hint = f"build it with `{settings}docker buildx bake {image.bake_target}`"
    if registry:
        hint += f" or pull it with `docker pull {ref}`"
    return f"image {ref} not found on {engine}: {hint}"


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
