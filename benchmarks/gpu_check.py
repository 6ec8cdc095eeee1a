"""The GPU check: studies/gpu-check.toml run by ``runner`` on one card, the bare-generate yardstick beside it,
and one Markdown table of what came out.

Steps, each a ``runner`` command as a user would type it:
  (a) a random checkpoint of Llama-2-7B's shape (``runner model synthetic llama-2-7b``; ``--tiny``: ``runner
      model tiny``) and three batches of documents whose prompts are ``PROMPT_TOKENS`` long under that
      checkpoint's tokenizer and chat template, counted the way the worker counts them;
  (b) the steady-state check: ``runner launch`` of the default scenario over all three batches, and the
      yardstick, a bare ``generate()`` loop on the same checkpoint and documents (it warms up as the
      worker does, and its settled rate leaves that out, as the worker's docs/s does): the worker's
      docs/s over the loop's. ``--pairs N`` runs that pair N times, every other pair loop first, so a
      machine that drifts during the check weighs on both sides; the ratio is of the two sides'
      geometric means;
  (b') with ``--first-use``, the bare loop again with its warm-up calls profiled, SDPA's cuDNN kernel
      allowed and then off: which ops a first use spends its time in (docs/metrics.md, Warm-up);
  (c) ``runner study run studies/gpu-check.toml`` with that model and the first batch of documents, on the
      GPU type found here (``--tiny``: the cpu image's fp32 and bf16 on the CPU), time-boxed: each cell by
      the study's timeout, the whole study by a deadline after which it is stopped like Ctrl-C (matrix.json
      then says which cells ran), so the table still happens;
  (d) OUT/gpu-check.md (the table), gpu-check.json, gpu-check.log and runs.tar.gz (the run folders).

With ``--work DIR`` the checkpoint, documents and finished steps are kept there: the same command again
(on the same machine) reuses them and resumes the study, so a check cut by its budget can be finished.

The worker runs in this machine's Python (process executor): it needs sumbench's worker dependencies
there, bitsandbytes for 4-bit and 8-bit included.

GPU:  python benchmarks/gpu_check.py --out "$OUT" --budget 800  (every cell: ~13 minutes on an H200; the
      default 560 s stops in 8-bit, and the same command with the same --work on that machine finishes it)
      python benchmarks/gpu_check.py --out "$OUT" --skip-study --pairs 2 --first-use  (issue 15's goal and
      the first-use diagnosis only: ~9 minutes on an H200)
CPU:  python benchmarks/gpu_check.py --out /tmp/check --tiny  (the same steps in under a minute)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's runner, also where another copy is installed

from runner.contract.defaults import MAX_NEW_TOKENS, PROMPT_TOKENS  # noqa: E402

STUDY = REPO / "studies" / "gpu-check.toml"
YARDSTICK = REPO / "benchmarks" / "yardstick.py"
BATCH = 32
BATCHES = 3  # the steady-state check's documents: issue 15 holds a 96-document batch-32 run to the bare loop
TABLE_RESERVE = 10.0  # seconds kept after the study for the table and the tarball
STOP_GRACE = 30.0  # after the study's deadline: time for a stopped cell to write its partial result
STEADY_RUN = "default-steady-{}"  # one per pair


class Log:
    """Timestamped lines to the console and gpu-check.log, flushed at once (a killed run keeps its story)."""

    def __init__(self, path: Path) -> None:
        self.start = time.monotonic()
        self.file = path.open("w", encoding="utf-8")

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def __call__(self, message: str) -> None:
        line = f"[{self.elapsed():6.1f}s] {message}"
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


@dataclass(frozen=True)
class Shape:
    """What the check runs: the GPU's Llama-2-7B shape, or the CPU dry run's tiny model."""

    batch: int
    new_tokens: int
    device: str
    dtype: str
    image: str  # the steady-state run's image and scenario
    scenario: str

    @property
    def documents(self) -> int:
        return BATCHES * self.batch


GPU_SHAPE = Shape(BATCH, MAX_NEW_TOKENS, "cuda", "float16", "hf", "default")
TINY_SHAPE = Shape(4, 8, "cpu", "float32", "cpu", "fp32")


def runner(log: Log, *args: str, deadline: float | None = None) -> int:
    """``python -m runner ARGS``, its output into the log; stopped like Ctrl-C (then killed) at ``deadline``."""
    command = [sys.executable, "-m", "runner", *args]
    log("$ runner " + " ".join(args))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log.file, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        return proc.wait(timeout=None if deadline is None else max(1.0, deadline - log.elapsed()))
    except subprocess.TimeoutExpired:
        log(f"deadline reached at {log.elapsed():.0f}s: stopping runner {args[0]} as Ctrl-C would")
        os.killpg(proc.pid, signal.SIGINT)
        try:
            return proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait()


def prompt_counter(model: Path):
    """The worker's own token count of a document's prompt (its chat template, its special tokens)."""
    from transformers import AutoTokenizer

    from runner.contract.schema import RunConfig
    from runner.worker.backends.hf import HFBackend
    from runner.worker.prompts import build_prompt

    backend = HFBackend(RunConfig(run_id="count", model=str(model), data="-"), "cpu", [])
    backend.tokenizer = AutoTokenizer.from_pretrained(model)

    def count(texts: list[str]) -> list[int]:
        return backend.prompt_lengths([build_prompt(backend.tokenizer, text) for text in texts])

    return count


def prompt_lengths(model: Path, data: Path) -> list[int]:
    """The prompt lengths of the documents in ``data`` (an earlier pass wrote them)."""
    from runner.contract.datasets import load_dataset

    return prompt_counter(model)([d.text for d in load_dataset(data).documents])


def write_documents(model: Path, out: Path, n: int, target: int) -> list[int]:
    """``n`` documents whose prompts (chat template included) are ``target`` tokens, or a token or two
    fewer where the next word would overshoot; cut from the bundled sample's words, each from another
    place, each with the reference of the sample document it starts in. Returns the prompt lengths."""
    from runner.contract.datasets import load_dataset
    from runner.paths import SAMPLE_DATASET

    count = prompt_counter(model)
    sample = load_dataset(SAMPLE_DATASET).documents
    words, owner = [], []
    for i, doc in enumerate(sample):
        words += doc.text.split()
        owner += [i] * len(doc.text.split())
    starts = [(d * 997) % len(words) for d in range(n)]
    streams = [(words[s:] + words[:s]) * (1 + 4 * target // len(words)) for s in starts]
    lo, hi = [1] * n, [4 * target] * n  # words: lo always fits (a prompt of one word), hi never needs more
    for _ in range(14):  # binary search on every document at once: one tokenizer call per round
        mids = [(a + b + 1) // 2 for a, b in zip(lo, hi, strict=True)]
        for d, length in enumerate(count([" ".join(s[:k]) for s, k in zip(streams, mids, strict=True)])):
            lo[d], hi[d] = (mids[d], hi[d]) if length <= target else (lo[d], mids[d] - 1)
    texts = [" ".join(s[:k]) for s, k in zip(streams, lo, strict=True)]
    lines = [
        {"id": f"doc-{d:03d}", "document": text, "summary": sample[owner[starts[d]]].references[0]}
        for d, text in enumerate(texts)
    ]
    out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return count(texts)


def gpu_type() -> str | None:
    """The catalog key of this machine's first GPU, or None without one."""
    from runner.contract import catalog
    from runner.contract.nvml import list_gpus

    for gpu in list_gpus():
        if (kind := catalog.match_gpu(gpu.name, gpu.memory_bytes)) is not None:
            return kind.key
    return None


def yardstick(log: Log, model: Path, data: Path, out: Path, shape: Shape, *flags: str, calls: int = BATCHES) -> dict:
    """The bare generate() loop on the same checkpoint and documents (benchmarks/yardstick.py): the worker's
    warm-up calls, then ``calls`` timed calls over the batches of documents in turn."""
    if out.is_file():
        log(f"yardstick: {out} is there from an earlier pass; reused")
    else:
        command = [sys.executable, str(YARDSTICK), "--model", str(model), "--data", str(data)]
        command += ["--batch-size", str(shape.batch), "--limit", str(shape.documents), "--calls", str(calls)]
        command += ["--max-new-tokens", str(shape.new_tokens), "--device", shape.device, "--dtype", shape.dtype]
        command += [*flags, "--out", str(out)]
        log("$ " + " ".join(command[1:]))
        code = subprocess.run(command, cwd=REPO, stdout=log.file, stderr=subprocess.STDOUT).returncode
        if code != 0 or not out.is_file():
            return {"status": f"failed (exit {code})"}
    return {"status": "completed", **json.loads(out.read_text(encoding="utf-8"))}


def first_use(log: Log, model: Path, data: Path, work: Path, shape: Shape) -> list[dict]:
    """The diagnosis of the first-use cost: the bare loop with its warm-up calls profiled, once as torch
    picks SDPA's kernels and once with cuDNN's kept off (the suspect), each with one timed call after."""
    return [
        {"cudnn_sdpa": cudnn, **yardstick(log, model, data, work / f"first-use-{tag}.json", shape, *flags, calls=1)}
        for tag, cudnn, flags in (("cudnn", True, ["--profile"]), ("no-cudnn", False, ["--profile", "--no-cudnn-sdpa"]))
    ]


def steady_run(log: Log, model: Path, data: Path, results: Path, gpu: str, shape: Shape, pair: int) -> Path:
    """The worker over every document at the check's batch size, the default scenario, a full warm-up: its
    docs/s is the steady state the bare loop's settled rate is held against. Resumed if cut."""
    from runner.contract import rundir
    from runner.contract.errors import UserError

    folder = results / STEADY_RUN.format(pair)
    try:
        status = rundir.read_result(folder).status
    except UserError:
        status = None
    if status == "completed":
        log(f"steady-state run: {folder} completed in an earlier pass; reused")
    elif (folder / "config.json").is_file():
        runner(log, "launch", "--resume", str(folder))
    else:
        args = ["launch", "--model", str(model), "--data", str(data), "--image", shape.image, "--gpu", gpu]
        args += ["--scenario", shape.scenario, "--batch-size", str(shape.batch), "--limit", str(shape.documents)]
        args += ["--max-new-tokens", str(shape.new_tokens), "--warmup", "full", "--results", str(results)]
        runner(log, *args, "--run-id", folder.name)
    return folder


def run_row(folder: Path, row: dict) -> dict:
    """``row`` with the figures of the run in ``folder`` (status, docs/s, per-call seconds...), if it wrote a result."""
    from runner.contract import rundir
    from runner.contract.errors import UserError

    try:
        result = rundir.read_result(folder)
    except UserError:
        return row
    m = result.metrics
    return {
        **row,
        "status": result.status,
        "note": f"{result.error.error_class}: {result.error.message[:120]}" if result.error else row.get("note", ""),
        "docs": m.documents,
        "docs_per_second": m.docs_per_second,
        "output_tokens_per_second": m.output_tokens_per_second,
        "call_seconds": [round(b.seconds, 2) for b in m.batches],
        "call_padded_tokens": [b.padded_tokens for b in m.batches],
        "in_tokens": m.avg_input_tokens,
        "out_tokens": m.avg_output_tokens,
        "load_seconds": m.model_load_seconds,
        "warmup_seconds": m.warmup_seconds,
        "end_to_end_seconds": m.end_to_end_seconds,
        "peak_allocated": m.peak_memory_allocated_bytes,
        "peak_device": m.peak_device_memory_bytes,
        "energy_per_doc": m.energy_per_doc_joules,
    }


def rows(matrix_dir: Path) -> list[dict]:
    """One row per cell of the study's matrix: dropped cells with their reason, run ones with their figures."""
    from runner.matrix import read_manifest

    if not (matrix_dir / "matrix.json").is_file():
        return []  # the study stopped before its matrix was planned: the log says why
    return [
        run_row(
            matrix_dir / cell.run_id,
            {"scenario": cell.scenario, "image": cell.image, "status": cell.status, "note": cell.reason or ""},
        )
        for cell in read_manifest(matrix_dir).cells
    ]


def steady_state(pairs: list[tuple[dict, dict]]) -> dict:
    """The worker's docs/s over the bare loop's settled rate, each pair on the same documents and batch
    size: per pair, and the geometric means of the two sides over all pairs (None where a side failed)."""
    workers = [w.get("docs_per_second") for w, _ in pairs]
    loops = [b.get("settled_docs_per_second") for _, b in pairs]
    ratios = [w / b if w and b else None for w, b in zip(workers, loops, strict=True)]
    complete = all(ratios) and bool(ratios)
    worker = statistics.geometric_mean(workers) if complete else None
    loop = statistics.geometric_mean(loops) if complete else None
    return {
        "worker_docs_per_second": worker,
        "bare_settled_docs_per_second": loop,
        "worker_over_bare": worker / loop if worker and loop else None,
        "pairs": ratios,
    }


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**30:.2f} GiB"


def _calls(r: dict) -> str:
    """Each timed call's seconds, with the length its prompts were padded to where known: '6.21 (515)'."""
    seconds = r.get("call_seconds", [])
    padded = r.get("call_padded_tokens") or [None] * len(seconds)
    shown = [f"{s:.2f}" + (f" ({n})" if n else "") for s, n in zip(seconds, padded, strict=True)]
    return ", ".join(shown) or "-"


def _line(r: dict) -> str:
    tokens = f"{_num(r.get('in_tokens'), '.0f')} / {_num(r.get('out_tokens'), '.0f')}" if "docs" in r else "-"
    return (
        f"| {r['scenario']} | {r['image']} | {r['status']} | {r.get('docs', '-')} "
        f"| {_num(r.get('docs_per_second'), '.3f')} | {_num(r.get('output_tokens_per_second'), '.1f')} "
        f"| {_calls(r)} | {tokens} "
        f"| {_num(r.get('load_seconds'), '.1f')} | {_num(r.get('warmup_seconds'), '.1f')} "
        f"| {_gib(r.get('peak_allocated'))} | {_gib(r.get('peak_device'))} "
        f"| {_num(r.get('energy_per_doc'), '.0f')} | {r['note']} |"
    )


def diagnosis_lines(runs: list[dict]) -> list[str]:
    """The first-use diagnosis in a few lines: per run, each profiled call's seconds and its costliest ops."""
    if not runs:
        return []
    lines = ["", "First use, profiled (bare loop; warm-up calls under torch's profiler, then one timed call):", ""]
    for run in runs:
        head = f"- SDPA's cuDNN kernel {'allowed' if run['cudnn_sdpa'] else 'off'}: "
        if run["status"] != "completed":
            lines.append(head + run["status"])
            continue
        timed = ", ".join(f"{s:.2f}" for s in run["call_seconds"])
        lines.append(head + f"timed call {timed} s")
        for call in run["warmup_profile"]:
            ops = "; ".join(f"{o['op']} {o['self_seconds']:.3g} s ({o['calls']}x)" for o in call["top_self_time"][:3])
            lines.append(f"  - {call['call']}: {call['seconds']:.2f} s; most self time: {ops}")
    return lines


def markdown(summary: dict) -> str:
    """The table of the check, with what it ran on and the command that reproduces it."""
    state = summary["steady_state"]
    ratio = state["worker_over_bare"]
    each = ", ".join(_num(None if r is None else 100 * r, ".1f") + "%" for r in state["pairs"])
    head = (
        f"GPU check on {summary['gpu']} ({summary['device']}): {summary['model']}, batch {summary['batch']}, "
        f"prompts of {summary['prompt_tokens']['min']}-{summary['prompt_tokens']['max']} tokens, "
        f"{summary['max_new_tokens']} new tokens; {summary['elapsed_seconds']:.0f} s this pass.\n\n"
        f"Reproduce: `{summary['command']}`\n\n"
        f"Steady state: the worker's docs/s over {summary['documents']} documents is "
        f"{_num(None if ratio is None else 100 * ratio, '.1f')}% of the bare generate() loop's settled rate on "
        f"the same documents (geometric means of {len(state['pairs'])} pair(s), in the rows before the study's; "
        f"each pair: {each}).\n"
    )
    lines = [
        "| scenario | image | status | docs | docs/s | out tok/s | calls: s (padded prompt) | in/out tok/doc "
        "| load s | warm-up s | peak allocated | device (NVML) | J/doc | note |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for number, pair in enumerate(summary["steady"], 1):
        y = pair["bare"]
        warmup = y.get("warmup_call_seconds", [])
        bare = (
            f"| bare generate() | - | {y['status']} | {y.get('batch_size', 0) * y.get('calls', 0) or '-'} "
            f"| {_num(y.get('settled_docs_per_second'), '.3f')} | - "
            f"| {_calls(y)} | - "
            f"| {_num(y.get('load_seconds'), '.1f')} | {_num(sum(warmup) if warmup else None, '.1f')} "
            f"| - | - | - | pair {number}: {len(warmup)} warm-up call(s) |"
        )
        worker = _line(pair["worker"])
        lines += [worker, bare] if pair["worker_first"] else [bare, worker]
    lines += [_line(r) for r in summary["cells"]]
    lines += diagnosis_lines(summary["first_use"])
    return head + "\n" + "\n".join(lines) + "\n"


def raw_flags(argv: list[str] | None) -> list[str]:
    """The command line's flags that change what runs (not where its files go), for the table's header."""
    words, kept, skip = list(sys.argv[1:] if argv is None else argv), [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("--out", "--work"):
            skip = True
        elif not word.startswith(("--out=", "--work=")):
            kept.append(word)
    return kept


def prepare(log: Log, model: Path, data: Path, shape: Shape, tiny: bool) -> list[int] | None:
    """The checkpoint and the documents, or those of an earlier pass in the same folder; their prompt lengths."""
    if (model / "config.json").is_file():
        log(f"checkpoint: {model} is there from an earlier pass; reused")
    else:
        args = ("model", "tiny", str(model), "--force") if tiny else ("model", "synthetic", "llama-2-7b", str(model))
        if (code := runner(log, *args)) != 0:
            log(f"could not write the checkpoint (exit {code}); see above")
            return None
    if data.is_file():
        log(f"documents: {data} is there from an earlier pass; reused")
        return prompt_lengths(model, data)
    return write_documents(model, data, shape.documents, PROMPT_TOKENS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    p.add_argument("--tiny", action="store_true", help="CPU dry run: tiny model, cpu image, a few documents")
    p.add_argument("--budget", type=float, help="seconds for the whole check (default: 560; --tiny 170)")
    p.add_argument(
        "--work",
        type=Path,
        help="where the checkpoint, documents and runs go, kept for a rerun (default: a temporary folder)",
    )
    p.add_argument("--pairs", type=int, default=1, help="steady-state pairs (worker and bare loop), default 1")
    p.add_argument("--skip-study", action="store_true", help="the steady-state pairs only, not the study")
    p.add_argument(
        "--first-use",
        action="store_true",
        help="after the pairs, profile the bare loop's warm-up with SDPA's cuDNN kernel allowed and off",
    )
    args = p.parse_args(argv)
    if args.pairs < 1:
        p.error(f"--pairs {args.pairs}: give 1 or more")
    if args.out is None:
        p.error("--out is required where $OUT is not set")
    budget = args.budget or (170.0 if args.tiny else 560.0)
    shape = TINY_SHAPE if args.tiny else GPU_SHAPE
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log(args.out / "gpu-check.log")
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    model, data, results = work / "model", work / "data.jsonl", work / "results"

    lengths = prepare(log, model, data, shape, args.tiny)
    if lengths is None:
        return 1
    log(f"documents: {len(lengths)}, prompts of {min(lengths)}-{max(lengths)} tokens")
    gpu = "cpu" if args.tiny else gpu_type()
    if gpu is None:
        log("no GPU of the catalog on this machine: run with --tiny on a CPU")
        return 1

    pairs = []
    for pair in range(1, args.pairs + 1):
        worker_first = pair % 2 == 1  # every other pair loop first: a drifting machine weighs on both sides
        stick_out = work / f"yardstick-{pair}.json"
        if not worker_first:
            stick = yardstick(log, model, data, stick_out, shape)
        folder = steady_run(log, model, data, results, gpu, shape, pair)
        if worker_first:
            stick = yardstick(log, model, data, stick_out, shape)
        row = {"scenario": f"{shape.scenario}, all documents", "image": shape.image, "status": "not run"}
        pairs.append(
            {
                "worker": run_row(folder, {**row, "note": f"pair {pair}: steady-state run"}),
                "bare": stick,
                "worker_first": worker_first,
            }
        )
    diagnosis = first_use(log, model, data, work, shape) if args.first_use else []
    if not args.skip_study:
        study = ["study", "run", str(STUDY), "--model", str(model), "--data", str(data), "--gpus", gpu]
        study += ["--results", str(results)]
        if args.tiny:
            study += ["--images", "cpu", "--scenarios", "fp32,bf16", "--batch-sizes", "4", "--limit", "4"]
            study += ["--max-new-tokens", "8", "--timeout", "60"]
        runner(log, *study, deadline=budget - TABLE_RESERVE - STOP_GRACE)

    from runner.contract.nvml import list_gpus

    devices = list_gpus()
    summary = {
        "gpu": gpu,
        "device": devices[0].name if devices else "CPU",
        "model": "tiny random Llama" if args.tiny else "Llama-2-7B shape, random weights",
        "batch": shape.batch,
        "max_new_tokens": shape.new_tokens,
        "prompt_tokens": {"target": PROMPT_TOKENS, "min": min(lengths), "max": max(lengths)},
        "command": shlex.join(["python", "benchmarks/gpu_check.py", "--out", "OUT", *raw_flags(argv)]),
        "documents": shape.documents,
        "steady": pairs,
        "steady_state": steady_state([(p["worker"], p["bare"]) for p in pairs]),
        "cells": rows(results / "gpu-check"),
        "first_use": diagnosis,
        "elapsed_seconds": log.elapsed(),
    }
    (args.out / "gpu-check.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (args.out / "gpu-check.md").write_text(markdown(summary), encoding="utf-8")
    with tarfile.open(args.out / "runs.tar.gz", "w:gz") as tar:
        tar.add(results, arcname="runs")
    log(f"done in {log.elapsed():.0f}s: {args.out / 'gpu-check.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
