"""Prompts: the model's chat template when it has one, a plain template otherwise."""

from __future__ import annotations

INSTRUCTION = "Summarize the following article in a few sentences."
DEFAULT_TEMPLATE = "{instruction}\n\n{document}\n\nSummary:"


def build_prompt(tokenizer, document: str, template: str | None = None) -> str:
    """The text fed to the model for one document.

    An explicit ``template`` (with ``{document}`` and optionally ``{instruction}``) wins; otherwise a
    chat model gets its own chat template, as the original study's Llama-2-chat did.
    """
    if template:
        return template.format(instruction=INSTRUCTION, document=document)
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": f"{INSTRUCTION}\n\n{document}"}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return DEFAULT_TEMPLATE.format(instruction=INSTRUCTION, document=document)


def warmup_batches(batch: list[str], lengths: list[int], shortest: tuple[str, int] | None) -> list[list[str]]:
    """The prompts of the untimed warm-up calls: the first timed batch, and when that batch needs no padding
    but a later one will, the same batch again with its last prompt swapped for the run's ``shortest``
    (prompt, tokens), so both attention paths are warmed.

    A batch of equal-length prompts needs no attention mask, and transformers then drops it; a padded batch
    passes one, and SDPA takes another kernel for it. Each path's first use in a process cost about as much
    as the first call itself on an H200 (docs/metrics.md, Warm-up). The swapped batch keeps the shape
    (padded to its longest prompt) and moves the padded path's first use out of the timed calls."""
    if shortest is None or len(batch) < 2 or min(lengths) != max(lengths) or shortest[1] >= lengths[0]:
        return [batch]
    return [batch, [*batch[:-1], shortest[0]]]
