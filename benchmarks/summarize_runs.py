"""One line per run folder under RUNS: status, error, docs/s, tokens, load/warm-up/compile seconds, what the
weights were as loaded, the timed calls and peak memory. For the GPU shell scripts' summary.txt, where a run
folder may not come back from the device but this text does."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def line(result_file: Path) -> str:
    r = json.loads(result_file.read_text())
    m, b = r["metrics"], r.get("backend") or {}
    w = b.get("weights") or {}
    fields = [
        result_file.parent.name,
        r["status"],
        (r.get("error") or {}).get("message", "")[:200],
        "docs",
        m["documents"],
        "docs/s",
        m["docs_per_second"],
        "in/out tok",
        m["avg_input_tokens"],
        m["avg_output_tokens"],
        "load",
        m["model_load_seconds"],
        "warmup",
        m["warmup_seconds"],
        "compile",
        m.get("compile_seconds"),
        m.get("compile_seconds_timed"),
        "dtype",
        b.get("dtype"),
        "attention",
        b.get("attention"),
        "bits",
        w.get("bits_per_parameter"),
        w.get("linear_layers"),
        "batches",
        [(x["size"], round(x["seconds"], 2)) for x in m["batches"]],
        "alloc",
        m["peak_memory_allocated_bytes"],
        "reserved",
        m["peak_memory_bytes"],
    ]
    return " ".join(str(f) for f in fields)


if __name__ == "__main__":
    for path in sorted(Path(sys.argv[1]).glob("*/result.json")):
        print(line(path))
