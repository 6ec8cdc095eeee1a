"""The bare-loop yardstick: what ``model.generate`` alone does at batch B, to hold the worker's docs/s against.

It loads the model as the worker does (``from_pretrained``, or from its config with random weights for
``--synthetic-weights``), reads the documents with the worker's reader (``runner.contract.datasets``) and
builds the same prompts (``runner.worker.prompts``), batches them in the worker's order (longest prompt
first) and times each ``generate`` call between device syncs. Nothing else of sumbench runs: beyond those
two standard-library modules, only torch and transformers are needed (a built-in architecture name with synthetic
weights also trains the worker's stand-in tokenizer, which needs the rest of sumbench).

First the worker's warm-up calls (``warmup_batches``: the first batch, and when it is unpadded but a later
batch is not, that batch with the shortest prompt in it), untimed in the rate; then ``calls`` calls over
the batches in turn. ``settled_docs_per_second`` is the rate of those, as the worker's docs/s leaves out
its warm-up. Output is one JSON object on stdout (and in ``--out`` when given).

``--profile`` names what a first use costs: each warm-up call, and then the last one again, run under
torch's profiler (host side, where cuDNN builds its plans); the ops that took most of each call's own
time go into ``warmup_profile``. The timed calls are never profiled.

    python benchmarks/yardstick.py --model DIR --data data/howto-sample.jsonl --batch-size 4 --calls 3
    python benchmarks/yardstick.py --model DIR --synthetic-weights --batch-size 32 --calls 3 --max-new-tokens 300
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.contract.datasets import load_dataset
from runner.worker.prompts import build_prompt, warmup_batches


def load(model: str, device: str, dtype: str, synthetic: bool, texts: list[str]) -> tuple[Any, Any]:
    """(model, tokenizer) as the worker's hf backend loads them, tokenizer padding on the left."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    folder = Path(model)
    if (folder / "tokenizer.json").is_file() or not synthetic:
        tokenizer = AutoTokenizer.from_pretrained(model)
    else:  # a built-in architecture name: the worker's stand-in tokenizer, trained on the documents
        from runner.worker.models import load_tokenizer

        tokenizer = load_tokenizer(model, True, texts)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if synthetic:
        if folder.is_dir():
            config = AutoConfig.from_pretrained(model)
        else:
            from transformers import LlamaConfig

            from runner.contract.architectures import BUILTIN_CONFIGS

            config = LlamaConfig(bos_token_id=1, eos_token_id=2, **BUILTIN_CONFIGS[model])
        with torch.device(device):
            net = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    else:
        device_map = {"": device} if device != "cpu" else None
        net = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype, device_map=device_map)
    net.eval()
    return net, tokenizer


def measure(
    model: str,
    texts: list[str],
    *,
    batch_size: int,
    calls: int,
    max_new_tokens: int,
    device: str = "cpu",
    dtype: str = "float32",
    synthetic: bool = False,
    cudnn_sdpa: bool = True,
    profile: bool = False,
    prompt_template: str | None = None,
) -> dict[str, Any]:
    """Load, warm up as the worker does, then ``calls`` timed generate calls at ``batch_size``; per-call
    seconds and settled docs/s.

    Output length is forced to ``max_new_tokens`` (min = max), as the worker forces it for synthetic
    weights: a bare loop and a worker run then do the same work whatever the model says."""
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    t_load = time.perf_counter()
    if not cudnn_sdpa:  # a diagnosis: is a first use cuDNN building plans for SDPA's shapes?
        torch.backends.cuda.enable_cudnn_sdp(False)
    net, tokenizer = load(model, device, dtype, synthetic, texts)
    load_seconds = time.perf_counter() - t_load
    prompts = [build_prompt(tokenizer, t, prompt_template) for t in texts]
    bos = tokenizer.bos_token
    special = not (bos and all(p.startswith(bos) for p in prompts))  # as the worker: one BOS, not two
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=special)["input_ids"]]
    ordered = sorted(zip(prompts, lengths, strict=True), key=lambda x: -x[1])
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    full = [b for b in batches if len(b) == batch_size] or batches
    warm = warmup_batches([p for p, _ in full[0]], [n for _, n in full[0]], full[-1][-1])
    schedule = [full[i % len(full)] for i in range(calls)]
    timed = [[p for p, _ in batch] for batch in schedule]

    def call(batch: list[str]) -> float:
        enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=special).to(net.device)
        sync()
        t0 = time.perf_counter()
        with torch.inference_mode():
            net.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        sync()
        return time.perf_counter() - t0

    profiles: list[dict[str, Any]] = []
    if profile:
        warmup = [profiled(call, batch, f"warm-up {i}", profiles) for i, batch in enumerate(warm, 1)]
        profiled(call, warm[-1], f"warm-up {len(warm)} again", profiles)  # the same call once it is no first use
    else:
        warmup = [call(batch) for batch in warm]
    settled = [call(batch) for batch in timed]
    size = len(full[0])
    return {
        "model": model,
        "device": device,
        "dtype": dtype,
        "batch_size": size,
        "max_new_tokens": max_new_tokens,
        "calls": calls,
        "load_seconds": load_seconds,
        "warmup_call_seconds": warmup,
        "call_seconds": settled,
        "call_padded_tokens": [batch[0][1] for batch in schedule],  # longest first: its first prompt's length
        "settled_median_seconds": statistics.median(settled),
        "settled_docs_per_second": size * len(settled) / sum(settled),
        "cudnn_sdpa": torch.backends.cuda.cudnn_sdp_enabled(),
        "torch": torch.__version__,
        **({"warmup_profile": profiles} if profile else {}),
    }


PROFILE_TOP = 12  # ops kept per profiled call: the first-use cost, if it is one op's, is among the first few


def profiled(call, batch: list[str], name: str, into: list[dict[str, Any]]) -> float:
    """``call(batch)`` under torch's profiler (host side); appends the call's seconds and its ops that took
    the most self time (their own, not their children's) to ``into``. Returns the seconds."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        seconds = call(batch)
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:PROFILE_TOP]
    top = [{"op": e.key, "calls": e.count, "self_seconds": round(e.self_cpu_time_total / 1e6, 4)} for e in ops]
    into.append({"call": name, "seconds": seconds, "top_self_time": top})
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint folder, or a built-in name with --synthetic-weights")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "data/howto-sample.jsonl")
    parser.add_argument("--limit", type=int, help="use the first N documents")
    parser.add_argument("--text-field")
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--calls", type=int, default=3, help="timed calls after the warm-up (default 3)")
    parser.add_argument("--max-new-tokens", type=int, default=300)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--synthetic-weights", action="store_true")
    parser.add_argument("--no-cudnn-sdpa", action="store_true", help="keep SDPA off its cuDNN kernel (a diagnosis)")
    parser.add_argument("--profile", action="store_true", help="profile the warm-up calls: what a first use costs")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    # The worker's own reader: the same field mapping and the same first documents.
    dataset = load_dataset(args.data, text_field=args.text_field, limit=args.limit, require_summary=False)
    texts = [d.text for d in dataset.documents]
    result = measure(
        args.model,
        texts,
        batch_size=args.batch_size,
        calls=args.calls,
        max_new_tokens=args.max_new_tokens,
        device=args.device,
        dtype=args.dtype,
        synthetic=args.synthetic_weights,
        cudnn_sdpa=not args.no_cudnn_sdpa,
        profile=args.profile,
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
