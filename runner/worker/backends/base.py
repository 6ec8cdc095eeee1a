"""The backend interface: the only place the libraries differ.

Timing, batching, memory tracking, ROUGE and result writing live outside backends, once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from runner.contract.schema import BackendInfo, RunConfig


@dataclass(frozen=True)
class Generation:
    text: str
    output_tokens: int
    # The engine refused the prompt (vLLM: over its context length) and generated nothing: the run
    # counts it in metrics.skipped_by_backend instead of recording an empty summary.
    skipped: bool = False
    ttft_s: float | None = None
    """Seconds from the call's start to this output's first token (prefill), where the backend can tell."""
    tpot_s: float | None = None
    """Seconds per output token after the first, up to this output's last (decode); None for one token."""


class Backend(ABC):
    """Load a model, count prompt tokens, and generate greedily for a batch of prompts."""

    # Whether the model's GPU memory belongs to the worker's own process, where torch's counters see it.
    memory_in_process = True
    # Whether a batch's prompts are padded to its longest (then an unpadded and a padded batch take two
    # attention paths, and the warm-up covers both: runner.worker.prompts.warmup_batches).
    pads_batches = False
    last_model_seconds: float | None = None
    """Of the last ``generate`` call, the seconds inside the model's own generate, for a backend that can
    tell them from its tokenizing and decoding; the run loop records them beside each call's time."""
    last_padded_tokens: int | None = None
    """Of the last ``generate`` call, the prompt length its batch was padded to (its longest prompt), for a
    backend that pads (``pads_batches``): the call's shape, which first-use costs on a GPU depend on."""

    def __init__(self, config: RunConfig, device: str, texts: list[str]) -> None:
        self.config = config
        self.device = device
        self.texts = texts  # the run's documents: synthetic weights train a stand-in tokenizer on them
        self.tokenizer = None

    @abstractmethod
    def load(self) -> BackendInfo:
        """Load tokenizer and model; report what actually runs (dtype, attention, quantization)."""

    @abstractmethod
    def prompt_lengths(self, prompts: list[str]) -> list[int]:
        """Tokens in each prompt as the model will see it."""

    @abstractmethod
    def generate(self, prompts: list[str], max_new_tokens: int) -> list[Generation]:
        """Greedy generation; ``config.force_output_length`` makes every output ``max_new_tokens`` long."""

    def warmup(self, prompts: list[str], max_new_tokens: int) -> None:
        """Run once untimed before the first timed batch at a batch size; by default the same batch, so
        kernels compile and the batch's memory is allocated (an out-of-memory error shows up here)."""
        self.generate(prompts, max_new_tokens)

    def compile_seconds(self) -> tuple[float, float] | None:
        """Seconds spent compiling the model since load, and of them those inside timed calls; None for a
        backend or scenario that compiles nothing (or cannot tell)."""
        return None

    def max_prompt_tokens(self) -> int | None:
        """Longest prompt the loaded engine accepts, if it has its own limit."""
        return None

    def is_out_of_memory(self, exc: BaseException) -> bool:
        return isinstance(exc, MemoryError)

    def free_memory(self) -> None:
        """Release cached memory after an out-of-memory error, before a smaller retry."""

    def synchronize(self) -> None:
        """Wait for queued device work, so wall-clock timings cover it."""
