"""The Docker executor: the cell's image in a container, on a local engine or on one reached over ssh.

The worker inside reads and writes only the run folder, as with the process executor; what this package
adds is how files get in and out, which GPU the container gets, and cleaning up afterwards.

Files. Inside the container the run folder is ``/results/<run-id>``, the dataset ``/inputs/data/<name>``,
a local checkpoint ``/inputs/model``: fixed paths, so no host path can shadow the image's own files.
The worker reads ``config.json``, so the container sees a copy with those paths
(``container-config.json``, kept in the run folder as a record) in its place, and afterwards
``result.json`` gets the host's config and dataset path back: a result is valid on the host, like one
from the process executor. How the files travel depends on the engine:

- a local engine (unix socket, or tcp to localhost) shares this machine's disk: bind mounts, the run
  folder read-write and the inputs read-only, and the container runs as this user's uid:gid so
  everything it writes stays this user's;
- a remote engine (``ssh://user@gpu-vm``) sees its own disk, not ours: the inputs are copied into the
  created container before it starts and the run folder is copied back when it ends, however it ends.

GPUs. A GPU cell gets the GPUs of the requested catalog type, chosen by UUID: from NVML on this machine
for a local engine; for a remote one from ``nvidia-smi`` in a short container on that engine (local NVML
would describe the wrong machine), in the cell's image or any sumbench image the engine already holds.
``--gpu-uuid`` skips the discovery and pins cards. The same listing gives the host's NVIDIA driver, which
must be at least the image's ``min_driver`` (``images.toml``; ``--force`` goes on anyway). The GPU and
driver are checked before the image, so nobody builds or pulls gigabytes for a host that cannot run them.

Images. The cell's reference, ``[REGISTRY/]sumbench/<image>:TAG``, on the engine; an engine without it
pulls it when a registry is named (``--registry``/SUMBENCH_REGISTRY, or a registry host in the
reference) and records its digest. ``runner matrix --target docker`` asks every engine it will use, before
its folder is written, whether it answers, has the cells' GPUs and driver, and holds or can pull each
image (``DockerExecutor.check_ready``).

A container that cannot start (an entry point that cannot exec, no GPU runtime) is a failed run: the
engine's reason goes to ``output.log`` and, through the host's dead-worker path, to ``result.json``
(``ContainerStartFailed``) and ``error.log``.

Network. ``none`` unless the model is a hub id, which has to be downloaded: then ``host`` rather than
``bridge``, because an engine need not have a bridge network (``dockerd --bridge=none``, some rootless
set-ups) while every engine has the host's, and a worker exposes no ports. Hub downloads go to a cache
that outlives the container: the host's Hugging Face cache for a local engine, a named volume on a
remote one.

The package, one concern a module:

- ``executor.py``: ``DockerExecutor``, the order of the steps for one run;
- ``layout.py``: where the run's files are inside the container;
- ``spec.py``: what ``containers.create`` is given (mounts, GPUs, user, environment, network);
- ``engine.py``: which engine, how to reach it (ssh quirks included), image references, pulls and digests;
- ``gpus.py``: the GPUs of the engine's host, its driver against the image's, and the card a cell gets;
- ``running.py``: following a container's output to its exit, stopping and removing it;
- ``files.py``: copying files in and out for a remote engine, and host paths back into the result.
"""

from __future__ import annotations

from runner.executors.docker.executor import DockerExecutor

__all__ = ["DockerExecutor"]
