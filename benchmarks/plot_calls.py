"""Every timed generate call of a GPU sweep against the time it started: does a slow call come with the
process's age, with a new batch size, or with one side (worker or bare loop)?

Reads the per-call probe readings (``host``, from ``benchmarks/call_probe.py``) in a ``sweep.json`` and
draws each call's seconds over the median call at its batch size (1.0 = typical), coloured by side,
one marker shape per batch size. A second panel shows the calling thread's CPU share, so a slow call
with its thread off the CPU stands apart from one that was busy throughout.

    python benchmarks/plot_calls.py results/reference/<gpu>-<date>/sweep.json -o calls.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

SIDES = {"settle": "tab:gray", "bare": "tab:blue", "worker": "tab:orange"}
MARKERS = "os^Dvp*hX"


def calls(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per probed call: side, batch size, start time, seconds, relative seconds, thread CPU share."""
    points = []
    for row in summary.get("sweep", []):
        mine = []
        for side in SIDES:
            for entry in row.get(side) or []:
                for call in (entry or {}).get("host") or []:
                    mine.append({"side": side, "batch": row["batch_size"], **call})
        if mine:
            median = statistics.median(c["seconds"] for c in mine)
            for c in mine:
                c["relative"] = c["seconds"] / median
            points += mine
    return points


def plot(summary: dict[str, Any], out: Path) -> int:
    """Write the figure; returns how many calls it shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = calls(summary)
    if not points:
        raise SystemExit("no probed calls in this sweep.json (sweeps from before benchmarks/call_probe.py have none)")
    batches = sorted({p["batch"] for p in points})
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6), height_ratios=[2, 1])
    for side, colour in SIDES.items():
        for i, batch in enumerate(batches):
            mine = [p for p in points if p["side"] == side and p["batch"] == batch]
            if not mine:
                continue
            x = [p["at_seconds"] for p in mine]
            marker = MARKERS[i % len(MARKERS)]
            top.scatter(x, [p["relative"] for p in mine], c=colour, marker=marker, label=f"{side}, batch {batch}")
            cpu = [p.get("thread_cpu_pct") for p in mine]
            bottom.scatter(x, [c if c is not None else float("nan") for c in cpu], c=colour, marker=marker)
    top.axhline(1.0, color="black", linewidth=0.5)
    top.set_ylabel("call seconds / median at its batch")
    top.legend(fontsize="small", ncol=2)
    bottom.set_ylabel("thread CPU %")
    bottom.set_xlabel("call start, seconds since the sweep began")
    revision = str(summary.get("git_revision") or "?")[:12]
    fig.suptitle(f"{summary.get('device_name', '?')} · {revision} · {summary.get('date', '')}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return len(points)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep", type=Path, help="a sweep.json written by benchmarks/gpu_sweep.py")
    p.add_argument("-o", "--out", type=Path, help="PNG to write (default: calls.png beside the sweep.json)")
    args = p.parse_args(argv)
    try:
        summary = json.loads(args.sweep.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"{args.sweep}: cannot read a sweep summary ({exc})") from None
    out = args.out or args.sweep.with_name("calls.png")
    n = plot(summary, out)
    print(f"wrote {out}: {n} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
