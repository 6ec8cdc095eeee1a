"""``python -m runner.worker RUN_DIR``: the entry point of every image and of the process executor."""

from __future__ import annotations

import argparse
import faulthandler
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runner.worker",
        description="Run the sumbench cell configured in RUN_DIR/config.json and write its results there.",
    )
    parser.add_argument("run_dir", type=Path, help="run folder holding config.json (written by `runner launch`)")
    args = parser.parse_args(argv)
    # A crash in native code (a CUDA kernel library, a quantization extension) kills the process before
    # any Python handler runs; faulthandler still prints the Python stack to stderr, which the executor
    # keeps in output.log.
    faulthandler.enable()
    from runner.worker.run import run

    return run(args.run_dir)


if __name__ == "__main__":
    sys.exit(main())
