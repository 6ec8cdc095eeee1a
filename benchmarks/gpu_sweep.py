"""The GPU check of sumbench's GPU awareness: one script, one GPU, about six minutes on an H100.

It answers, for a Llama-2-7B-shaped model with synthetic fp16 weights, ~515-token prompts and exactly
300 new tokens (the original study's setting):

(a) docs/s per batch size, through the real worker (``runner.worker.run.run`` on a run folder);
(b) ``--batch-size auto``: does the memory plan's largest batch run without an out-of-memory error?
(c) the harness's own cost: a bare ``model.generate`` loop over the same batches, timed the same way,
    run as a pair with the worker cell of each batch (order alternating, and flipped on a second pass),
    after an untimed bare cell that settles the batch size; judged on median calls with a noise band;
(d) the memory plan's predicted peak beside torch's measured one (allocated and reserved);
(e) ``--gpu-memory-limit 15GiB`` at batch 1: fits or fails as planned, recorded in result.json; and at
    the smallest batch the plan refuses under that cap, to see whether the refusal was needed.

Every cell goes through the host's ``build_config`` (compatibility rules, and the memory plan for
``auto``) and the worker's own run folder, so what is measured is what ``runner launch`` runs. Cells run
in this process, one after another, with the CUDA cache emptied between them and the memory cap lifted
after a capped cell; a few seconds of matmuls first take the GPU out of idle, and every cell records
the SM clock, power and temperature before and after it. Swept sizes the plan expects to run out of
memory are run too, after the others: whether they do is the test of the plan's headroom.

The tokenizer is the worker's stand-in for synthetic weights (``train_tokenizer``: byte-level BPE),
trained once on the bundled how-to sample and saved beside config.json: the worker then loads it instead
of training one on each run's documents, so every cell and the bare loop see identical token ids, and
the documents can be cut to a token length in advance.

Writes into --out (default $OUT): sweep.json, sweep.md, sweep.log and runs.tar.gz (every run folder, the
model folder and the dataset). A time budget (--time-budget) skips cells that would not finish in time,
and says so, rather than be killed half-way.

Every timed generate call on both sides is probed (``benchmarks/call_probe.py``: the host thread's CPU
share, context switches, steal, page faults, GPU utilization); ``benchmarks/plot_calls.py sweep.json``
draws them against the time each started.

GPU:  python benchmarks/gpu_sweep.py --out "$OUT"
CPU:  python benchmarks/gpu_sweep.py --arch tiny-llama --device cpu --batches 1,2,4 --batches-per-cell 1 \
          --max-new-tokens 8 --auto-cap 4 --out /tmp/sweep
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's runner, even where another copy is installed

from benchmarks.call_probe import CallProbe, probe_line  # noqa: E402
from runner import rundir  # noqa: E402
from runner.catalog import Gpu, get_gpu, get_image, match_gpu  # noqa: E402
from runner.datasets import load_dataset  # noqa: E402
from runner.launching import LaunchRequest, build_config, prepare_run_dir  # noqa: E402
from runner.memory_plan import (  # noqa: E402
    CUDA_CONTEXT_BYTES,
    FRAGMENTATION,
    Footprint,
    GiB,
    footprint_for,
    largest_batch,
    plan_cell,
)
from runner.paths import SAMPLE_DATASET  # noqa: E402
from runner.scenarios import get_scenario  # noqa: E402

STUDY_NEW_TOKENS = 300
PROMPT_SLACK = 4  # documents end on a word, so a prompt may fall a few tokens short of the target
HARNESS_GOAL_PCT = 2.0
MEMORY_GOAL_PCT = 15.0


# ----------------------------------------------------------------------------- options and bookkeeping


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None,
        help="folder for sweep.json, sweep.md, sweep.log, runs.tar.gz (default: $OUT)",
    )
    p.add_argument("--arch", default="llama-2-7b", help="built-in architecture for the synthetic weights")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--scenario", default="default", help="hf scenario (default: fp16, SDPA)")
    p.add_argument("--gpu", help="catalog GPU to plan for (default: matched from the device; h100 on a CPU)")
    # Three sizes keep the bare loop and the worker sweep inside one 15-minute GPU lease (the first
    # H200 run, with six, spent its budget on the bare loop and skipped the worker sweep).
    p.add_argument("--batches", default="1,32,128", help="batch sizes to sweep")
    p.add_argument("--batches-per-cell", type=int, default=2, help="generate calls per batch size")
    p.add_argument("--min-docs", type=int, default=2, help="fewest documents per cell")
    p.add_argument("--prompt-tokens", type=int, default=515, help="prompt length of every document")
    p.add_argument("--max-new-tokens", type=int, default=STUDY_NEW_TOKENS)
    p.add_argument("--auto-cap", type=int, default=160, help="upper bound on the auto cell's planned batch")
    p.add_argument("--limit-gib", type=float, default=15.0, help="--gpu-memory-limit of the capped cell")
    p.add_argument(
        "--time-budget", type=float, default=380.0, help="seconds; later cells that would overrun are skipped"
    )
    p.add_argument("--skip-bare", action="store_true", help="no bare generate loop")
    p.add_argument("--warm-seconds", type=float, default=5.0, help="matmuls on the GPU before the first cell")
    p.add_argument("--only-pairs", action="store_true", help="the bare/worker pairs only: no auto or capped cells")
    p.add_argument(
        "--ablate-sampler",
        action="store_true",
        help="after each pair, a worker cell with its NVML memory sampler off: what the sampler costs",
    )
    p.add_argument(
        "--allocator-conf",
        help="PYTORCH_CUDA_ALLOC_CONF for the whole sweep, set before CUDA starts (e.g. expandable_segments:True)",
    )
    args = p.parse_args(argv)
    if args.out is None:
        p.error("--out is required where $OUT is not set")
    args.batch_sizes = sorted({int(b) for b in args.batches.split(",") if b.strip()})
    return args


class Log:
    """Timestamped lines to the console and sweep.log, flushed at once: a killed run keeps its story."""

    def __init__(self, path: Path) -> None:
        self.start = time.perf_counter()
        self.file = path.open("w", encoding="utf-8")

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, message: str) -> None:
        line = f"[{self.elapsed():6.1f}s] {message}"
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


@dataclass
class Sweep:
    """Everything the cells share."""

    args: argparse.Namespace
    log: Log
    device: str
    gpu: Gpu
    scratch: Path
    model_dir: Path
    data: Path
    prompt_lengths: list[int] = field(default_factory=list)
    bare: dict[int, list[dict]] = field(default_factory=dict)  # batch -> one entry per pass
    worker: dict[int, list[dict]] = field(default_factory=dict)
    worker_unsampled: dict[int, list[dict]] = field(default_factory=dict)  # --ablate-sampler
    settled: dict[int, list[dict]] = field(default_factory=dict)  # untimed first calls at each batch size
    cells: dict[str, dict] = field(default_factory=dict)  # auto, the capped cells, GPU context
    skipped: list[str] = field(default_factory=list)
    load_seconds: float = 20.0  # replaced by the first measured load
    info: dict = field(default_factory=dict)
    probe: CallProbe = field(default_factory=CallProbe)  # host and GPU readings around every timed call

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"

    def docs_for(self, batch: int) -> int:
        return max(self.args.min_docs, batch * self.args.batches_per_cell)

    def affordable(self, name: str, seconds: float) -> bool:
        """Whether a step of about ``seconds`` still ends inside the time budget; logs the skip if not."""
        if self.log.elapsed() + seconds <= self.args.time_budget:
            return True
        self.skipped.append(f"{name}: skipped, ~{seconds:.0f}s would pass the {self.args.time_budget:.0f}s budget")
        self.log(self.skipped[-1])
        return False

    def checkpoint(self) -> None:
        """Rewrite sweep.json and sweep.md after every step, so a run stopped from outside keeps them."""
        try:
            write_outputs(self, summarize(self, self.info))
        except Exception as exc:  # a summary bug must not cost the cells still to run
            self.log(f"checkpoint failed: {type(exc).__name__}: {exc}")


def guarded(step):
    """Run one step of the sweep; an unexpected error is logged and recorded, and the sweep goes on,
    because the GPU run happens once and every other cell is still worth having."""

    def wrapper(sw: Sweep, *args: Any) -> None:
        try:
            step(sw, *args)
        except Exception as exc:
            import traceback

            sw.skipped.append(f"{step.__name__}{args}: {type(exc).__name__}: {exc}")
            sw.log(f"{step.__name__}{args} failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        free_cuda()
        sw.checkpoint()

    return wrapper


# ----------------------------------------------------------------------------- model folder and dataset


def prepare_model(arch: str, folder: Path, corpus: list[str]) -> None:
    """config.json of the architecture, and the worker's stand-in tokenizer trained on the sample."""
    from runner.worker.models import synthetic_config, train_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    synthetic_config(arch).save_pretrained(folder)
    train_tokenizer(corpus, vocab_size=4096).save_pretrained(folder)


def prompt_counter(sw: Sweep):
    """Prompt tokens of a document exactly as the worker counts them (chat template, BOS handling)."""
    from runner.worker.backends.hf import HFBackend
    from runner.worker.models import load_tokenizer
    from runner.worker.prompts import build_prompt

    config, _ = build_config(request(sw, "probe", batch_size=1, data=str(SAMPLE_DATASET)))
    backend = HFBackend(config, "cpu", [])
    backend.tokenizer = load_tokenizer(str(sw.model_dir), synthetic=True)

    def count(texts: list[str]) -> list[int]:
        return backend.prompt_lengths([build_prompt(backend.tokenizer, t, None) for t in texts])

    return count


def build_dataset(sw: Sweep, records: list[dict], n_docs: int) -> None:
    """``n_docs`` documents of ``--prompt-tokens`` prompt tokens each (or a few fewer where the next
    word would overshoot), cut from the sample's word stream.

    Each document starts at another place in the stream (wrapping around), so no two are equal; its
    reference is the summary of the sample document it starts in, so ROUGE runs as in a real cell. Word
    counts are corrected in a few rounds of counting every prompt at once: dropping k words drops at
    least k tokens, so an over-long prompt is fixed in one round, and a short one grows by a third of its
    gap, then word by word; one that a single word would push over the target stays a little short.
    """
    count = prompt_counter(sw)
    words: list[str] = []
    owner: list[int] = []
    for i, r in enumerate(records):
        w = r["document"].split()
        words += w
        owner += [i] * len(w)
    target = sw.args.prompt_tokens
    starts = [(d * 997) % len(words) for d in range(n_docs)]
    streams = [(words[s:] + words[:s]) * (1 + 4 * target // len(words)) for s in starts]
    sizes = [target // 2] * n_docs  # words; a token per word or more, so this starts short
    one_word, stuck = [False] * n_docs, [False] * n_docs

    def texts() -> list[str]:
        return [" ".join(stream[:k]) for stream, k in zip(streams, sizes, strict=True)]

    for _ in range(20):
        lengths = count(texts())
        changed = False
        for d, n in enumerate(lengths):
            if n > target:
                stuck[d] = one_word[d]  # a single added word overshot: keep the cut just short of it
                sizes[d] -= n - target
            elif n < target and not stuck[d]:
                step = max(1, (target - n) // 3)
                one_word[d] = step == 1
                sizes[d] += step
            else:
                continue
            changed = True
        if not changed:
            break
    lines = [
        {"id": f"doc-{d:04d}", "document": text, "summary": records[owner[starts[d]]]["summary"]}
        for d, text in enumerate(texts())
    ]
    sw.data.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    sw.prompt_lengths = count([x["document"] for x in lines])
    if not all(target - 2 * PROMPT_SLACK <= n <= target for n in sw.prompt_lengths):
        # Worth a note, not the run: every cell records its own prompt lengths and plans with them.
        sw.log(f"warning: prompts of {min(sw.prompt_lengths)}-{max(sw.prompt_lengths)} tokens, not {target}")


# ----------------------------------------------------------------------------- cells


def request(sw: Sweep, run_id: str, batch_size: int | str, limit: int | None = None, **options: Any) -> LaunchRequest:
    """The launch request of one cell: the same fields ``runner launch`` fills from its options."""
    options.setdefault("data", str(sw.data))
    return LaunchRequest(
        model=str(sw.model_dir),
        image="hf" if sw.on_gpu else "cpu",
        gpu=sw.gpu.key if sw.on_gpu else "cpu",
        scenario=sw.args.scenario,
        batch_size=batch_size,  # type: ignore[arg-type]
        results=sw.scratch / "runs",
        run_id=run_id,
        max_new_tokens=sw.args.max_new_tokens,
        limit=limit,
        synthetic_weights=True,
        **options,
    )


def free_cuda() -> dict:
    """Drop what the last cell left: the next one's peak must be its own."""
    gc.collect()
    import torch

    if not torch.cuda.is_available():
        return {}
    torch.cuda.empty_cache()
    return {"allocated": torch.cuda.memory_allocated(), "reserved": torch.cuda.memory_reserved()}


ALLOCATOR_COUNTERS = ("num_alloc_retries", "num_device_alloc", "num_device_free", "num_ooms")


def allocator_counters() -> dict[str, int]:
    """torch's cumulative allocator counters: cudaMalloc/cudaFree calls, and the retries that follow a failed
    cudaMalloc (every cached block freed, then the allocation tried again: slow, and a sign the cache filled
    the card)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    stats = torch.cuda.memory_stats()
    return {k: int(stats.get(k, 0)) for k in ALLOCATOR_COUNTERS}


def counters_since(before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in allocator_counters().items()}


def _allocator_note(counts: dict[str, int] | None) -> str:
    if not counts:
        return ""
    return f", cudaMalloc {counts['num_device_alloc']}, alloc retries {counts['num_alloc_retries']}"


def run_cell(
    sw: Sweep, name: str, req: LaunchRequest, *, max_batch_cap: int | None = None, sampler: bool = True
) -> dict:
    """Write the cell's config.json into its run folder and run the worker on it, in this process.

    ``sampler=False`` swaps the worker's NVML device-memory sampler for one that never starts. Every
    generate call of the worker's backend is probed (``host``: one reading per timed call)."""
    from runner.worker import run as worker_run
    from runner.worker.backends.hf import HFBackend
    from runner.worker.trackers import DeviceMemorySampler

    config, notes = build_config(req)
    planned = config.max_batch_size
    if max_batch_cap is not None and planned is not None and planned > max_batch_cap:
        config.max_batch_size = max_batch_cap
    run_dir = prepare_run_dir(req.results, config.run_id)
    rundir.write_config(run_dir, config)
    left = free_cuda()
    before = gpu_state(sw)
    counters = allocator_counters()
    sw.log(
        f"{name}: batch {config.batch_size}, {config.limit} docs, cap {config.max_batch_size} "
        f"(left by earlier cells: {left.get('allocated', 0) / GiB:.2f} GiB)"
    )
    probed: list[dict] = []
    t0 = time.perf_counter()
    with (
        (run_dir / "console.log").open("w", encoding="utf-8") as out,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
        contextlib.ExitStack() as stack,
    ):
        stack.enter_context(_patched(HFBackend, "generate", _probed(HFBackend.generate, sw.probe, probed)))
        if not sampler:
            unsampled = lambda index: DeviceMemorySampler(None)  # noqa: E731
            stack.enter_context(_patched(worker_run, "DeviceMemorySampler", unsampled))
        code = worker_run.run(run_dir)
    wall = time.perf_counter() - t0
    allocator = counters_since(counters)
    free_cuda()
    cell: dict[str, Any] = {
        "run_id": config.run_id,
        "exit_code": code,
        "wall_seconds": wall,
        "notes": notes,
        "planned_max_batch": planned,
        "max_batch_size": config.max_batch_size,
        "gpu_before": before,
        "gpu_after": gpu_state(sw),
        "allocator": allocator,
        "device_sampler": sampler,
    }
    try:
        result = rundir.read_result(run_dir)
    except Exception as exc:  # a worker that wrote no result is a finding, not a reason to stop the sweep
        cell.update(status="no result", error=f"{type(exc).__name__}: {exc}")
        sw.log(f"{name}: no result.json ({cell['error']})")
        return cell
    m = result.metrics
    cell.update(
        status=result.status,
        error=result.error.model_dump() if result.error else None,
        documents=m.documents,
        docs_per_second=m.docs_per_second,
        output_tokens_per_second=m.output_tokens_per_second,
        generate_seconds=m.generate_seconds,
        model_generate_seconds=m.model_generate_seconds,
        batch_seconds=[b.seconds for b in m.batches],
        # the warmup call comes first and failed calls are not timed: the timed ones are the last that succeeded
        host=[p for p in probed if not p.pop("failed")][-len(m.batches) :] if m.batches else [],
        avg_output_tokens=m.avg_output_tokens,
        max_input_tokens=max(_input_tokens(run_dir), default=None),
        peak_reserved_bytes=m.peak_memory_bytes,
        peak_allocated_bytes=m.peak_memory_allocated_bytes,
        peak_source=m.peak_memory_source,
        peak_device_bytes=m.peak_device_memory_bytes,
        load_seconds=m.model_load_seconds,
        warmup_seconds=m.warmup_seconds,
        energy_joules=m.energy_joules,
        cost_per_1k_docs_usd=m.cost_per_1k_docs_usd,
        final_batch=result.batching.final,
        oom_events=[e.batch_size for e in result.batching.oom_events],
        device=result.environment.device.model_dump(),
    )
    if result.error and result.error.error_class == "Interrupted":
        raise KeyboardInterrupt(f"{name} was interrupted")  # a stop signal reached the worker: stop the sweep too
    dps = f"{m.docs_per_second:.3f}" if m.docs_per_second else "-"
    sw.log(
        f"{name}: {result.status} in {wall:.1f}s, {m.documents} docs, {dps} docs/s, "
        f"peak reserved {(m.peak_memory_bytes or 0) / GiB:.2f} GiB"
        + _allocator_note(allocator)
        + (f", error {result.error.error_class}: {result.error.message[:160]}" if result.error else "")
    )
    return cell


def _probed(generate, probe: CallProbe, into: list[dict]):
    """``generate`` with a probe around each call, inside the worker's own timed region (as the bare loop's
    probe is inside its)."""

    def wrapper(self, prompts, max_new_tokens):
        probe.start()
        failed = True
        try:
            out = generate(self, prompts, max_new_tokens)
            failed = False
            return out
        finally:
            into.append({**probe.stop(), "failed": failed})

    return wrapper


@contextlib.contextmanager
def _patched(module: Any, name: str, value: Any):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _input_tokens(run_dir: Path) -> list[int]:
    return [r.input_tokens for r in rundir.read_docs(run_dir)]


# ----------------------------------------------------------------------------- GPU state


def gpu_state(sw: Sweep) -> dict | None:
    """SM clock, power, temperature and throttle reasons now: a slow cell on a throttled or idle-clocked
    GPU says so in its own record (the first H200 run's bare batch 1 ran at half the worker's speed)."""
    if not sw.on_gpu:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            h = pynvml.nvmlDeviceGetHandleByIndex(0)
            readings = {
                "sm_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
                "memory_clock_mhz": lambda: pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM),
                "power_w": lambda: pynvml.nvmlDeviceGetPowerUsage(h) / 1000,
                "temperature_c": lambda: pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU),
                "memory_used_bytes": lambda: pynvml.nvmlDeviceGetMemoryInfo(h).used,
                "throttle_reasons": lambda: pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(h),
            }
            state: dict[str, Any] = {}
            for key, read in readings.items():
                try:
                    state[key] = read()
                except Exception as exc:  # one missing counter must not hide the others
                    state[key] = f"{type(exc).__name__}"
            return state
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # a diagnostic, never a reason to lose a cell
        return {"error": f"{type(exc).__name__}: {exc}"}


@guarded
def warm_gpu(sw: Sweep) -> None:
    """Some seconds of fp16 matmuls before anything is timed, so the first measured cell does not pay for
    CUDA's lazy initialisation or the clocks leaving idle."""
    if not sw.on_gpu:
        return
    import torch

    before = gpu_state(sw)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < sw.args.warm_seconds:
        for _ in range(20):
            a @ a
        torch.cuda.synchronize()
    del a
    sw.cells["_warm"] = {"before": before, "after": gpu_state(sw), "seconds": time.perf_counter() - t0}
    sw.log(f"GPU warmed for {sw.cells['_warm']['seconds']:.1f}s: {before} -> {sw.cells['_warm']['after']}")


# ----------------------------------------------------------------------------- bare generate loop


@guarded
def bare_cell(sw: Sweep, batch: int, settle: bool = False, docs: int | None = None) -> None:
    """``model.generate`` over the worker's batches at one size (same documents, order, padding and warmup),
    timed the way the worker times a batch (synchronize, clock, generate, synchronize, clock) but with the
    prompts tokenized beforehand and nothing decoded, scored or written: what the harness adds is the
    difference. The model is loaded for the cell and dropped after it, as a worker cell does, so neither
    holds memory while the other runs.

    ``settle``: the same calls, kept apart and left out of every comparison. On the first H100 sweeps the
    first cell at a batch size in the process ran about 3x (1.5-3.7x) slower per call than later ones, whichever side it
    was (per-shape first-use costs), so each batch size is settled before its pair is timed. ``docs``: fewer
    documents than a swept cell's (the auto batch is settled with one call)."""
    import torch

    from runner.worker.backends.hf import HFBackend
    from runner.worker.prompts import build_prompt
    from runner.worker.run import WARMUP_NEW_TOKENS

    n = docs or sw.docs_for(batch)
    name = ("settle" if settle else "bare") + f" batch {batch}"
    if not sw.affordable(name, estimate(sw, batch, -(-n // batch))):
        return
    config, _ = build_config(request(sw, "bare-loop", batch_size=batch, limit=n))
    backend = HFBackend(config, sw.device, [])
    free_cuda()
    entry: dict[str, Any] = {"documents": n, "batch_seconds": [], "gpu_before": gpu_state(sw)}
    t0 = time.perf_counter()
    backend.load()
    entry["load_seconds"] = sw.load_seconds = time.perf_counter() - t0
    if sw.on_gpu and "_context" not in sw.cells:
        free, total = torch.cuda.mem_get_info()
        sw.cells["_context"] = {
            "torch_total_memory_bytes": total,
            "non_torch_bytes": (total - free) - torch.cuda.memory_reserved(),
            "weights_allocated_bytes": torch.cuda.memory_allocated(),
        }
    model, pad = backend.model, backend.tokenizer.pad_token_id
    docs = load_dataset(str(sw.data), limit=n).documents
    prompts = [build_prompt(backend.tokenizer, d.text, None) for d in docs]
    lengths = backend.prompt_lengths(prompts)
    ordered = [p for _, p in sorted(zip(lengths, prompts, strict=True), key=lambda x: x[0], reverse=True)]
    batches = [
        backend._encode(ordered[i : i + batch], return_tensors="pt", padding=True).to(model.device)
        for i in range(0, n, batch)
    ]  # the worker's own encoding: same ids, same left padding
    if sw.on_gpu:
        torch.cuda.reset_peak_memory_stats()
    counters = allocator_counters()
    t_run = time.perf_counter()
    try:
        with torch.inference_mode():
            # The worker's warm-up, as its config says: the first batch at the full length, or a few tokens.
            warm_tokens = config.max_new_tokens if config.warmup == "full" else WARMUP_NEW_TOKENS
            if config.warmup != "none":
                _generate(model, batches[0], warm_tokens, pad)
            backend.synchronize()
            for enc in batches:
                clock = StepClock()
                backend.synchronize()
                t0 = time.perf_counter()
                sw.probe.start()
                out = _generate(model, enc, sw.args.max_new_tokens, pad, clock)
                backend.synchronize()
                entry.setdefault("host", []).append(sw.probe.stop())
                entry["batch_seconds"].append(time.perf_counter() - t0)
                entry.setdefault("steps", []).append(clock.summary())
                assert out.shape[1] - enc["input_ids"].shape[1] == sw.args.max_new_tokens
                del out
        entry["status"] = "completed"
        entry["docs_per_second"] = n / sum(entry["batch_seconds"])
    except torch.OutOfMemoryError as exc:
        entry.update(status="failed", error={"error_class": "OutOfMemoryError", "message": str(exc).splitlines()[0]})
    entry["run_seconds"] = time.perf_counter() - t_run  # warmup + calls: the bare side of the end-to-end cost
    entry["allocator"] = counters_since(counters)
    entry["gpu_after"] = gpu_state(sw)
    if sw.on_gpu:
        entry["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
        entry["peak_allocated_bytes"] = torch.cuda.max_memory_allocated()
    entry["max_input_tokens"] = max(lengths)
    del model, batches, backend
    (sw.settled if settle else sw.bare).setdefault(batch, []).append(entry)
    sw.log(
        f"{name}: {entry['status']} in {entry['run_seconds']:.1f}s"
        + (f", {entry['docs_per_second']:.3f} docs/s" if "docs_per_second" in entry else "")
        + (f", peak reserved {entry['peak_reserved_bytes'] / GiB:.2f} GiB" if sw.on_gpu else "")
        + _allocator_note(entry["allocator"])
    )


def _generate(model, enc, new_tokens: int, pad: int, clock: StepClock | None = None):
    from transformers import LogitsProcessorList

    return model.generate(
        **enc,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        pad_token_id=pad,
        logits_processor=LogitsProcessorList([clock] if clock else []),
    )


class StepClock:
    """A logits processor that only reads the host clock: one timestamp per decoding step, no GPU work.
    generate() waits on the GPU every step (its finished-sequences check), so the gaps are step times. They
    tell a call slow throughout (host contention, clocks) from one slowed by a few long steps (an
    allocation, a first use of some kernel)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def __call__(self, input_ids, scores):
        self.stamps.append(time.perf_counter())
        return scores

    def summary(self) -> dict[str, Any]:
        gaps = sorted(1000 * (b - a) for a, b in itertools.pairwise(self.stamps))
        if not gaps:
            return {}
        median = statistics.median(gaps)
        return {
            "steps": len(gaps) + 1,
            "median_ms": median,
            "p90_ms": gaps[int(0.9 * (len(gaps) - 1))],
            "max_ms": gaps[-1],
            "slow_steps": sum(g > 2 * median for g in gaps),  # over twice the median
            "slow_ms": sum(g - median for g in gaps if g > 2 * median),
        }


# ----------------------------------------------------------------------------- the sweep


def sweep_cells(sw: Sweep) -> None:
    """Cells most wanted first, so a slow GPU loses the least useful ones to the time budget.

    Each swept batch size is settled by an untimed bare cell, then runs as a pair, the bare loop and the
    worker back to back, their order alternating from one batch to the next, so a drift in the GPU's state
    (clocks, temperature) falls on both sides of the harness comparison rather than on one. The second
    pass over the pairs follows at once, in reverse order with each pair flipped: the harness goal, the one
    still open after the H100 and H200 runs, needs both. Then auto and batch 1 under the memory cap; and
    with time left the sizes the plan expects to fail and the smallest batch it expects the cap to refuse.
    """
    scenario = get_scenario(sw.args.scenario)
    plan_max = largest_batch(str(sw.model_dir), scenario, sw.gpu, sw.args.max_new_tokens, None) or 10**9
    fitting = [b for b in sw.args.batch_sizes if b <= plan_max]
    for i, b in enumerate(fitting):
        if not sw.args.skip_bare:
            bare_cell(sw, b, True)
        pair(sw, b, bare_first=i % 2 == 0)
    for i, b in enumerate(reversed(fitting)):
        pair(sw, b, bare_first=(len(fitting) - 1 - i) % 2 == 1)
    if sw.args.only_pairs:
        return
    auto_cell(sw, plan_max)
    limit_cell(sw, 1)
    for i, b in enumerate(b for b in sw.args.batch_sizes if b > plan_max):
        pair(sw, b, bare_first=(len(fitting) + i) % 2 == 0)
    capped = limit_plan(sw)
    if sw.on_gpu and capped.status == "fits" and capped.max_batch:
        limit_cell(sw, capped.max_batch + 1)


def pair(sw: Sweep, batch: int, *, bare_first: bool) -> None:
    if sw.args.skip_bare:
        worker_cell(sw, batch)
    elif bare_first:
        bare_cell(sw, batch)
        worker_cell(sw, batch)
    else:
        worker_cell(sw, batch)
        bare_cell(sw, batch)
    if sw.args.ablate_sampler:
        worker_cell(sw, batch, False)


def limit_plan(sw: Sweep):
    return plan_cell(
        str(sw.model_dir),
        get_image("hf"),
        get_scenario(sw.args.scenario),
        sw.gpu,
        max(sw.prompt_lengths or [sw.args.prompt_tokens]),
        sw.args.max_new_tokens,
        int(sw.args.limit_gib * GiB),
    )


def estimate(sw: Sweep, batch: int, calls: float) -> float:
    """Seconds a cell of ``calls`` generate calls at ``batch`` should take: load, warmup and calls, from
    the median call measured at the nearest batch (30 s a call before anything is measured).

    Per-call time grows slowly with the batch on a GPU (decoding is bound by reading the weights):
    about batch^0.3 on the first H200 run, so a larger unmeasured batch is scaled up by batch^0.35."""
    seen: dict[int, list[float]] = {}
    for runs in (sw.bare, sw.worker, sw.worker_unsampled, sw.settled):
        for b, entries in runs.items():
            for e in entries:
                seen.setdefault(b, []).extend(e.get("batch_seconds") or [])
    # The median: a first call 3x slower than the rest must not make every later cell look unaffordable.
    measured = {b: statistics.median(seconds) for b, seconds in seen.items() if seconds}
    if not measured:
        return sw.load_seconds + 30.0 * (calls + 0.1) + 5
    at_least = [b for b in measured if b >= batch]
    ref = min(at_least) if at_least else max(measured)
    per_call = measured[ref] * max(1.0, batch / ref) ** 0.35
    return sw.load_seconds + per_call * (calls + 0.1) + 5


@guarded
def worker_cell(sw: Sweep, batch: int, sampler: bool = True) -> None:
    runs = (sw.worker if sampler else sw.worker_unsampled).setdefault(batch, [])
    name = f"bs{batch:03d}" + ("" if sampler else "-unsampled") + (f"-r{len(runs) + 1}" if runs else "")
    label = f"worker batch {batch}" + ("" if sampler else " without the memory sampler")
    if sw.affordable(label, estimate(sw, batch, -(-sw.docs_for(batch) // batch))):
        cell = run_cell(sw, name, request(sw, name, batch, limit=sw.docs_for(batch)), sampler=sampler)
        runs.append(cell)


@guarded
def limit_cell(sw: Sweep, batch: int) -> None:
    """One batch under --gpu-memory-limit: the plan's verdict beside what the worker recorded."""
    name = f"limit-bs{batch:03d}"
    limit = int(sw.args.limit_gib * GiB)
    if not sw.affordable(f"{sw.args.limit_gib:g} GiB cap at batch {batch}", estimate(sw, batch, 1)):
        return
    try:
        cell = run_cell(sw, name, request(sw, name, batch, limit=batch, gpu_memory_limit=limit))
    finally:
        if sw.on_gpu:
            import torch

            torch.cuda.set_per_process_memory_fraction(1.0)  # the cap outlives the cell in this process
    cell["gpu_memory_limit_bytes"] = limit
    cell["batch_size"] = batch
    sw.cells[name] = cell


@guarded
def auto_cell(sw: Sweep, plan_max: int) -> None:
    name = "auto"
    docs = min(plan_max, sw.args.auto_cap)
    if not sw.affordable("auto", estimate(sw, docs, 2.1)):  # with its settling call
        return
    if not sw.args.skip_bare:
        bare_cell(sw, docs, True, docs)
    cell = run_cell(sw, name, request(sw, name, "auto", limit=docs), max_batch_cap=sw.args.auto_cap)
    cell["capped"] = cell.get("planned_max_batch") is not None and cell["planned_max_batch"] > sw.args.auto_cap
    sw.cells[name] = cell


# ----------------------------------------------------------------------------- summary


def footprint(sw: Sweep, prompt_tokens: int) -> Footprint:
    return footprint_for(
        str(sw.model_dir), get_scenario(sw.args.scenario), sw.gpu, prompt_tokens, sw.args.max_new_tokens
    )


def _pct(predicted: float | None, measured: float | None) -> float | None:
    if not predicted or not measured:
        return None
    return (predicted - measured) / measured * 100


def memory_check(sw: Sweep, cell: dict | None, batch: int, tokens: int) -> dict:
    """The plan's peak for this batch beside the worker's measured one (GPU runs that completed)."""
    fp = footprint(sw, tokens)
    out: dict[str, Any] = {
        "prompt_tokens": tokens,
        "plan_allocated_bytes": fp.peak_allocated(batch),
        "plan_needed_bytes": fp.needed(batch),
    }
    if sw.on_gpu and cell and cell.get("status") == "completed":
        allocated, reserved = cell.get("peak_allocated_bytes"), cell.get("peak_reserved_bytes")
        out["measured_allocated_bytes"], out["measured_reserved_bytes"] = allocated, reserved
        # NVML's whole-device peak: reserved plus the CUDA context, and what a vLLM run is measured by.
        out["measured_device_bytes"] = cell.get("peak_device_bytes")
        out["allocated_error_pct"] = _pct(fp.peak_allocated(batch), allocated)
        out["reserved_error_pct"] = _pct(fp.needed(batch), reserved)
        grown = (allocated or 0) - fp.weights
        # How much more than the growing allocations the allocator held: the plan's FRAGMENTATION, measured.
        out["measured_fragmentation"] = ((reserved or 0) - fp.weights) / grown if grown > 0 else None
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _completed(entries: list[dict] | None) -> list[dict]:
    return [e for e in entries or [] if e.get("status") == "completed" and e.get("docs_per_second")]


def harness_row(worker: list[dict] | None, bare: list[dict] | None) -> dict:
    """The harness's cost at one batch size, from every completed pass on each side.

    ``overhead_pct``: how much faster the bare loop generated than the worker, by the worker's own
    docs/s (the time around its generate calls: tokenizing, generating, decoding). ``end_to_end_pct``:
    the same over everything after the model load (warmup, ROUGE, writing records, environment probes)
    against the bare loop's warmup and calls. Positive means the worker is slower.

    ``call_overhead_pct``: the worker's median generate call over the bare loop's, the measure the goal is
    judged by: a median shrugs off the one slow call a docs/s mean takes in whole."""
    w, b = _completed(worker), _completed(bare)
    w_dps = _mean([e["docs_per_second"] for e in w])
    b_dps = _mean([e["docs_per_second"] for e in b])
    w_calls = [x for e in w for x in e.get("batch_seconds") or []]
    b_calls = [x for e in b for x in e.get("batch_seconds") or []]
    w_med = statistics.median(w_calls) if w_calls else None
    b_med = statistics.median(b_calls) if b_calls else None
    w_run = _mean([e["wall_seconds"] - (e.get("load_seconds") or 0) for e in w if e.get("wall_seconds")])
    b_run = _mean([e["run_seconds"] for e in b if e.get("run_seconds")])
    return {
        "worker_docs_per_second": [e["docs_per_second"] for e in w],
        "bare_docs_per_second": [e["docs_per_second"] for e in b],
        "overhead_pct": (b_dps / w_dps - 1) * 100 if w_dps and b_dps else None,
        "end_to_end_pct": (w_run / b_run - 1) * 100 if w_run and b_run else None,
        "worker_call_median_seconds": w_med,
        "bare_call_median_seconds": b_med,
        "call_overhead_pct": (w_med / b_med - 1) * 100 if w_med and b_med else None,
        "worker_spread_pct": _spread(w_calls),
        "bare_spread_pct": _spread(b_calls),
        "in_call_pct": _in_call(w),
    }


def _in_call(cells: list[dict]) -> float | None:
    """What the worker added inside its own timed calls (tokenizing, moving inputs, decoding), over the
    model's generate time in those same calls: free of the call-to-call noise the pairs suffer."""
    timed = sum(e.get("generate_seconds") or 0 for e in cells)
    model = [e.get("model_generate_seconds") for e in cells]
    if not cells or None in model or not sum(model):  # type: ignore[arg-type]
        return None
    return (timed / sum(model) - 1) * 100  # type: ignore[arg-type]


def _spread(calls: list[float]) -> float | None:
    """How far apart one side's own calls were (slowest over fastest, minus 1): the floor under any
    difference between the two sides that can be believed."""
    return (max(calls) / min(calls) - 1) * 100 if len(calls) > 1 and min(calls) > 0 else None


def summarize(sw: Sweep, versions: dict) -> dict:
    lengths = sw.prompt_lengths or [sw.args.prompt_tokens]
    rows = []
    for b in sw.args.batch_sizes:
        workers, bares = sw.worker.get(b), sw.bare.get(b)
        cell = (_completed(workers) or workers or [None])[0]
        bare = (_completed(bares) or bares or [None])[0]
        row: dict[str, Any] = {
            "batch_size": b,
            "worker": [_brief(e) for e in workers or []],
            "bare": [_brief(e) for e in bares or []],
            "settle": [_brief(e) for e in sw.settled.get(b, [])],
            **harness_row(workers, bares),
        }
        if b in sw.worker_unsampled:
            unsampled = harness_row(sw.worker_unsampled[b], bares)
            row["unsampled"] = {
                "worker": [_brief(e) for e in sw.worker_unsampled[b]],
                "worker_docs_per_second": unsampled["worker_docs_per_second"],
                "overhead_pct": unsampled["overhead_pct"],
            }
        tokens = (cell or {}).get("max_input_tokens") or (bare or {}).get("max_input_tokens") or max(lengths)
        row["memory"] = memory_check(sw, cell, b, tokens)
        rows.append(row)

    conf = versions.get("allocator_conf")
    scenario = get_scenario(sw.args.scenario)
    capped = limit_plan(sw)
    auto_plan = largest_batch(str(sw.model_dir), scenario, sw.gpu, sw.args.max_new_tokens, None)
    auto = sw.cells.get("auto")
    auto_memory = (
        memory_check(sw, auto, auto["final_batch"], max(lengths)) if auto and auto.get("final_batch") else None
    )
    limited = []
    for name, cell in sorted(sw.cells.items()):
        if name.startswith("limit-bs"):
            batch = cell["batch_size"]
            fits = capped.status == "fits" and batch <= (capped.max_batch or 0)
            limited.append(
                {
                    "batch_size": batch,
                    "plan_fits": fits,
                    "result": _brief(cell),
                    "memory": memory_check(sw, cell, batch, max(lengths)),
                }
            )
    return {
        **versions,
        "gpu_catalog": sw.gpu.key,
        "arch": sw.args.arch,
        "scenario": sw.args.scenario,
        "prompt_tokens": {
            "target": sw.args.prompt_tokens,
            "min": min(lengths),
            "max": max(lengths),
            "mean": sum(lengths) / len(lengths),
        },
        "max_new_tokens": sw.args.max_new_tokens,
        "sweep": rows,
        "auto": {
            "planned_max_batch": auto_plan,
            "cap": sw.args.auto_cap,
            "result": _brief(auto),
            "settle": [_brief(e) for e in sw.settled.get(min(auto_plan or 0, sw.args.auto_cap), [])],
            "memory": auto_memory,
        },
        "memory_limit": {"limit_bytes": int(sw.args.limit_gib * GiB), "plan": capped.to_dict(), "cells": limited},
        "cuda_context": sw.cells.get("_context"),
        "gpu_warmup": sw.cells.get("_warm"),
        "constants": {"CUDA_CONTEXT_BYTES": CUDA_CONTEXT_BYTES, "FRAGMENTATION": FRAGMENTATION},
        "skipped": sw.skipped,
        "goals": goals(rows, auto, limited, expandable="expandable_segments:true" in str(conf).lower()),
        "elapsed_seconds": sw.log.elapsed(),
    }


def _brief(entry: dict | None) -> dict | None:
    if entry is None:
        return None
    keep = (
        "status",
        "documents",
        "docs_per_second",
        "batch_seconds",
        "peak_reserved_bytes",
        "peak_allocated_bytes",
        "peak_device_bytes",
        "error",
        "oom_events",
        "final_batch",
        "energy_joules",
        "cost_per_1k_docs_usd",
        "load_seconds",
        "wall_seconds",
        "run_seconds",
        "gpu_before",
        "gpu_after",
        "capped",
        "planned_max_batch",
        "allocator",
        "generate_seconds",
        "model_generate_seconds",
        "steps",
        "host",
    )
    return {k: entry[k] for k in keep if k in entry}


def harness_verdict(rows: list[dict]) -> tuple[bool | None, float | None, float | None]:
    """The 2% goal, judged only as far as the measurement can see: each batch's call overhead with a noise
    band of half the wider side's spread. Pass when every band lies inside the goal, fail when one lies
    wholly outside, otherwise None (not resolvable with these calls). Also the worst overhead and noise."""
    judged = [
        (r["call_overhead_pct"], max(r["bare_spread_pct"] or 0, r["worker_spread_pct"] or 0) / 2)
        for r in rows
        if r.get("call_overhead_pct") is not None
    ]
    if not judged:
        return None, None, None
    worst = max((o for o, _ in judged), key=abs)
    noise = max(n for _, n in judged)
    if any(abs(o) - n > HARNESS_GOAL_PCT for o, n in judged):
        return False, worst, noise
    if all(abs(o) + n <= HARNESS_GOAL_PCT for o, n in judged):
        return True, worst, noise
    return None, worst, noise


def auto_goals(rows: list[dict], auto: dict | None) -> dict:
    """The issue's goal for auto: at least 90% of the best swept batch's docs/s and 20x batch 1's (the
    worker's docs/s, mean of its passes)."""
    auto_dps = (auto or {}).get("docs_per_second") if (auto or {}).get("status") == "completed" else None
    swept = {r["batch_size"]: _mean(r["worker_docs_per_second"]) for r in rows if r["worker_docs_per_second"]}
    best = max(swept.values(), default=None)
    one = swept.get(1)
    vs_best = auto_dps / best * 100 if auto_dps and best else None
    vs_one = auto_dps / one if auto_dps and one else None
    return {
        "auto_vs_best_swept_pct": vs_best,
        "auto_at_least_90pct_of_best_swept": vs_best >= 90 if vs_best is not None else None,
        "auto_vs_batch_1_x": vs_one,
        "auto_at_least_20x_batch_1": vs_one >= 20 if vs_one is not None else None,
    }


def goals(rows: list[dict], auto: dict | None, limited: list[dict], *, expandable: bool = False) -> dict:
    """Pass/fail per goal; None where nothing was measured (a skipped cell, or a CPU run for memory) or the
    measurement cannot decide (harness noise wider than the goal; reserved memory under torch's default
    allocator, which keeps freed blocks up to the card's size: 78 GiB reserved for 25.5 GiB allocated at
    batch 32 on an H100, so reserved is compared with the plan only under expandable segments)."""
    overheads = [r["overhead_pct"] for r in rows if r["overhead_pct"] is not None]
    end_to_end = [r["end_to_end_pct"] for r in rows if r["end_to_end_pct"] is not None]
    alloc = [r["memory"]["allocated_error_pct"] for r in rows if r["memory"].get("allocated_error_pct") is not None]
    reserved = [r["memory"]["reserved_error_pct"] for r in rows if r["memory"].get("reserved_error_pct") is not None]
    at_one = next((c for c in limited if c["batch_size"] == 1), None)
    limit_ok = None
    if at_one and at_one["result"]:
        result = at_one["result"]
        ran = result.get("status") == "completed"
        oom = (result.get("error") or {}).get("error_class") == "OutOfMemoryError"
        limit_ok = ran if at_one["plan_fits"] else (oom and not ran)
    harness_ok, worst_call, noise = harness_verdict(rows)
    in_call = [r["in_call_pct"] for r in rows if r.get("in_call_pct") is not None]
    return {
        # Both ways: a worker "faster" than the bare loop by more than the goal is noise the goal cannot see past.
        "harness_overhead_within_2pct": harness_ok,
        "worst_call_overhead_pct": worst_call,
        "worst_in_call_overhead_pct": max(in_call, key=abs) if in_call else None,
        "harness_noise_pct": noise,
        "worst_harness_overhead_pct": max(overheads, key=abs) if overheads else None,
        "worst_end_to_end_overhead_pct": max(end_to_end, key=abs) if end_to_end else None,
        "plan_allocated_within_15pct": all(abs(e) <= MEMORY_GOAL_PCT for e in alloc) if alloc else None,
        "worst_allocated_error_pct": max(alloc, key=abs) if alloc else None,
        "plan_reserved_within_15pct": all(abs(e) <= MEMORY_GOAL_PCT for e in reserved)
        if reserved and expandable
        else None,
        "worst_reserved_error_pct": max(reserved, key=abs) if reserved else None,
        "auto_ran_at_plan_without_oom": (auto.get("status") == "completed" and not auto.get("oom_events"))
        if auto
        else None,
        **auto_goals(rows, auto),
        "memory_limit_batch_1_as_planned": limit_ok,
    }


def _gib(n: int | None) -> str:
    return f"{n / GiB:.2f}" if n else "-"


def _num(x: float | None, spec: str = ".3f") -> str:
    return format(x, spec) if x is not None else "-"


def _nums(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values) or "-"


def _status(result: dict | None) -> str:
    if not result:
        return "skipped"
    text = result.get("status", "?")
    if result.get("error"):
        text += f" ({result['error'].get('error_class')}: {result['error'].get('message', '')[:100]})"
    return text


def _call_overhead(row: dict) -> str:
    if row.get("call_overhead_pct") is None:
        return "-"
    noise = max(row["bare_spread_pct"] or 0, row["worker_spread_pct"] or 0) / 2
    return f"{row['call_overhead_pct']:+.2f}% ± {noise:.1f}%"


def _memory_cells(m: dict | None) -> str:
    """plan alloc | measured alloc | error | plan need | measured reserved | error | fragmentation"""
    m = m or {}
    return (
        f"| {_gib(m.get('plan_allocated_bytes'))} | {_gib(m.get('measured_allocated_bytes'))} "
        f"| {_num(m.get('allocated_error_pct'), '+.1f')}% | {_gib(m.get('plan_needed_bytes'))} "
        f"| {_gib(m.get('measured_reserved_bytes'))} | {_num(m.get('reserved_error_pct'), '+.1f')}% "
        f"| {_num(m.get('measured_fragmentation'), '.2f')} | {_gib(m.get('measured_device_bytes'))} "
    )


MEMORY_HEAD = (
    "plan alloc GiB | alloc GiB | error | plan need GiB | reserved GiB | error | fragmentation | device GiB (NVML)"
)


def markdown(summary: dict) -> str:
    s = summary
    lines = [
        f"# GPU sweep: {s['arch']} ({s['scenario']}) on {s['device_name']}",
        "",
        f"{s['date']} · torch {s['torch']} (CUDA {s['cuda']}) · transformers {s['transformers']} · "
        f"catalog GPU `{s['gpu_catalog']}` · prompts {s['prompt_tokens']['min']}-{s['prompt_tokens']['max']} tokens "
        f"· {s['max_new_tokens']} new tokens forced · {s['elapsed_seconds']:.0f} s in all",
        "",
        f"`{s['command']}`" + (f" · PYTORCH_CUDA_ALLOC_CONF={s['allocator_conf']}" if s.get("allocator_conf") else ""),
        "",
        "Memory columns: the plan's predicted `max_memory_allocated` beside the measured one; the plan's need "
        f"(allocated growth x FRAGMENTATION {s['constants']['FRAGMENTATION']}) beside `max_memory_reserved`; "
        "fragmentation = measured reserved growth / allocated growth beyond the weights.",
        "",
        "Harness overhead: the bare loop's docs/s over the worker's, minus 1 (positive: the worker is slower); "
        "end to end: the same over everything after the model load. Several docs/s values are several passes, "
        "the pair's order flipped in the second.",
        "",
        "| batch | docs | worker docs/s | bare docs/s | overhead | median call overhead ± noise | end to end "
        f"| {MEMORY_HEAD} | status |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in s["sweep"]:
        first = (r["worker"] or r["bare"] or [{}])[0]
        lines.append(
            f"| {r['batch_size']} | {first.get('documents', '-')} | {_nums(r['worker_docs_per_second'])} "
            f"| {_nums(r['bare_docs_per_second'])} | {_num(r['overhead_pct'], '+.2f')}% "
            f"| {_call_overhead(r)} "
            f"| {_num(r['end_to_end_pct'], '+.2f')}% "
            + _memory_cells(r["memory"])
            + "| "
            + "; ".join([f"worker {_status(e)}" for e in r["worker"]] + [f"bare {_status(e)}" for e in r["bare"]])
            + " |"
        )
    lines += _diagnostics(s["sweep"])
    auto, lim = s["auto"], s["memory_limit"]
    ar = auto["result"] or {}
    lines += [
        "",
        f"**--batch-size auto**: the plan's largest batch is {auto['planned_max_batch']}"
        + (f", capped at {auto['cap']} to bound the time" if ar.get("capped") else "")
        + f" → {_status(auto['result'])}, final batch {ar.get('final_batch', '-')}, "
        f"OOM events {ar.get('oom_events', '-')}, {_num(ar.get('docs_per_second'))} docs/s",
        "",
        f"**--gpu-memory-limit {lim['limit_bytes'] / GiB:g}GiB**: the plan says *{lim['plan']['verdict']}*",
        "",
        f"| cell | batch | plan | docs/s | {MEMORY_HEAD} | result |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    if auto["memory"]:
        lines.append(
            f"| auto | {ar.get('final_batch')} | fits | {_num(ar.get('docs_per_second'))} "
            + _memory_cells(auto["memory"])
            + f"| {_status(auto['result'])} |"
        )
    for c in lim["cells"]:
        lines.append(
            f"| {lim['limit_bytes'] / GiB:g} GiB cap | {c['batch_size']} "
            f"| {'fits' if c['plan_fits'] else 'does not fit'} "
            f"| {_num((c['result'] or {}).get('docs_per_second'))} "
            + _memory_cells(c["memory"])
            + f"| {_status(c['result'])} |"
        )
    lines += ["", "| goal | result |", "|---|---|"]
    for k, v in s["goals"].items():
        number = k.startswith("worst_") or k.endswith(("_pct", "_x"))
        shown = (
            f"{v:+.2f}"
            if isinstance(v, float)
            else {True: "pass", False: "FAIL", None: "-" if number else "undecided"}[v]
        )
        lines.append(f"| {k} | {shown} |")
    lines += [
        "",
        "*undecided*: nothing measured, or the measurement cannot decide: the harness goal needs each batch's "
        "median-call overhead, give or take half the wider side's call-to-call spread, wholly inside or wholly "
        "outside the goal; reserved memory is held against the plan only under expandable segments.",
    ]
    if s["cuda_context"]:
        c = s["cuda_context"]
        lines += [
            "",
            f"CUDA context and other memory outside torch: {_gib(c['non_torch_bytes'])} GiB; torch sees "
            f"{_gib(c['torch_total_memory_bytes'])} GiB in all (the plan assumes "
            f"{s['constants']['CUDA_CONTEXT_BYTES'] / GiB:g} GiB lost against the catalog's NVML total).",
        ]
    if s["skipped"]:
        lines += ["", "Skipped or failed steps:", *[f"- {x}" for x in s["skipped"]]]
    return "\n".join(lines) + "\n"


def _diagnostics(rows: list[dict]) -> list[str]:
    """Per-call seconds, host readings and allocator counters of every pass, and the worker without its
    memory sampler."""
    table = [
        "",
        "| batch | cell | pass | call seconds | step ms: median / p90 / max, steps over 2x median | host per call "
        "(benchmarks/call_probe.py) | cudaMalloc | alloc retries |",
        "|---:|---|---:|---|---|---|---:|---:|",
    ]
    notes = []
    for r in rows:
        unsampled = r.get("unsampled") or {}
        sides = [
            ("settle (untimed)", r.get("settle")),
            ("worker", r["worker"]),
            ("bare", r["bare"]),
            ("worker, no sampler", unsampled.get("worker", [])),
        ]
        for side, entries in sides:
            for i, e in enumerate(entries or [], 1):
                a = e.get("allocator") or {}
                calls = ", ".join(f"{x:.2f}" for x in e.get("batch_seconds") or []) or "-"
                steps = "; ".join(
                    f"{x['median_ms']:.1f} / {x['p90_ms']:.1f} / {x['max_ms']:.0f}, {x['slow_steps']}"
                    for x in e.get("steps") or []
                    if x
                )
                table.append(
                    f"| {r['batch_size']} | {side} | {i} | {calls} | {steps or '-'} "
                    f"| {'; '.join(probe_line(c) for c in e.get('host') or []) or '-'} "
                    f"| {a.get('num_device_alloc', '-')} | {a.get('num_alloc_retries', '-')} |"
                )
        if r.get("in_call_pct") is not None:
            notes.append(
                f"Batch {r['batch_size']}: inside its own timed calls the worker added {r['in_call_pct']:+.2f}% to "
                "the model's generate (tokenizing, moving inputs, decoding; the same calls, so no call-to-call noise)."
            )
        if unsampled:
            notes.append(
                f"Batch {r['batch_size']} without the memory sampler: worker docs/s "
                f"{_nums(unsampled['worker_docs_per_second'])}, overhead {_num(unsampled['overhead_pct'], '+.2f')}%."
            )
    return table + (["", *notes] if notes else [])


def versions(sw: Sweep, argv: list[str]) -> dict:
    import torch
    import transformers

    from runner.worker.environment import git_revision

    name = torch.cuda.get_device_name(0) if sw.on_gpu else platform.processor() or platform.machine()
    return {
        "device_name": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "git_revision": git_revision(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", *argv]),
        "allocator_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF"),
    }


def write_outputs(sw: Sweep, summary: dict) -> None:
    out = sw.args.out
    (out / "sweep.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "sweep.md").write_text(markdown(summary), encoding="utf-8")


def pack(sw: Sweep) -> None:
    """Run folders, model folder and dataset in one archive: the device returns few files."""
    with tarfile.open(sw.args.out / "runs.tar.gz", "w:gz") as tar:
        for path in (sw.scratch / "runs", sw.model_dir, sw.data):
            if path.exists():
                tar.add(path, arcname=path.name, filter=lambda t: None if t.name.endswith((".lock", ".reserve")) else t)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    args = parse_args(argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log(args.out / "sweep.log")
    if args.allocator_conf:
        os.environ["PYTORCH_CUDA_ALLOC_CONF"] = args.allocator_conf  # read when CUDA first allocates
    import torch  # after the options, so --help stays fast

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and args.max_new_tokens != STUDY_NEW_TOKENS:
        raise SystemExit(f"on a GPU the check is {STUDY_NEW_TOKENS} new tokens; --max-new-tokens is for CPU dry runs")
    if args.gpu:
        gpu = get_gpu(args.gpu)
    elif device == "cuda":
        props = torch.cuda.get_device_properties(0)
        found = match_gpu(props.name, props.total_memory)
        if found is None:
            raise SystemExit(f"{props.name} is not in the GPU catalog: pass --gpu KEY to plan for one")
        gpu = found
    else:
        gpu = get_gpu("h100")
    scratch = Path(tempfile.mkdtemp(prefix="gpu-sweep-"))
    sw = Sweep(
        args=args,
        log=log,
        device=device,
        gpu=gpu,
        scratch=scratch,
        model_dir=scratch / "model",
        data=scratch / "data.jsonl",
        probe=CallProbe(0 if device == "cuda" else None),
    )
    info = sw.info = versions(sw, argv)
    log(f"{info['device_name']} as catalog {gpu.key}; torch {info['torch']}, transformers {info['transformers']}")
    signal.signal(signal.SIGTERM, _stop)

    records = [json.loads(line) for line in SAMPLE_DATASET.read_text(encoding="utf-8").splitlines() if line.strip()]
    prepare_model(args.arch, sw.model_dir, [r["document"] for r in records])
    n_docs = max([sw.docs_for(b) for b in args.batch_sizes] + [args.auto_cap])
    build_dataset(sw, records, n_docs)
    log(f"dataset: {n_docs} documents, prompts {min(sw.prompt_lengths)}-{max(sw.prompt_lengths)} tokens")
    fp = footprint(sw, max(sw.prompt_lengths))
    log(
        f"plan: weights {fp.weights / GiB:.2f} GiB, KV {fp.kv_per_sequence / GiB:.3f} GiB per sequence, largest batch "
        f"{largest_batch(str(sw.model_dir), get_scenario(args.scenario), gpu, args.max_new_tokens, None)}"
    )
    code = 0
    try:
        warm_gpu(sw)
        sweep_cells(sw)
    except KeyboardInterrupt as exc:
        sw.skipped.append(f"the sweep was stopped: {exc}")
        log(sw.skipped[-1])
        code = 130
    finally:
        summary = summarize(sw, info)
        write_outputs(sw, summary)
        pack(sw)
        sw.probe.close()
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"goals: {json.dumps(summary['goals'])}")
    log(f"wrote {', '.join(sorted(p.name for p in args.out.iterdir()))} to {args.out}")
    return code


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


if __name__ == "__main__":
    sys.exit(main())
