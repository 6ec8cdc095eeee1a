"""The host <-> worker contract: the only part of ``runner`` that the worker (``runner.worker``, what every
image runs) may import, and so the only host code every image carries.

It holds the run folder's models and files (``schema``, ``rundir``, ``events``), the sums both sides compute
from its records (``aggregate``, ``serving``) and the few rules both must agree on. Its modules import only
one another (and ``runner.__version__``), never the worker or host-only code; ``tests/test_worker_contract.py``
holds both sides to that.
"""
