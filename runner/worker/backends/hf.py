"""Hugging Face transformers: fp16/bf16/fp32, eager/SDPA/FlashAttention-2, bitsandbytes 4- and 8-bit.

Real checkpoints and ``runner model tiny`` models load through the same ``from_pretrained`` call;
``--synthetic-weights`` builds the architecture from its config with random weights instead.
"""

from __future__ import annotations

import gc
import logging
import time

from runner.schema import BackendInfo
from runner.worker.backends.base import Backend, Generation
from runner.worker.models import load_tokenizer, synthetic_config

log = logging.getLogger(__name__)


class TokenClock:
    """A logits processor that stamps the host clock at each decoding step, changing no score.

    generate() calls it once per forward pass, after the logits of the next token exist: the first stamp
    ends the prefill, stamp k the step that chose token k+1. Only the first stamp waits for the device
    (one sync a call); the later ones need not, because generate() already waits on the GPU every step to
    check for finished sequences. Cost: a Python call and a clock read per step, microseconds against
    steps of milliseconds."""

    def __init__(self, synchronize) -> None:
        self.synchronize = synchronize
        self.start = 0.0
        self.stamps: list[float] = []

    def __call__(self, input_ids, scores):
        if not self.stamps:
            self.synchronize()
        self.stamps.append(time.perf_counter())
        return scores

    def first_token(self) -> float | None:
        return self.stamps[0] - self.start if self.stamps else None

    def per_token(self, tokens: int) -> float | None:
        """Seconds per token after the first, for an output of ``tokens`` (it ended at stamp tokens-1)."""
        last = min(tokens, len(self.stamps)) - 1
        return (self.stamps[last] - self.stamps[0]) / last if last >= 1 else None


class HFBackend(Backend):
    def load(self) -> BackendInfo:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM

        cfg = self.config
        dtype = getattr(torch, cfg.dtype)
        self.tokenizer = load_tokenizer(cfg.model, cfg.synthetic_weights, self.texts)
        self.tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token

        kwargs: dict = {"attn_implementation": cfg.attention} if cfg.attention else {}
        # transformers 5 renamed torch_dtype to dtype; both spellings reach the same code.
        kwargs["dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"] = dtype
        quant = self._quantization_config(dtype)
        if quant is not None:
            kwargs["quantization_config"] = quant

        if cfg.synthetic_weights:
            config = synthetic_config(cfg.model)
            with torch.device(self.device):
                self.model = AutoModelForCausalLM.from_config(config, **kwargs)
        else:
            device_map = {"": self.device} if self.device != "cpu" or quant is not None else None
            self.model = AutoModelForCausalLM.from_pretrained(cfg.model, device_map=device_map, **kwargs)
        self.model.eval()
        self.eos_ids = self._eos_ids()
        return BackendInfo(
            name="hf",
            dtype=str(next(self.model.parameters()).dtype).removeprefix("torch."),
            attention=getattr(self.model.config, "_attn_implementation", None),
            quantization=cfg.quantization,
            details={
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "architecture": type(self.model).__name__,
            },
        )

    def _quantization_config(self, dtype):
        if not self.config.quantization:
            return None
        from transformers import BitsAndBytesConfig

        if self.config.quantization == "bnb-nf4":
            return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
        if self.config.quantization == "bnb-int8":
            return BitsAndBytesConfig(load_in_8bit=True)
        raise ValueError(f"the hf backend cannot run quantization {self.config.quantization!r}")

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        if ids is None:
            ids = self.tokenizer.eos_token_id
        return set(ids if isinstance(ids, list) else [ids]) - {None}

    def _encode(self, prompts: list[str], **kwargs):
        bos = self.tokenizer.bos_token
        # A chat template already starts with BOS; adding another one changes the prompt.
        special = not (bos and all(p.startswith(bos) for p in prompts))
        return self.tokenizer(prompts, add_special_tokens=special, **kwargs)

    def prompt_lengths(self, prompts: list[str]) -> list[int]:
        return [len(ids) for ids in self._encode(prompts)["input_ids"]]

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[Generation]:
        import torch
        from transformers import LogitsProcessorList

        inputs = self._encode(prompts, return_tensors="pt", padding=True).to(self.model.device)
        forced = self.config.force_output_length
        clock = TokenClock(self.synchronize)
        self.synchronize()  # the inputs' copy to the device is the harness's time, not the model's
        t0 = clock.start = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens if forced else None,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                logits_processor=LogitsProcessorList([clock]),
            )
        self.synchronize()
        self.last_model_seconds = time.perf_counter() - t0
        new = out[:, inputs["input_ids"].shape[1] :].tolist()
        results = []
        for ids in new:
            n = len(ids) if forced else next((i + 1 for i, t in enumerate(ids) if t in self.eos_ids), len(ids))
            text = self.tokenizer.decode(ids[:n], skip_special_tokens=True)
            results.append(Generation(text, n, ttft_s=clock.first_token(), tpot_s=clock.per_token(n)))
        return results

    def is_out_of_memory(self, exc: BaseException) -> bool:
        import torch

        return isinstance(exc, (torch.OutOfMemoryError, MemoryError))

    def free_memory(self) -> None:
        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def synchronize(self) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
