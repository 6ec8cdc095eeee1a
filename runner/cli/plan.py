"""``runner plan``: what fits on a GPU, per image and scenario, before anything is launched."""

from __future__ import annotations

import json

import click

from runner.cli.types import BYTE_SIZE
from runner.contract.defaults import MAX_NEW_TOKENS, PROMPT_TOKENS
from runner.contract.errors import UserError


@click.command()
@click.option(
    "--model",
    required=True,
    help="Built-in architecture (llama-2-7b, ...), known hub id, or a folder with config.json.",
)
@click.option("--gpu", required=True, help="GPU type from the catalog (`runner catalog gpus`): t4, a100-80gb, ...")
@click.option(
    "--prompt-tokens",
    type=click.IntRange(1),
    default=PROMPT_TOKENS,
    show_default=True,
    help=f"Prompt length to plan for (template included); {PROMPT_TOKENS} is the original study's mean.",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(1),
    default=MAX_NEW_TOKENS,
    show_default=True,
    help="Output tokens per summary to plan for: the KV cache holds the prompt and all of them.",
)
@click.option("--gpu-memory-limit", type=BYTE_SIZE, help="Plan for a capped allocator, as `launch --gpu-memory-limit`.")
@click.option("--image", "images", multiple=True, help="Only these images (repeatable).")
@click.option("--scenario", "scenarios", multiple=True, help="Only these scenarios (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON instead of a table.")
def plan(
    model: str,
    gpu: str,
    prompt_tokens: int,
    max_new_tokens: int,
    gpu_memory_limit: int | None,
    images: tuple[str, ...],
    scenarios: tuple[str, ...],
    as_json: bool,
) -> None:
    """For every image and each scenario it runs: incompatible (and why), does not fit (by how much), or
    fits up to batch N, with the weights and the KV cache one sequence needs.

    The numbers are arithmetic on the model's shape; nothing is downloaded or loaded.

    \b
    Examples:
      runner plan --model llama-2-7b --gpu t4
      runner plan --model meta-llama/Llama-2-7b-chat-hf --gpu t4 --image hf-bnb --scenario 4-bit
      runner plan --model .cache/tiny-llama --gpu cpu --max-new-tokens 64 --json
      runner plan --model llama-3-8b --gpu h100 --gpu-memory-limit 24GiB
    """
    from runner.contract import catalog
    from runner.contract.architectures import describe_model
    from runner.memory_plan import context_overflow, plan_all, resolve_shape

    target = catalog.get_gpu(gpu)
    if gpu_memory_limit is not None:
        from runner.launching import gpu_memory_limit_problem

        if problem := gpu_memory_limit_problem(gpu_memory_limit, target.key):
            raise UserError(problem)
    for name in images:
        catalog.get_image(name)
    if scenarios:
        from runner.scenarios import get_scenario

        for name in scenarios:
            get_scenario(name)
    shape = resolve_shape(model)
    plans = plan_all(model, target, prompt_tokens, max_new_tokens, gpu_memory_limit, images, scenarios)
    if not plans:
        raise _nothing_to_plan(images, scenarios)
    overflow = context_overflow(shape, prompt_tokens, max_new_tokens)
    if overflow and as_json:  # stdout holds the JSON alone
        click.secho(f"warning: {model}: {overflow}", fg="yellow", err=True)
    plans, hidden = (plans, 0) if images else _same_device_kind(plans, target)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": model,
                    "model_source": describe_model(model),
                    "parameters": shape.params,
                    "context_length": shape.context_length,
                    "exceeds_context": overflow is not None,
                    "gpu": target.key,
                    "prompt_tokens": prompt_tokens,
                    "max_new_tokens": max_new_tokens,
                    "gpu_memory_limit_bytes": gpu_memory_limit,
                    "cells": [p.to_dict() for p in plans],
                },
                indent=2,
            )
        )
        return
    _print_table(model, shape.params, target, prompt_tokens, max_new_tokens, gpu_memory_limit, plans)
    if overflow:  # under the table it warns about, not apart from it on stderr
        click.secho(f"warning: {model}: {overflow}", fg="yellow")
    if hidden:
        kind = "CUDA GPUs" if target.is_cpu else "the CPU"
        click.echo(f"({hidden} cells of images built for {kind} left out: name one with --image to see it)")


def _same_device_kind(plans: list, target) -> tuple[list, int]:
    """The plans of images built for the target's kind of device (CPU or CUDA GPU), and how many others
    were left out: an image for the other kind is noise unless named with --image. All of them where
    none is left (``--scenario vllm --gpu cpu``): then the reasons are the answer."""
    from runner.contract import catalog

    keep = [p for p in plans if (catalog.get_image(p.image).device == "cpu") == target.is_cpu]
    return (keep, len(plans) - len(keep)) if keep else (plans, 0)


def _nothing_to_plan(images: tuple[str, ...], scenarios: tuple[str, ...]) -> UserError:
    """The --image/--scenario filters left no cell: say which image runs what, as `launch` does."""
    from runner.contract import catalog

    named = [catalog.get_image(name) for name in images] or list(catalog.images().values())
    wanted = ", ".join(scenarios)
    return UserError(
        "; ".join(
            f"image {image.key} does not run scenario{'s' if len(scenarios) > 1 else ''} {wanted} "
            f"(it runs: {', '.join(image.scenarios)})"
            for image in named
        )
    )


def format_count(n: int) -> str:
    """A parameter count as people write it: 6.74B for Llama-2-7B, 336K for the tiny test model."""
    for scale, unit, digits in ((1e9, "B", 2), (1e6, "M", 2), (1e3, "K", 0)):
        if n >= scale:
            return f"{n / scale:.{digits}f}{unit}"
    return str(n)


def _print_table(model, params, gpu, prompt_tokens, max_new_tokens, limit, plans) -> None:
    from rich.markup import escape
    from rich.table import Table

    from runner.console import fmt_bytes, stdout_console
    from runner.contract.architectures import describe_model
    from runner.memory_plan import FRAGMENTATION, FRAGMENTATION_DEFAULT_ALLOCATOR, GiB

    limit_text = f", memory capped at {limit / GiB:.1f} GiB" if limit else ""
    table = Table(
        "image",
        "scenario",
        "dtype",
        "weights",
        "KV / sequence",
        "plan",
        title=f"{escape(model)} ({escape(describe_model(model))}, {format_count(params)} parameters) on {gpu.name}: "
        f"{prompt_tokens} prompt + {max_new_tokens} new tokens{limit_text}",
        caption=None
        if gpu.is_cpu
        else f"hf batch sizes keep {FRAGMENTATION - 1:.0%} headroom on the KV cache and activations for the "
        f"CUDA allocator's fragmentation, with the worker's expandable segments "
        f"({FRAGMENTATION_DEFAULT_ALLOCATOR - 1:.0%} under torch's default allocator)",
    )
    for column in table.columns[:2]:
        column.no_wrap = True  # the names `launch --image/--scenario` takes
    styles = {"incompatible": "red", "does_not_fit": "yellow", "fits": "green", "unplanned": "dim"}
    for p in plans:
        style = styles[p.status]
        verdict = f"[{style}]{escape(p.verdict())}[/{style}]"
        if p.notes:
            verdict += "\n[dim]" + escape("\n".join(f"note: {n}" for n in p.notes)) + "[/dim]"
        table.add_row(
            p.image,
            p.scenario,
            p.dtype,
            fmt_bytes(p.weights_bytes),
            fmt_bytes(p.kv_per_sequence_bytes),
            verdict,
        )
    stdout_console().print(table)
