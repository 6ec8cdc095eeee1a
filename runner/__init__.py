"""sumbench: reproducible benchmarks of LLM inference for summarization.

The package has two layers that never mix:

* the host side (``runner.cli``, ``runner.contract.catalog``, ``runner.executors``, ``runner.report`` ...)
  plans, launches and reports, and never imports torch, so ``runner --help`` is instant;
* the worker (``runner.worker``) runs inside an image or in a subprocess and drives one backend.

``runner.contract.schema`` is the one results schema both layers share.
"""

__version__ = "0.1.0"
