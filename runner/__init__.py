"""sumbench: reproducible benchmarks of LLM inference for summarization.

The package has two layers that never mix:

* the host side (``runner.cli``, ``runner.launching``, ``runner.executors``, ``runner.report`` ...)
  plans, launches and reports, and never imports torch, so ``runner --help`` is instant;
* the worker (``runner.worker``) runs inside an image or in a subprocess and drives one backend.

What both layers share is ``runner.contract``: the results schema, the run folder, the catalogs and the
few rules both sides must agree on. The worker imports nothing else of the package.
"""

__version__ = "0.1.0"
