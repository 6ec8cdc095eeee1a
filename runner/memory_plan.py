"""The memory plan: will a model fit on a GPU, and how many documents can share one ``generate`` call?

The plan is arithmetic on the model's shape (``runner.contract.architectures.model_shape``), never a load, so the
host can answer before it starts anything. It predicts the peak bytes torch *allocates* during a
Hugging Face ``generate`` call, then asks for headroom on top of the growing part, because the CUDA
caching allocator cannot hand out memory that is free but cut into pieces too small to use:

    weights + max(KV(prompt) + prefill activations, KV(prompt + new) + decode transients)

``FRAGMENTATION`` scales everything but the weights when checking the budget. Each constant says how it
was chosen; ``benchmarks/gpu_check.py`` measures peak allocated memory per scenario on a real GPU
(``gpu-check.json``), against which they can be recalibrated.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from runner import compat
from runner.contract.architectures import BUILTIN_CONFIGS, declared_context, model_shape
from runner.contract.catalog import Gpu, Image, images
from runner.contract.defaults import MAX_NEW_TOKENS, PROMPT_TOKENS
from runner.contract.errors import UserError
from runner.scenarios import SCENARIOS, Scenario

GiB = 1 << 30

MAX_PLANNED_BATCH = 256
"""Largest batch the plan proposes: beyond it throughput has long stopped growing for 7B-class models,
and vLLM's own default limit on concurrent sequences (max_num_seqs) is 256 too."""

CUDA_CONTEXT_BYTES = 1 * GiB
"""Memory a process loses before torch allocates anything, against the catalog's NVML total: the CUDA
context with cuBLAS/cuDNN handles (assumed about 0.5 GiB with lazy module loading) plus what the driver
keeps out of cudaMalloc's reach (torch's total_memory can sit a few hundred MiB below nvidia-smi's; a
T4 shows 15360 MiB to NVML and about 15100 MiB to torch). The GPU sweep records both, to check this."""

FRAGMENTATION = 1.4
"""Headroom factor on the memory that grows during generation (KV cache and activations), checked against
what torch may *reserve*, with the worker's allocator (``expandable_segments:True``, runner.contract.allocator).

The plan predicts *allocated* memory closely (within 0.3% on an H200), but what runs out is reserved memory:
allocated plus the caching allocator's free blocks too small to reuse. With expandable segments an H100 at
batch 32 (Llama-2-7B, 515 + 300 tokens) reserved 1.14x the allocated growth; 1.4 keeps room above that for
the churn of larger batches, which was not measured."""

FRAGMENTATION_DEFAULT_ALLOCATOR = 1.75
"""The same factor under torch's default allocator (a user who set PYTORCH_CUDA_ALLOC_CONF without
expandable segments). On an H200 at the batch 1.4 allowed (224), the first call ran out of memory with
86.88 GiB allocated and 51.43 GiB reserved but unallocated: 12.55 GiB of weights, so the growing part held
(86.88 - 12.55 + 51.43) / (86.88 - 12.55) = 1.69x what was allocated; 1.75 is that with a little margin."""


def reserved_factor(expandable: bool) -> float:
    """Reserved over allocated growth the plan allows for, by allocator."""
    return FRAGMENTATION if expandable else FRAGMENTATION_DEFAULT_ALLOCATOR


DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8": 1}

# Bytes per weight of a quantized linear layer, scales included (embeddings, lm_head and norms stay in
# the compute dtype: bitsandbytes and AutoAWQ quantize only the decoder blocks' linear layers).
NF4_BYTES_PER_PARAM = 0.5 + 4 / 64
"""bitsandbytes NF4: 4-bit codes plus one fp32 absmax per block of 64 weights (double quantization off,
as the hf backend configures it)."""
INT8_BYTES_PER_PARAM = 1.0
"""bitsandbytes LLM.int8(): int8 weights; the fp32 scale per output row is added per row."""
AWQ_BYTES_PER_PARAM = 0.5 + (2 + 0.5) / 128
"""AWQ GEMM checkpoints: 4-bit packed weights plus an fp16 scale and a 4-bit zero point per group of 128."""

VLLM_GPU_MEMORY_UTILIZATION = 0.9
"""vLLM's default share of the GPU for weights, activations and KV cache (RunConfig's default too)."""
VLLM_PROFILE_TOKENS = 8192
"""Tokens in vLLM's profiling forward pass (max_num_batched_tokens): its activation peak is reserved."""

Status = Literal["incompatible", "does_not_fit", "fits", "unplanned"]


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a Llama-style decoder that decide its memory."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    context_length: int | None = None
    """Positions the model was trained for, as config.json declares them; None when unknown."""
    context_key: str = "max_position_embeddings"
    """The config.json key that declared ``context_length``."""

    @classmethod
    def from_config(cls, config: dict, name: str = "model") -> ModelShape:
        """Read the shape from config.json values; text configs nested by multimodal models are accepted."""
        config = config.get("text_config", config)
        required = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
        missing = [k for k in required if not config.get(k)]
        if missing:
            raise UserError(
                f"{name}'s config.json lacks {', '.join(missing)}: the memory plan knows Llama-style decoders"
            )
        heads = int(config["num_attention_heads"])
        context = declared_context(config)
        return cls(
            hidden=int(config["hidden_size"]),
            intermediate=int(config["intermediate_size"]),
            layers=int(config["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or config["hidden_size"] // heads),
            vocab=int(config["vocab_size"]),
            tied_embeddings=bool(config.get("tie_word_embeddings", False)),
            attention_bias=bool(config.get("attention_bias", False)),
            mlp_bias=bool(config.get("mlp_bias", False)),
            context_length=context[1] if context else None,
            context_key=context[0] if context else "max_position_embeddings",
        )

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    @property
    def linear_params_per_layer(self) -> int:
        """q, k, v, o (k and v narrower under grouped-query attention) and the three MLP matrices."""
        q_out, kv_out = self.heads * self.head_dim, self.kv_heads * self.head_dim
        attention = self.hidden * (q_out + 2 * kv_out) + q_out * self.hidden
        if self.attention_bias:
            attention += q_out + 2 * kv_out + self.hidden
        mlp = 3 * self.hidden * self.intermediate + (2 * self.intermediate + self.hidden if self.mlp_bias else 0)
        return attention + mlp

    @property
    def norm_params(self) -> int:
        """Two RMSNorms per layer and the final one."""
        return (2 * self.layers + 1) * self.hidden

    @property
    def linear_params(self) -> int:
        return self.layers * self.linear_params_per_layer

    @property
    def params(self) -> int:
        return self.embedding_params + self.lm_head_params + self.linear_params + self.norm_params

    @property
    def largest_linear_params(self) -> int:
        return self.hidden * max(self.intermediate, self.heads * self.head_dim)


def resolve_shape(model: str) -> ModelShape:
    """The shape of a built-in name, a known hub id or a local folder with config.json."""
    config = model_shape(model)
    if config is None:
        raise UserError(
            f"unknown model {model!r}: pass a folder with config.json or a built-in name ({', '.join(BUILTIN_CONFIGS)})"
        )
    return ModelShape.from_config(config, model)


def context_overflow(shape: ModelShape, prompt_tokens: int, new_tokens: int) -> str | None:
    """Why a prompt plus its new tokens do not fit the model's context, or None when they do (or it is unknown).

    Memory is then not what stops a run: vLLM skips prompts that leave no room for the new tokens within
    max_model_len, and transformers generates past the trained positions, where output degrades.
    """
    total = prompt_tokens + new_tokens
    if shape.context_length is None or total <= shape.context_length:
        return None
    return (
        f"{prompt_tokens} prompt + {new_tokens} new tokens make {total}, more than the model's context length of "
        f"{shape.context_length} ({shape.context_key}); the memory plan assumes they fit"
    )


def weight_bytes(shape: ModelShape, dtype: str, quantization: str | None) -> int:
    """Bytes of the weights as they sit on the GPU."""
    dense = DTYPE_BYTES[dtype]
    kept = (shape.embedding_params + shape.lm_head_params + shape.norm_params) * dense
    if quantization is None:
        return shape.params * dense
    if quantization == "bnb-nf4":
        return kept + math.ceil(shape.linear_params * NF4_BYTES_PER_PARAM)
    if quantization == "bnb-int8":
        rows = shape.layers * (
            shape.heads * shape.head_dim
            + 2 * shape.kv_heads * shape.head_dim
            + 2 * shape.hidden
            + 2 * shape.intermediate
        )
        return kept + math.ceil(shape.linear_params * INT8_BYTES_PER_PARAM) + 4 * rows
    if quantization == "awq":
        return kept + math.ceil(shape.linear_params * AWQ_BYTES_PER_PARAM)
    raise ValueError(f"no memory model for quantization {quantization!r}")


def kv_bytes_per_token(shape: ModelShape, dtype: str) -> int:
    """Keys and values of every layer for one token of one sequence."""
    return shape.layers * shape.kv_heads * shape.head_dim * 2 * DTYPE_BYTES[dtype]


@dataclass(frozen=True)
class Footprint:
    """Memory of one model/scenario at a given prompt and output length, as a function of batch size."""

    shape: ModelShape
    dtype: str
    attention: str | None
    quantization: str | None
    prompt_tokens: int
    new_tokens: int
    expandable: bool = True
    """Whether the worker's CUDA allocator uses expandable segments (its default): sets the headroom."""

    @property
    def bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def weights(self) -> int:
        return weight_bytes(self.shape, self.dtype, self.quantization)

    @property
    def kv_per_token(self) -> int:
        return kv_bytes_per_token(self.shape, self.dtype)

    @property
    def kv_per_sequence(self) -> int:
        return (self.prompt_tokens + self.new_tokens) * self.kv_per_token

    def prefill_activations(self, batch: int, tokens: int | None = None) -> int:
        """Peak transient bytes of the prompt's forward pass.

        transformers 5 ``generate`` asks for the last position's logits only (``logits_to_keep=1``), so
        the vocabulary term is per sequence, not per token. Inside a layer the MLP holds three
        intermediate-wide tensors (act(gate), up, their product) beside the residual and normed hidden
        states; the attention half holds about eight hidden-wide ones (q, k, v, rotary copies, output).
        """
        s, b, p = self.shape, self.bytes, tokens if tokens is not None else self.prompt_tokens
        per_token = b * max(8 * s.hidden, 2 * s.hidden + 3 * s.intermediate)
        total = batch * p * per_token
        if self.attention in ("sdpa", "eager"):
            total += batch * p * p  # the boolean 4-D padding mask
        if self.attention == "eager":
            total += batch * s.heads * p * p * (b + 4 + b)  # scores, fp32 softmax, cast back
        if self.quantization == "bnb-nf4":
            total += s.largest_linear_params * b  # one weight dequantized for the matmul
        return total + batch * s.vocab * (b + 4)  # last-token logits and their fp32 copy

    def decode_transients(self, batch: int) -> int:
        """Peak transient bytes of one decoding step at the full length.

        DynamicCache's ``torch.cat`` holds a layer's old and new keys (then values) at once; grouped-query
        models with a padding mask also expand one layer's keys and values to all heads for SDPA.
        """
        s, b, t = self.shape, self.bytes, self.prompt_tokens + self.new_tokens
        total = batch * t * s.kv_heads * s.head_dim * b
        if s.kv_heads < s.heads and self.attention in ("sdpa", "eager"):
            total += 2 * batch * t * s.heads * s.head_dim * b
        return total + batch * s.vocab * (b + 4)

    def growing(self, batch: int) -> int:
        """Peak bytes beyond the weights: KV cache plus the larger of the two phases' transients."""
        prefill = batch * self.prompt_tokens * self.kv_per_token + self.prefill_activations(batch)
        decode = batch * self.kv_per_sequence + self.decode_transients(batch)
        return max(prefill, decode)

    def peak_allocated(self, batch: int) -> int:
        """Predicted ``torch.cuda.max_memory_allocated`` for a generate call at this batch size."""
        return self.weights + self.growing(batch)

    def needed(self, batch: int) -> int:
        """Memory torch must be allowed to reserve for the batch to run without an out-of-memory error."""
        return self.weights + math.ceil(reserved_factor(self.expandable) * self.growing(batch))


@dataclass(frozen=True)
class CellPlan:
    """The plan for one image x scenario on one GPU."""

    image: str
    scenario: str
    status: Status
    dtype: str
    weights_bytes: int | None = None
    kv_per_sequence_bytes: int | None = None
    budget_bytes: int | None = None
    max_batch: int | None = None
    capped: bool = False
    shortfall_bytes: int | None = None
    host: bool = False  # the budget is this machine's memory (a CPU cell), not a GPU type's
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def verdict(self) -> str:
        """One line a person reads in the table."""
        if self.status == "incompatible":
            return "incompatible: " + "; ".join(self.reasons)
        if self.status == "unplanned":
            if self.budget_bytes is None:
                return "runs on the CPU: bounded by host memory, not planned"
            return f"runs on the CPU: fits the {self.budget_bytes / GiB:.1f} GiB available here; batches not planned"
        if self.status == "does_not_fit":
            where = f" of the {(self.budget_bytes or 0) / GiB:.1f} GiB available here" if self.host else ""
            return f"does not fit: {(self.shortfall_bytes or 0) / GiB:.1f} GiB short{where}"
        suffix = f" (capped at {MAX_PLANNED_BATCH})" if self.capped else ""
        return f"fits up to batch {self.max_batch}{suffix}"

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict()}


def budget_bytes(gpu: Gpu, memory_limit: int | None, backend: str = "hf") -> int:
    """Bytes torch may hold on this GPU.

    ``--gpu-memory-limit`` caps torch's allocator (``set_per_process_memory_fraction``), which never
    counted the CUDA context, so a limit below the card's usable memory is the budget as given. vLLM
    claims its utilization share of the card (or of the limit) for everything it allocates.
    """
    if backend == "vllm":
        share = int(VLLM_GPU_MEMORY_UTILIZATION * min(gpu.memory_bytes, memory_limit or gpu.memory_bytes))
        return share - CUDA_CONTEXT_BYTES
    usable = gpu.memory_bytes - CUDA_CONTEXT_BYTES
    return min(usable, memory_limit) if memory_limit else usable


def largest_fitting_batch(footprint: Footprint, budget: int, backend: str = "hf", cap: int = MAX_PLANNED_BATCH) -> int:
    """Largest batch in 1..cap whose need fits the budget; 0 when not even one sequence fits."""
    if backend == "vllm":
        # vLLM pages the KV cache: after weights and its profiling pass, the rest holds whole sequences.
        room = budget - footprint.weights - footprint.prefill_activations(1, VLLM_PROFILE_TOKENS)
        return max(0, min(cap, room // footprint.kv_per_sequence))
    lo, hi = 0, cap
    while lo < hi:  # needed() grows with the batch, so bisect
        mid = (lo + hi + 1) // 2
        if footprint.needed(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def footprint_for(
    model: str,
    scenario: Scenario,
    gpu: Gpu,
    prompt_tokens: int = PROMPT_TOKENS,
    max_new_tokens: int = MAX_NEW_TOKENS,
    expandable: bool = True,
) -> Footprint:
    """The footprint of ``model`` as ``scenario`` runs it on ``gpu`` (bf16 becomes fp16 where it must)."""
    dtype, _ = compat.adjustments(scenario, gpu)
    return Footprint(
        shape=resolve_shape(model),
        dtype=dtype,
        attention=scenario.attention,
        quantization=scenario.quantization,
        prompt_tokens=prompt_tokens,
        new_tokens=max_new_tokens,
        expandable=expandable,
    )


def plan_cell(
    model: str,
    image: Image,
    scenario: Scenario,
    gpu: Gpu,
    prompt_tokens: int = PROMPT_TOKENS,
    max_new_tokens: int = MAX_NEW_TOKENS,
    memory_limit: int | None = None,
) -> CellPlan:
    """Incompatible (with the rules' reasons), does not fit (by how much), or fits up to batch N."""
    dtype, notes = compat.adjustments(scenario, gpu)
    notes = notes + compat.awq_note(scenario, gpu)
    reasons = compat.check(image, scenario, gpu)
    if reasons:
        return CellPlan(image.key, scenario.name, "incompatible", dtype, reasons=reasons)
    fp = footprint_for(model, scenario, gpu, prompt_tokens, max_new_tokens)
    sizes = {"dtype": dtype, "weights_bytes": fp.weights, "kv_per_sequence_bytes": fp.kv_per_sequence}
    if gpu.is_cpu:
        return _host_plan(image, scenario, fp, sizes, notes)
    budget = budget_bytes(gpu, memory_limit, scenario.backend)
    batch = largest_fitting_batch(fp, budget, scenario.backend, cap=MAX_PLANNED_BATCH + 1)
    if batch == 0:
        need = (
            fp.needed(1)
            if scenario.backend != "vllm"
            else (fp.weights + fp.prefill_activations(1, VLLM_PROFILE_TOKENS) + fp.kv_per_sequence)
        )
        return CellPlan(
            image.key,
            scenario.name,
            "does_not_fit",
            **sizes,
            budget_bytes=budget,
            shortfall_bytes=need - budget,
            notes=notes,
        )
    if scenario.backend == "vllm":
        notes = [*notes, "vLLM schedules its own batches: N is how many sequences its KV cache holds at once"]
    return CellPlan(
        image.key,
        scenario.name,
        "fits",
        **sizes,
        budget_bytes=budget,
        max_batch=min(batch, MAX_PLANNED_BATCH),
        capped=batch > MAX_PLANNED_BATCH,
        notes=notes,
    )


def host_memory_available() -> int | None:
    """This machine's memory that a new process can have (Linux MemAvailable: free memory plus the cache
    the kernel can drop); None where /proc/meminfo does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def host_shortfall(fp: Footprint, available: int | None) -> int | None:
    """Bytes short when one sequence's weights and KV cache exceed ``available`` (this machine's memory,
    ``host_memory_available``: a CPU cell runs here); None when they fit or the memory is unknown."""
    need = fp.weights + fp.kv_per_sequence
    if available is None or need <= available:
        return None
    return need - available


def _host_plan(image: Image, scenario: Scenario, fp: Footprint, sizes: dict, notes: list[str]) -> CellPlan:
    """A CPU cell against this machine's available memory: whether the weights fit at all. Batches are
    not planned: on a CPU the cores, not memory, bound them (see launching.CPU_AUTO_BATCH)."""
    available = host_memory_available()
    short = host_shortfall(fp, available)
    status = "unplanned" if short is None else "does_not_fit"
    return CellPlan(
        image.key, scenario.name, status, **sizes, budget_bytes=available, shortfall_bytes=short,
        host=short is not None, notes=notes,
    )  # fmt: skip


def plan_all(
    model: str,
    gpu: Gpu,
    prompt_tokens: int = PROMPT_TOKENS,
    max_new_tokens: int = MAX_NEW_TOKENS,
    memory_limit: int | None = None,
    image_keys: tuple[str, ...] = (),
    scenario_names: tuple[str, ...] = (),
) -> list[CellPlan]:
    """Every image with every scenario it runs, optionally filtered."""
    resolve_shape(model)  # an unknown model is an error, not a table of failures
    plans = []
    for image in images().values():
        if image_keys and image.key not in image_keys:
            continue
        for name in image.scenarios:
            if scenario_names and name not in scenario_names:
                continue
            plans.append(plan_cell(model, image, SCENARIOS[name], gpu, prompt_tokens, max_new_tokens, memory_limit))
    return plans


def _auto_plan(
    model: str, scenario: Scenario, gpu: Gpu, max_new_tokens: int, memory_limit_bytes: int | None, expandable: bool
) -> tuple[Footprint, int] | None:
    """The footprint at the default prompt length and the budget it must fit; None on a CPU or for a model
    whose shape is unknown here."""
    if gpu.is_cpu:
        return None
    try:
        fp = footprint_for(model, scenario, gpu, PROMPT_TOKENS, max_new_tokens, expandable)
    except UserError:
        return None
    return fp, budget_bytes(gpu, memory_limit_bytes, scenario.backend)


def _batch_at(fp: Footprint, budget: int, backend: str, prompt_tokens: int) -> int:
    """The largest batch at ``prompt_tokens``; 1 where not even one sequence fits: the run then fails with
    the out-of-memory error recorded in its result, which is what ``--batch-size auto`` promises."""
    return max(1, largest_fitting_batch(dataclasses.replace(fp, prompt_tokens=prompt_tokens), budget, backend))


def largest_batch(
    model: str,
    scenario: Scenario,
    gpu: Gpu,
    max_new_tokens: int,
    memory_limit_bytes: int | None,
    expandable: bool = True,
    prompt_tokens: int = PROMPT_TOKENS,
) -> int | None:
    """The starting batch for ``--batch-size auto`` with prompts of ``prompt_tokens``; None when the plan
    cannot say (CPU, unknown model)."""
    planned = _auto_plan(model, scenario, gpu, max_new_tokens, memory_limit_bytes, expandable)
    return None if planned is None else _batch_at(*planned, scenario.backend, prompt_tokens)


LADDER_STEP = 1.1
"""Ratio between the prompt lengths of two rungs of ``auto_batch_ladder``: a run whose longest prompt
falls between two rungs starts at the longer rung's batch, at most ~10% more prompt than it has."""


def auto_batch_ladder(
    model: str,
    scenario: Scenario,
    gpu: Gpu,
    max_new_tokens: int,
    memory_limit_bytes: int | None,
    expandable: bool,
    prompt_limit: int,
) -> list[tuple[int, int]] | None:
    """(prompt tokens, largest batch) rungs from the default prompt length up to ``prompt_limit``: the host
    cannot count tokens, the worker can, so the worker starts ``--batch-size auto`` at the rung that covers
    its longest prompt (the first batch holds the longest prompts, padded to the longest). None where the
    plan cannot say; vLLM pages its KV cache and sizes batches itself."""
    planned = _auto_plan(model, scenario, gpu, max_new_tokens, memory_limit_bytes, expandable)
    if planned is None or scenario.backend == "vllm":
        return None
    lengths, n = [], PROMPT_TOKENS
    while n < prompt_limit:
        lengths.append(n)
        n = math.ceil(n * LADDER_STEP)
    lengths.append(max(prompt_limit, PROMPT_TOKENS))
    return [(tokens, _batch_at(*planned, scenario.backend, tokens)) for tokens in lengths]
