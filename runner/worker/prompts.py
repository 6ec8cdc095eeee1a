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


def warmup_batch(batch: list[str], lengths: list[int], shortest: tuple[str, int] | None) -> list[str]:
    """The prompts of the untimed warm-up call: the first timed batch, its last prompt swapped for the run's
    ``shortest`` (prompt, tokens) when this batch needs no padding but a later one will.

    A batch of equal-length prompts needs no attention mask, and transformers then drops it; a padded batch
    takes another attention kernel, whose first use in a process cost as much as the first call itself on
    an H200 (docs/metrics.md, Warm-up). The swap keeps the batch's shape (padded to its longest prompt) and
    moves that first use from a timed call into the warm-up."""
    if shortest is None or len(batch) < 2 or min(lengths) != max(lengths) or shortest[1] >= lengths[0]:
        return batch
    return [*batch[:-1], shortest[0]]
