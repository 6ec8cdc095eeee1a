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
