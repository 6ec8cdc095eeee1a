"""Hugging Face transformers: fp16/bf16/fp32, eager/SDPA/FlashAttention-2, bitsandbytes 4- and 8-bit,
SDPA held to one kernel (sdpa-flash), and a static KV cache with torch.compile (hf-compile).

Real checkpoints and ``runner model tiny`` models load through the same ``from_pretrained`` call;
``--synthetic-weights`` builds the architecture from its config with random weights instead, or, for a
quantized scenario (only ``from_pretrained`` quantizes), loads a random checkpoint written once to a cache.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time

from runner.contract.schema import BackendInfo
from runner.worker.backends.base import Backend, Generation
from runner.worker.environment import cpp_compiler
from runner.worker.footprint import measure_weights
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
    pads_batches = True
    _cache_len = 0  # hf-compile: the static cache's length, sized at the first (longest) batch
    _compiled_batch: int | None = None  # hf-compile: the batch size the warm-up compiled for
    _compile_at_load = 0.0
    _compile_in_warmup = 0.0

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

        details: dict = {}
        if cfg.synthetic_weights and quant is None:
            config = synthetic_config(cfg.model)
            with torch.device(self.device):
                self.model = AutoModelForCausalLM.from_config(config, **kwargs)
        else:
            source = cfg.model
            if cfg.synthetic_weights:  # from_config cannot quantize: load a random checkpoint instead
                source, details["synthetic_checkpoint"] = self._synthetic_checkpoint()
            device_map = {"": self.device} if self.device != "cpu" or quant is not None else None
            self.model = AutoModelForCausalLM.from_pretrained(source, device_map=device_map, **kwargs)
        self.model.eval()
        self.eos_ids = self._eos_ids()
        if cfg.torch_compile:
            self._set_up_compile()
            details["compile"] = (
                "static KV cache, torch.compile of the decoding step (transformers generate); a batch smaller "
                "than the warmed one is padded to its size"
            )
        if cfg.sdpa_backend:
            details["sdpa_backend"] = cfg.sdpa_backend
        return BackendInfo(
            name="hf",
            dtype=str(next(self.model.parameters()).dtype).removeprefix("torch."),
            attention=getattr(self.model.config, "_attn_implementation", None),
            quantization=cfg.quantization,
            weights=measure_weights(self.model),
            details={
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "architecture": type(self.model).__name__,
                **details,
            },
        )

    def _synthetic_checkpoint(self) -> tuple[str, dict]:
        """The cached random checkpoint of this run's architecture and seed (written now if missing), and
        what the result says about it."""
        from runner.worker.synthetic import cached_checkpoint

        t0 = time.perf_counter()
        cfg = self.config
        folder, written = cached_checkpoint(
            synthetic_config(cfg.model), seed=cfg.seed, dtype=cfg.dtype, device=self.device
        )
        return str(folder), {
            "folder": folder.name,
            "written_now": written,
            "seconds": round(time.perf_counter() - t0, 3),
        }

    def _set_up_compile(self) -> None:
        """Static cache + torch.compile through transformers' generate, which compiles the decoding step
        when the cache is static (on a GPU by itself; on a CPU only when asked, as here)."""
        from transformers import CompileConfig

        if self.device == "cpu" and cpp_compiler() is None:
            raise RuntimeError(
                "scenario hf-compile on a CPU needs a C++ compiler (torch.compile generates C++ there) and none "
                "is on PATH ($CXX, else g++): install g++, or run it in an environment that has one"
            )
        compile_config = CompileConfig()
        compile_config._compile_all_devices = True  # transformers' switch to compile on a CPU too
        self.model.generation_config.cache_implementation = "static"
        self.model.generation_config.compile_config = compile_config
        self._compile_at_load = torch_compile_seconds()

    def warmup(self, prompts: list[str], max_new_tokens: int) -> None:
        """hf-compile warms up at the run's full output length: the decoding step compiles for the static
        cache the timed calls use, so compile time stays out of docs/s."""
        if not self.config.torch_compile:
            return super().warmup(prompts, max_new_tokens)
        before = torch_compile_seconds()
        self.generate(prompts, self.config.max_new_tokens)
        self._compiled_batch = len(prompts)
        self._compile_in_warmup += torch_compile_seconds() - before

    def compile_seconds(self) -> tuple[float, float] | None:
        """Seconds torch.compile spent since load, and of them those inside timed calls; None: no compile."""
        if not self.config.torch_compile:
            return None
        total = torch_compile_seconds() - self._compile_at_load
        return total, max(0.0, total - self._compile_in_warmup)

    def max_prompt_tokens(self) -> int | None:
        """The model's declared context less the new tokens: a longer prompt would run past the positions
        it was trained for (and past a learned position table, fail). Unknown under rope scaling."""
        from runner.contract.architectures import runnable_context

        context = runnable_context(self.model.config.to_dict())
        return None if context is None else max(1, context[1] - self.config.max_new_tokens)

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

    def _compiled_batch_of(self, prompts: list[str]) -> list[str]:
        """hf-compile keeps the decoding step's shapes fixed, so it compiles once: a batch smaller than the
        warmed one is padded with copies of its last prompt, whose outputs are dropped."""
        if self.config.torch_compile and self._compiled_batch and len(prompts) < self._compiled_batch:
            return prompts + [prompts[-1]] * (self._compiled_batch - len(prompts))
        return prompts

    def _static_cache(self, prompt_tokens: int, max_new_tokens: int) -> dict:
        """hf-compile: the static cache keeps the length the first batch (the longest prompts) needed."""
        if not self.config.torch_compile:
            return {}
        self._cache_len = max(self._cache_len, prompt_tokens + max_new_tokens)
        return {"max_cache_len": self._cache_len}

    def _attention_kernel(self):
        """sdpa-flash: SDPA may use only the kernel the scenario names (it raises where that kernel cannot run)."""
        if not self.config.sdpa_backend:
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(getattr(SDPBackend, self.config.sdpa_backend))

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[Generation]:
        import torch
        from transformers import LogitsProcessorList

        wanted = len(prompts)
        prompts = self._compiled_batch_of(prompts)
        inputs = self._encode(prompts, return_tensors="pt", padding=True).to(self.model.device)
        self.last_padded_tokens = inputs["input_ids"].shape[1]
        compiled = self._static_cache(inputs["input_ids"].shape[1], max_new_tokens)
        forced = self.config.force_output_length
        clock = TokenClock(self.synchronize)
        self.synchronize()  # the inputs' copy to the device is the harness's time, not the model's
        t0 = clock.start = time.perf_counter()
        with torch.inference_mode(), self._attention_kernel():
            out = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens if forced else None,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                **compiled,
                logits_processor=LogitsProcessorList([clock]),
            )
        self.synchronize()
        self.last_model_seconds = time.perf_counter() - t0
        new = out[:wanted, inputs["input_ids"].shape[1] :].tolist()
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

        self._compiled_batch = None  # a smaller batch follows: no padding back up to the one that failed
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def synchronize(self) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()


def torch_compile_seconds() -> float:
    """Seconds torch.compile (dynamo with its backend, inductor) has spent compiling in this process, from
    torch's own timers; 0 where this torch keeps none."""
    try:
        from torch._dynamo.utils import compilation_time_metrics
    except ImportError:
        return 0.0
    return float(sum(compilation_time_metrics.get("_compile.compile_inner", ())))
