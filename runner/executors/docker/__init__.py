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
for a local engine; for a remote one from ``nvidia-smi`` in a short container of the same image on that
engine (local NVML would describe the wrong machine). ``--gpu-uuid`` skips the discovery and pins cards.

Network. ``none`` unless the model is a hub id, which has to be downloaded: then ``host`` rather than
``bridge``, because an engine need not have a bridge network (``dockerd --bridge=none``, some rootless
set-ups) while every engine has the host's, and a worker exposes no ports. Hub downloads go to a cache
that outlives the container: the host's Hugging Face cache for a local engine, a named volume on a
remote one.

The package, one concern a module:

- ``executor.py``: ``DockerExecutor``, the order of the steps for one run;
- ``layout.py``: where the run's files are inside the container;
- ``spec.py``: what ``containers.create`` is given (mounts, GPUs, user, environment, network);
- ``engine.py``: which engine, how to reach it (ssh quirks included), image references and digests;
- ``gpus.py``: the GPUs of the engine's host, and the one a cell gets;
- ``running.py``: following a container's output to its exit, stopping and removing it;
- ``files.py``: copying files in and out for a remote engine, and host paths back into the result.
"""

from __future__ import annotations

from runner.executors.docker.executor import DockerExecutor

__all__ = ["DockerExecutor"]
