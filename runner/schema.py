"""The one results schema, shared by the host side and the worker.

``RunConfig`` is what the host hands a worker; ``DocRecord`` is one line of ``docs.jsonl``;
``RunResult`` is ``result.json``. ``runner schema`` writes the JSON Schema of ``RunResult`` to
``schema/result.schema.json`` so that other tools can validate results without importing sumbench.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runner.versions import PROTOCOL, SCHEMA_MINOR, SCHEMA_VERSION

Warmup = Literal["full", "short", "none"]

Status = Literal["completed", "partial", "failed"]
BatchSize = int | Literal["auto", "dynamic"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class LaunchInfo(_Model):
    """How the host started the worker; the worker copies it into the result."""

    executor: str = "process"
    image: str | None = Field(None, description="Image reference the worker ran in, if any.")
    image_id: str | None = None
    image_digest: str | None = None
    docker_host: str | None = None
    gpu_uuids: list[str] = Field(default_factory=list)


class RunConfig(_Model):
    """Everything a worker needs for one run. Written to ``config.json`` in the run folder."""

    run_id: str
    image: str = "cpu"
    gpu: str = "cpu"
    scenario: str = "default"
    backend: Literal["hf", "vllm"] = "hf"
    dtype: str = "float16"
    attention: str | None = None
    quantization: str | None = None
    model: str
    base_model: str | None = Field(
        None,
        description="For a quantized checkpoint (--base-model): the model it was made from. Reports gate and "
        "compare it against that model's runs, as they do bitsandbytes runs of one checkpoint.",
    )
    synthetic_weights: bool = False
    data: str
    text_field: str | None = None
    summary_field: str | None = None
    id_field: str | None = None
    limit: int | None = Field(None, ge=1)
    batch_size: BatchSize = 1
    max_batch_size: int | None = Field(None, ge=1, description="Upper bound for --batch-size auto.")
    max_new_tokens: int = Field(300, ge=1)
    max_input_tokens: int = Field(4096, ge=1)
    force_output_length: bool = False
    prompt_template: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    gpu_memory_limit_bytes: int | None = Field(None, ge=1)
    max_skipped_fraction: float = Field(0.1, ge=0, le=1)
    vllm_gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    vllm_enforce_eager: bool = False
    forced: bool = Field(False, description="Launched with --force despite a known incompatibility.")
    incompatibility: str | None = None
    price_per_hour_usd: float | None = None
    price_source: str | None = Field(
        None,
        description="Where price_per_hour_usd comes from: 'given: --price-per-hour', 'catalog: <instance, region, "
        "on-demand, year>' (runner/catalog/gpus.toml), or 'none: <why no price was recorded>' (a spot instance, "
        "another cloud than the catalog's); None in results written before it was recorded.",
    )
    seed: int = 0
    warmup: Warmup = Field(
        "full",
        description="The untimed call before timing: 'full' (the first batch at the run's output length, so "
        "first-use costs at that shape stay out of docs/s), 'short' (a few new tokens), 'none'.",
    )
    protocol: int = Field(
        PROTOCOL,
        description="What a worker must understand of this config (runner.versions); a worker refuses a higher one.",
    )
    launch: LaunchInfo = Field(default_factory=LaunchInfo)


class DeviceInfo(_Model):
    kind: Literal["cpu", "cuda"]
    name: str
    catalog_gpu: str | None = Field(None, description="Catalog key this device maps to, e.g. 'a100-80gb'.")
    uuid: str | None = None
    memory_bytes: int | None = None
    memory_limit_bytes: int | None = Field(None, description="Set when --gpu-memory-limit capped the worker.")
    compute_capability: str | None = None
    driver: str | None = None
    cuda: str | None = None


class Environment(_Model):
    python: str
    platform: str
    sumbench: str
    git_revision: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables set for the worker that change memory or speed (allocator, attention "
        "backend, threads); absent ones were unset.",
    )
    device: DeviceInfo
    launch: LaunchInfo = Field(default_factory=LaunchInfo)


class DatasetInfo(_Model):
    path: str
    sha256: str = Field(description="Hash of the selected documents' canonical content (ids, texts, references).")
    documents: int
    text_field: str
    summary_field: str | None
    id_field: str | None


class BackendInfo(_Model):
    name: str
    dtype: str
    attention: str | None = Field(None, description="Attention implementation that actually ran.")
    quantization: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class OOMEvent(_Model):
    batch_size: int
    documents: list[str]
    message: str


class Batching(_Model):
    requested: BatchSize
    final: int | None = None
    planned_max: int | None = None
    oom_events: list[OOMEvent] = Field(default_factory=list)


class BatchTiming(_Model):
    size: int
    seconds: float
    output_tokens: int
    model_seconds: float | None = Field(None, description="Of ``seconds``, those inside the model's own generate.")


class Rouge(_Model):
    rouge1: float
    rouge2: float
    rougeL: float


class Percentiles(_Model):
    p50: float
    p90: float
    p99: float


class Metrics(_Model):
    documents: int = Field(0, description="Documents summarized in this run (resumed ones included).")
    skipped_too_long: int = 0
    skipped_by_backend: int = 0
    docs_per_second: float | None = Field(None, description="Documents / generation seconds; load and warmup excluded.")
    output_tokens_per_second: float | None = None
    avg_input_tokens: float | None = None
    avg_output_tokens: float | None = None
    total_output_tokens: int = 0
    latency_p50_s: float | None = Field(
        None, description="Call time: percentiles over documents of the seconds of the call that produced each."
    )
    latency_p90_s: float | None = None
    latency_p99_s: float | None = None
    time_to_first_token_s: Percentiles | None = Field(
        None, description="Per document, seconds from its call's start to its first new token (prefill)."
    )
    time_per_output_token_s: Percentiles | None = Field(
        None, description="Per document, seconds per new token after the first (decode); None for one-token outputs."
    )
    generate_seconds: float = 0.0
    model_generate_seconds: float | None = Field(
        None,
        description="Of generate_seconds, the time inside the model's own generate call: the rest is what the "
        "harness adds to the timed calls (tokenizing, moving inputs, decoding). None where the backend cannot "
        "separate them (vLLM tokenizes inside its engine).",
    )
    model_load_seconds: float | None = None
    warmup_seconds: float | None = None
    wall_seconds: float | None = None
    end_to_end_seconds: float | None = Field(
        None,
        description="Model load + warm-up + every timed call (of this process's load and warm-up, and all "
        "calls of the run, resumed ones included): what the documents cost with nothing left out.",
    )
    peak_memory_bytes: int | None = Field(
        None,
        description="CUDA: max reserved by torch, or the device's peak (NVML) for a backend whose engine runs in "
        "its own process (vLLM); CPU: max RSS. peak_memory_source says which.",
    )
    peak_memory_allocated_bytes: int | None = None
    peak_memory_source: str | None = None
    peak_device_memory_bytes: int | None = Field(
        None,
        description="Most GPU memory in use on the whole device while generating, sampled through NVML: every "
        "process on the card, CUDA contexts included. Comparable across backends; None without NVML.",
    )
    energy_joules: float | None = None
    energy_per_doc_joules: float | None = None
    cost_per_1k_docs_usd: float | None = None
    rouge: Rouge | None = None
    lead3_rouge: Rouge | None = Field(None, description="Extractive lead-3 baseline on the same documents.")
    batches: list[BatchTiming] = Field(default_factory=list)


class ErrorInfo(_Model):
    error_class: str = Field(description="OutOfMemoryError, CudaError, RuntimeError, ContainerOOMKilled, ...")
    message: str


class RunResult(_Model):
    """``result.json``: one run of one image/scenario/GPU/batch-size cell."""

    schema_version: Literal[1] = SCHEMA_VERSION
    schema_minor: int = Field(
        SCHEMA_MINOR, description="Additive changes since the major version (runner.versions.HISTORY)."
    )
    run_id: str
    status: Status
    started_at: str
    finished_at: str
    config: RunConfig
    environment: Environment
    dataset: DatasetInfo | None = None
    backend: BackendInfo | None = None
    batching: Batching
    metrics: Metrics = Field(default_factory=Metrics)
    quality_meaningful: bool = True
    notes: list[str] = Field(default_factory=list)
    error: ErrorInfo | None = None


class DocRecord(_Model):
    """One line of ``docs.jsonl``, appended as each document completes."""

    id: str
    input_tokens: int
    output_tokens: int
    latency_s: float = Field(description="Call time: seconds of the generate call that produced this document.")
    ttft_s: float | None = Field(None, description="Seconds from the call's start to this document's first token.")
    tpot_s: float | None = Field(
        None, description="Seconds per output token after the first, until this document's last (decode)."
    )
    model_s: float | None = Field(
        None, description="Of latency_s, the seconds inside the model's own generate (None: not separable)."
    )
    batch: int = Field(description="Number of that generate call within the run, across resumes.")
    batch_size: int
    summary: str
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None


def json_schema() -> dict[str, Any]:
    """The published JSON Schema for ``result.json``."""
    schema = RunResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
