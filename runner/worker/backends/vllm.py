"""vLLM's offline engine: one ``vllm.LLM`` per run, greedy sampling, prompts handed over as token ids.

Prompts go to vLLM as token ids that this backend tokenized itself, so the prompt lengths the run counts
(and skips on) are exactly the lengths vLLM sees. ``--batch-size dynamic`` gives every prompt to one
``generate`` call and lets vLLM's scheduler form the batches; a number N gives it N prompts per call.
Whatever the call, vLLM decides how many sequences run at once inside it (its ``max_num_seqs``).

vLLM is imported only in ``load``: the module imports on the host and in images without vLLM.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any

from runner.contract import quant_formats
from runner.contract.architectures import declared_context
from runner.contract.engine_failures import mentions_out_of_memory
from runner.contract.schema import BackendInfo, RunConfig
from runner.worker.backends.base import Backend, Generation
from runner.worker.environment import cpp_compiler
from runner.worker.models import load_tokenizer, synthetic_config

log = logging.getLogger(__name__)

# vLLM V1 refuses a whole generate call when one prompt is over max_model_len (V0 returned an empty output).
TOO_LONG = re.compile(r"longer than the maximum model length of (\d+)")
# --warmup short: a few prompts exercise the whole path once (vLLM profiled memory and captured CUDA graphs in LLM()).
WARMUP_PROMPTS = 4
# KV cache on a CPU when --kv-cache-memory is not given: vLLM would otherwise reserve gpu_memory_utilization
# (0.9) of the host's memory. 1 GiB holds about 2,000 tokens of a 7B Llama in bf16, several of a small model.
CPU_KV_CACHE_BYTES = 2**30
# What an AutoAWQ 4-bit GEMM checkpoint's config says; given to synthetic weights run as AWQ.
SYNTHETIC_AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}


def sampling_kwargs(max_new_tokens: int, forced: bool) -> dict[str, Any]:
    """Greedy decoding; a forced length (synthetic weights) also ignores EOS so every output is that long."""
    kwargs: dict[str, Any] = {"temperature": 0.0, "max_tokens": max_new_tokens}
    if forced:
        kwargs.update(min_tokens=max_new_tokens, ignore_eos=True)
    return kwargs


def is_refused(output: Any) -> bool:
    """A RequestOutput vLLM returned without generating: V0 'ignored' an over-long prompt that way."""
    if not output.outputs:
        return True
    first = output.outputs[0]
    return len(first.token_ids) == 0 and first.finish_reason in ("length", "abort")


def to_generation(output: Any) -> Generation:
    if is_refused(output):
        return Generation("", 0, skipped=True)
    first = output.outputs[0]
    n = len(first.token_ids)
    ttft, tpot = request_timing(getattr(output, "metrics", None), n)
    return Generation(first.text, n, ttft_s=ttft, tpot_s=tpot)


def request_timing(metrics: Any, tokens: int) -> tuple[float | None, float | None]:
    """(time to first token, time per output token) from vLLM V1's per-request stats (RequestStateStats).

    The offline ``LLM`` keeps them only with ``disable_log_stats=False``; without them both are None. Its
    first-token latency counts from the request's arrival, so it includes the wait behind earlier prompts
    of the same call, as a first-token time counted from the call's start does."""
    if metrics is None:
        return None, None
    ttft = getattr(metrics, "first_token_latency", None) or None
    first, last = getattr(metrics, "first_token_ts", 0.0), getattr(metrics, "last_token_ts", 0.0)
    tpot = (last - first) / (tokens - 1) if tokens > 1 and first and last >= first else None
    return ttft, tpot


def refused_over(exc: BaseException) -> int | None:
    """The length limit named in vLLM V1's over-long-prompt ValueError, or None for any other error."""
    match = TOO_LONG.search(str(exc)) if isinstance(exc, ValueError) else None
    return int(match.group(1)) if match else None


def is_memory_error(exc: BaseException) -> bool:
    """CUDA out of memory or vLLM's not-enough-KV-cache refusal, anywhere in the exception's chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError) or type(current).__name__ == "OutOfMemoryError":
            return True
        if mentions_out_of_memory(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def model_max_len(hf_config: Any) -> int | None:
    """The context length the checkpoint's config.json declares (before any rope scaling)."""
    values = hf_config.to_dict() if hasattr(hf_config, "to_dict") else vars(hf_config)
    found = declared_context(values)
    return found[1] if found else None


def choose_max_model_len(max_input: int, max_new: int, model_limit: int | None) -> int:
    """Room for the longest allowed prompt plus the output, never past what the model was trained for.

    Asking for no more than that keeps vLLM from sizing for a 128k context on a 16 GB card.
    """
    wanted = max_input + max_new
    return min(wanted, model_limit) if model_limit else wanted


def quant_config(hf_config: Any) -> dict | None:
    """The checkpoint's quantization_config as a dict (transformers may hold it as an object)."""
    quant = getattr(hf_config, "quantization_config", None)
    if quant is None or isinstance(quant, dict):
        return quant
    return quant.to_dict() if hasattr(quant, "to_dict") else vars(quant)


def vllm_quantization(scenario_quantization: str | None, hf_config: Any) -> str | None:
    """The ``quantization`` to give vLLM: an AWQ scenario names the checkpoint's format ("awq" pins vLLM's
    AWQ kernels on every GPU, where left alone it may pick awq_marlin on Ampere+; "compressed-tensors" is
    W4A16 from llm-compressor), or None when the checkpoint holds neither; other scenarios pass theirs on."""
    if scenario_quantization != "awq":
        return scenario_quantization
    return quant_formats.awq_format(quant_config(hf_config))


def quant_method(hf_config: Any) -> str | None:
    quant = getattr(hf_config, "quantization_config", None)
    if isinstance(quant, dict):
        return quant.get("quant_method")
    return getattr(quant, "quant_method", None)


def kv_cache_bytes(config: RunConfig, device: str, environ: Mapping[str, str]) -> int | None:
    """The KV cache size to give vLLM: --kv-cache-memory, else on a CPU a cap (CPU_KV_CACHE_BYTES) unless
    VLLM_CPU_KVCACHE_SPACE says otherwise; None lets vLLM size it from gpu_memory_utilization."""
    if config.vllm_kv_cache_memory_bytes is not None:
        return config.vllm_kv_cache_memory_bytes
    if device == "cpu" and "VLLM_CPU_KVCACHE_SPACE" not in environ:
        return CPU_KV_CACHE_BYTES
    return None


def compiler_problem(config: RunConfig, device: str) -> str | None:
    """Why vLLM cannot compile here, or None. On a CPU, vLLM compiles its model with torch.compile, whose
    inductor builds C++: without a compiler the run would fail after the model loaded."""
    if device != "cpu" or config.vllm_enforce_eager:
        return None
    if cpp_compiler() is not None:
        return None
    return (
        "vLLM on a CPU compiles the model with torch.compile, which needs a C++ compiler (g++), and there is none "
        "here: pass --vllm-enforce-eager, or install g++ (the vllm-cpu image has it unless built offline without it)"
    )


class VLLMBackend(Backend):
    memory_in_process = False  # on a GPU, V1's engine core (weights and KV cache) is a child process

    def __init__(self, config: RunConfig, device: str, texts: list[str]) -> None:
        super().__init__(config, device, texts)
        if device == "cpu":
            # The engine in this process: its max RSS (the CPU's peak memory) is then the engine's, which
            # an engine-core child process would keep out of it. Set before the environment is recorded.
            if os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "0") != "0":
                log.warning("VLLM_ENABLE_V1_MULTIPROCESSING set to 0 on a CPU: peak memory must include the engine")
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
            self.memory_in_process = True

    def load(self) -> BackendInfo:
        if problem := compiler_problem(self.config, self.device):
            raise RuntimeError(problem)
        import vllm

        cfg = self.config
        kv_bytes = kv_cache_bytes(cfg, self.device, os.environ)
        model, hf_config, load_format = self._model_source()
        quantization = vllm_quantization(cfg.quantization, hf_config)
        if cfg.quantization == "awq" and quantization is None:
            held = quant_formats.describe(quant_config(hf_config))
            raise ValueError(
                f"scenario {cfg.scenario} runs AWQ checkpoints; {cfg.model} is not one (its quantization_config "
                f"says {held}): use an AWQ model, e.g. TheBloke/Llama-2-7B-Chat-AWQ"
            )
        self.max_model_len = choose_max_model_len(cfg.max_input_tokens, cfg.max_new_tokens, model_max_len(hf_config))
        self.llm = vllm.LLM(
            model=model,
            dtype=cfg.dtype,
            quantization=quantization,
            max_model_len=self.max_model_len,
            gpu_memory_utilization=self._memory_utilization(),
            enforce_eager=cfg.vllm_enforce_eager,
            kv_cache_memory_bytes=kv_bytes,
            seed=cfg.seed,
            load_format=load_format,
            disable_log_stats=False,  # keeps each request's first-token and last-token times (request_timing)
        )
        self.tokenizer = self.llm.get_tokenizer()
        self._ids: dict[str, list[int]] = {}
        engine = getattr(self.llm, "llm_engine", None)
        model_config = getattr(engine, "model_config", None)
        self.max_model_len = getattr(model_config, "max_model_len", None) or self.max_model_len
        scheduler = getattr(getattr(engine, "vllm_config", None), "scheduler_config", None)
        return BackendInfo(
            name="vllm",
            dtype=str(getattr(model_config, "dtype", cfg.dtype)).removeprefix("torch."),
            attention=os.environ.get("VLLM_ATTENTION_BACKEND"),  # None: vLLM chose (see worker.log)
            quantization=getattr(model_config, "quantization", None) or cfg.quantization,
            details={
                "vllm": vllm.__version__,
                "max_model_len": self.max_model_len,
                "max_num_seqs": getattr(scheduler, "max_num_seqs", None),
                "gpu_memory_utilization": self._memory_utilization(),
                "enforce_eager": cfg.vllm_enforce_eager,
                "kv_cache_memory_bytes": kv_bytes,
                "engine_in_process": self.memory_in_process,
                "load_format": load_format,
            },
        )

    def _model_source(self) -> tuple[str, Any, str]:
        """(what to give vLLM, the checkpoint's transformers config, load_format).

        Synthetic weights: the config and a tokenizer go to a temporary folder that vLLM loads with
        ``load_format="dummy"`` (random weights, nothing downloaded).
        """
        cfg = self.config
        if not cfg.synthetic_weights:
            from transformers import AutoConfig

            return cfg.model, AutoConfig.from_pretrained(cfg.model), "auto"
        hf_config = synthetic_config(cfg.model)
        if cfg.quantization == "awq":
            hf_config.quantization_config = dict(SYNTHETIC_AWQ)
        self._synthetic_dir = tempfile.TemporaryDirectory(prefix="sumbench-synthetic-")
        hf_config.save_pretrained(self._synthetic_dir.name)
        load_tokenizer(cfg.model, True, self.texts).save_pretrained(self._synthetic_dir.name)
        return self._synthetic_dir.name, hf_config, "dummy"

    def _memory_utilization(self) -> float:
        """vLLM's share of GPU memory; --gpu-memory-limit lowers it to reproduce a smaller card."""
        share = self.config.vllm_gpu_memory_utilization
        if self.config.gpu_memory_limit_bytes:
            import torch

            total = torch.cuda.get_device_properties(0).total_memory
            share = min(share, self.config.gpu_memory_limit_bytes / total)
        return share

    def _token_ids(self, prompt: str) -> list[int]:
        ids = self._ids.get(prompt)
        if ids is None:
            bos = getattr(self.tokenizer, "bos_token", None)
            # A chat template already starts with BOS; adding another one changes the prompt.
            special = not (bos and prompt.startswith(bos))
            ids = self._ids[prompt] = list(self.tokenizer.encode(prompt, add_special_tokens=special))
        return ids

    def prompt_lengths(self, prompts: list[str]) -> list[int]:
        return [len(self._token_ids(p)) for p in prompts]

    def max_prompt_tokens(self) -> int | None:
        return self.max_model_len - self.config.max_new_tokens

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[Generation]:
        from vllm import SamplingParams

        params = SamplingParams(**sampling_kwargs(max_new_tokens, self.config.force_output_length))
        ids = [self._token_ids(p) for p in prompts]
        try:
            return [to_generation(o) for o in self._generate(ids, params)]
        except ValueError as exc:
            limit = refused_over(exc)
            keep = [i for i, p in enumerate(ids) if limit is not None and len(p) <= limit]
            if limit is None or len(keep) == len(ids):
                raise
        log.warning(
            "vLLM refused %d prompts over %d tokens; generating the other %d", len(ids) - len(keep), limit, len(keep)
        )
        out = [Generation("", 0, skipped=True)] * len(ids)
        for i, output in zip(keep, self._generate([ids[i] for i in keep], params), strict=True):
            out[i] = to_generation(output)
        return out

    def _generate(self, ids: list[list[int]], params: Any) -> list[Any]:
        if not ids:
            return []
        return self.llm.generate([{"prompt_token_ids": p} for p in ids], params, use_tqdm=False)

    def warmup(self, prompts: list[str], max_new_tokens: int) -> None:
        """The batch (a few prompts with ``--warmup short``), then forget their KV blocks: vLLM's prefix
        cache would otherwise serve the timed pass's prefills from the warmup's, and measure less work."""
        short = max_new_tokens < self.config.max_new_tokens  # --warmup short: a few prompts will do
        self.generate(prompts[:WARMUP_PROMPTS] if short else prompts, max_new_tokens)
        reset = getattr(self.llm, "reset_prefix_cache", None)
        if reset is not None:
            reset()

    def is_out_of_memory(self, exc: BaseException) -> bool:
        return is_memory_error(exc)
