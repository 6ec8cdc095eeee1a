"""Named scenarios: the original study's rows, as typed settings for one backend.

A scenario says *what* runs (dtype, attention kernel, quantization); an image says *where* it can run.
The worker never guesses from a name: it receives these fields in ``RunConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.contract.errors import unknown_name


@dataclass(frozen=True)
class Scenario:
    name: str
    backend: str
    dtype: str
    attention: str | None
    quantization: str | None
    description: str
    sdpa_backend: str | None = None
    """Restrict PyTorch SDPA to one of its kernels (``torch.nn.attention.SDPBackend`` name, e.g. FLASH_ATTENTION)."""
    compile: bool = False
    """Static KV cache and ``torch.compile`` of the decoding step (transformers' generate)."""
    serving: bool = False
    """A server driven under load (docs/serving.md) rather than batches handed to a library."""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("default", "hf", "float16", "sdpa", None, "transformers fp16, PyTorch SDPA attention"),
        Scenario("eager", "hf", "float16", "eager", None, "transformers fp16, eager (unfused) attention"),
        Scenario("bf16", "hf", "bfloat16", "sdpa", None, "transformers bf16, SDPA attention"),
        Scenario("fp32", "hf", "float32", "sdpa", None, "transformers fp32 (CPU reference)"),
        Scenario("flash-attn", "hf", "float16", "flash_attention_2", None, "transformers fp16, FlashAttention-2"),
        Scenario("4-bit", "hf", "float16", "sdpa", "bnb-nf4", "bitsandbytes NF4 weights, fp16 compute"),
        Scenario("8-bit", "hf", "float16", "sdpa", "bnb-int8", "bitsandbytes LLM.int8() weights"),
        Scenario("flash-4bit", "hf", "float16", "flash_attention_2", "bnb-nf4", "FlashAttention-2 with NF4 weights"),
        Scenario(
            "sdpa-flash",
            "hf",
            "float16",
            "sdpa",
            None,
            "transformers fp16, SDPA held to PyTorch's own FlashAttention-2 kernel (no flash-attn wheel); batch 1",
            sdpa_backend="FLASH_ATTENTION",
        ),
        Scenario(
            "hf-compile",
            "hf",
            "float16",
            "sdpa",
            None,
            "transformers fp16, static KV cache + torch.compile; compile time reported apart",
            compile=True,
        ),
        Scenario("vllm", "vllm", "float16", None, None, "vLLM offline engine, fp16"),
        Scenario("vllm-awq", "vllm", "float16", None, "awq", "vLLM serving an AWQ 4-bit checkpoint"),
        Scenario("vllm-serve", "vllm", "float16", None, None, "vllm serve (OpenAI API) under load, fp16", serving=True),
        Scenario(
            "endpoint",
            "endpoint",
            "server's own",
            None,
            None,
            "any running OpenAI-compatible server (--endpoint URL) under load",
            serving=True,
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise unknown_name("scenario", name, SCENARIOS) from None
