"""Options that describe what a cell runs, shared by `runner launch` and `runner matrix`.

One definition keeps the two commands' names, defaults and help identical: a cell launched alone and
the same cell in a matrix are configured by the same words.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from runner.cli.types import BYTE_SIZE
from runner.contract.defaults import MAX_NEW_TOKENS
from runner.paths import SAMPLE_DATASET


class RequiredUnless(click.Option):
    """An option a command needs unless another option stands in for it (``launch --resume``, ``matrix
    --collect``). click cannot declare that, so the command checks it; this only makes --help say it,
    per command, where a plain ``required=True`` would print ``[required]`` and refuse the other form."""

    def __init__(self, *args, unless: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unless = unless

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        other = self.unless.get(ctx.command.name)
        if record is None or other is None:
            return record
        return record[0], f"{record[1]}  [required unless {other}]"


CELL_OPTIONS: list[Callable] = [
    click.option(
        "--model",
        cls=RequiredUnless,
        unless={"launch": "--resume", "matrix": "--collect"},
        help="Checkpoint folder, hub id, or with --synthetic-weights a built-in architecture.",
    ),
    click.option(
        "--base-model",
        help="For a pre-quantized checkpoint (AWQ): the model it was made from, as its runs name it (folder "
        "name or hub id); the quality gate and `runner compare` then hold it against that model's runs.",
    ),
    click.option(
        "--data",
        default=str(SAMPLE_DATASET),
        show_default="bundled how-to sample",
        type=click.Path(dir_okay=False),
        help="Dataset JSONL.",
    ),
    click.option(
        "--max-new-tokens",
        type=click.IntRange(1),
        default=MAX_NEW_TOKENS,
        show_default=True,
        help="Most tokens generated per summary; a summary ends sooner at the model's end-of-sequence token, "
        "except with --synthetic-weights, where every summary is this long.",
    ),
    click.option(
        "--max-input-tokens",
        type=click.IntRange(1),
        default=4096,
        show_default=True,
        help="Longer prompts are skipped and counted, never truncated; so are prompts that leave the model's "
        "context (its config.json) no room for --max-new-tokens. More than --max-skipped-fraction of them "
        "skipped fails the run, or is refused at launch when the host can tell.",
    ),
    click.option(
        "--max-skipped-fraction",
        type=click.FloatRange(0, 1),
        default=0.1,
        show_default=True,
        help="Share of the documents that may be skipped as too long (see --max-input-tokens) before the "
        "run fails: 0 allows none, 1 any.",
    ),
    click.option("--limit", type=click.IntRange(1), help="Use only the first N documents."),
    click.option(
        "--synthetic-weights",
        is_flag=True,
        help="Random weights of the model's architecture (no download); forces output length, quality not meaningful. "
        "A quantized scenario loads a random checkpoint written once to $SUMBENCH_SYNTHETIC_CACHE "
        "(default: $HF_HOME/sumbench-synthetic).",
    ),
    click.option("--text-field", help="Dataset field holding the document (default: detect)."),
    click.option("--summary-field", help="Dataset field holding the reference summary (default: detect)."),
    click.option("--id-field", help="Dataset field holding the id (default: detect, else line numbers)."),
    click.option(
        "--prompt-template", help="Prompt with {document} (and {instruction}); default: the model's chat template."
    ),
    click.option(
        "--gpu-memory-limit",
        type=BYTE_SIZE,
        help="Cap usable GPU memory (with a unit: 16GiB) to reproduce a smaller card.",
    ),
    click.option(
        "--kv-cache-memory",
        type=BYTE_SIZE,
        help="vLLM: KV cache size (with a unit: 4GiB) instead of --gpu-memory-utilization's share (default: "
        "vLLM's choice on a GPU; 1GiB on a CPU, where vLLM would take 0.9 of the host's memory).",
    ),
    click.option(
        "--gpu-memory-utilization",
        type=click.FloatRange(0, 1, min_open=True),
        default=0.9,
        show_default=True,
        help="vLLM: share of GPU memory for weights, activations and KV cache (on a CPU, of host memory).",
    ),
    click.option(
        "--vllm-enforce-eager",
        is_flag=True,
        help="vLLM: no CUDA graphs / torch.compile (faster start, usually slower generation).",
    ),
    click.option(
        "--warmup",
        type=click.Choice(["full", "short", "none"]),
        default="full",
        show_default=True,
        help="Untimed call before timing, at each batch size: 'full' runs the first batch at the full output "
        "length, so docs/s is the steady state (costs one batch: a run of N batches takes 1/N longer); 'short' "
        "only 4 new tokens (first-use costs then land in the first timed call); 'none' times the first call too. "
        "Recorded; the end-to-end time (load + warm-up + calls) is reported either way.",
    ),
    click.option(
        "--max-batch-size",
        type=click.IntRange(1),
        help="Upper bound for --batch-size auto, taken as given (default: the memory plan; on a CPU 8, and at "
        "least two batches).",
    ),
]


def cell_options(command: Callable) -> Callable:
    """Add every cell option to a click command, in the order above."""
    for option in reversed(CELL_OPTIONS):
        command = option(command)
    return command
