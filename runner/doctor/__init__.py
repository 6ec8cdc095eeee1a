"""``runner doctor``: what sumbench can run on this machine (or a Docker host), found before anything launches.

A fresh machine fails a first launch for one of a handful of reasons: no NVIDIA driver, a CPU build of
torch, no Docker engine or no NVIDIA runtime in it, an image never built (or built from older source),
a hub out of reach. Each is found late by ``runner launch``, one at a time, after the user chose an image;
the doctor looks at all of them at once, cheaply, and says per catalog image where it runs and what is
missing where it does not.

One concern a module, each answering with plain data (dataclasses, so ``--json`` is ``asdict``):

- ``gpus.py``: this machine's cards through NVML, named as the catalog names them;
- ``stack.py``: the worker's Python packages in this environment (the process executor), found without
  importing them, and torch's CUDA build read from its files;
- ``engine.py``: the Docker engine: reachable, its GPU runtime, the sumbench images it holds;
- ``revision.py``: whether an image was built from this checkout's source or an older one;
- ``hf.py``: the Hugging Face token (set or not, never its value), cache and hub;
- ``verdict.py``: per image, where it can run and the one thing missing, through ``runner.compat``;
- ``survey.py``: all of the above, in order, as one ``Diagnosis``;
- ``render.py``: the diagnosis as tables for a person.

Nothing here raises for a missing piece: a doctor's report is the answer, with exit code 0.
"""

from __future__ import annotations
