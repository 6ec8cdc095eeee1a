"""The one results schema, shared by the host side and the worker.

``RunConfig`` is what the host hands a worker; ``DocRecord`` is one line of ``docs.jsonl``;
``RunResult`` is ``result.json``. ``runner schema`` writes the JSON Schema of ``RunResult`` to
``schema/result.schema.json`` so that other tools can validate results without importing sumbench.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runner.contract.defaults import MAX_NEW_TOKENS
from runner.contract.versions import PROTOCOL, SCHEMA_MINOR, SCHEMA_VERSION

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


class ServingConfig(_Model):
    """How a serving run drives its server: the load levels, the objective, the server to reach."""

    endpoint: str | None = Field(
        None, description="Base URL of a running OpenAI-compatible server; None: the worker starts `vllm serve`."
    )
    api_key_env: str | None = Field(
        None, description="Name of the environment variable holding the API key; the key itself is never written."
    )
    api: Literal["chat", "completions"] = Field(
        "chat",
        description="chat: /v1/chat/completions, the server applies the model's chat template; completions: "
        "/v1/completions with the --prompt-template text.",
    )
    request_rates: list[float | None] = Field(
        default_factory=lambda: [None],
        description="Offered request rates (requests/s, Poisson arrivals), one load level each; None: every "
        "request at once (bounded only by max_concurrency).",
    )
    max_concurrency: int | None = Field(None, ge=1, description="Most requests in flight at once; None: no cap.")
    num_prompts: int | None = Field(
        None, ge=1, description="Requests per level, cycling through the documents; None: each document once."
    )
    warmup_requests: int = Field(2, ge=0, description="Untimed requests, one at a time, before the first level.")
    duration_s: float | None = Field(
        None, gt=0, description="Bound on each level: no request starts later, and those still running are cancelled."
    )
    request_timeout_s: float = Field(300.0, gt=0)
    server_start_timeout_s: float = Field(600.0, gt=0)
    server_extra_args: list[str] = Field(default_factory=list, description="More arguments for vllm serve.")
    slo_ttft_s: float | None = Field(None, gt=0)
    slo_tpot_s: float | None = Field(None, gt=0)
    slo_attainment: float = Field(
        0.9, gt=0, le=1, description="Share of a level's requests that must meet the SLO for it to be sustainable."
    )


class RunConfig(_Model):
    """Everything a worker needs for one run. Written to ``config.json`` in the run folder."""

    run_id: str
    image: str = "cpu"
    gpu: str = "cpu"
    scenario: str = "default"
    backend: Literal["hf", "vllm", "endpoint"] = "hf"
    dtype: str = "float16"
    attention: str | None = None
    quantization: str | None = None
    sdpa_backend: str | None = Field(
        None, description="The one PyTorch SDPA kernel attention is held to (e.g. FLASH_ATTENTION); None: SDPA picks."
    )
    torch_compile: bool = Field(
        False, description="Static KV cache and torch.compile of the decoding step (scenario hf-compile)."
    )
    model: str
    base_model: str | None = Field(
        None,
        description="For a quantized checkpoint (--base-model): the model it was made from. Reports gate and "
        "compare it against that model's runs, as they do bitsandbytes runs of one checkpoint.",
    )
    synthetic_weights: bool = False
    model_fingerprint: str | None = Field(
        None,
        description="sha256 over a local model folder's file names and sizes, small files' content and large "
        "files' first MiB (runner/fingerprint.py), taken at launch; a resumed run refuses another. None: a hub "
        "id or built-in name, or a run started before it was recorded.",
    )
    data: str
    dataset_sha256: str | None = Field(
        None,
        description="The selected documents' content hash at launch (as DatasetInfo.sha256); a resumed run "
        "refuses another. None in runs started before it was recorded.",
    )
    text_field: str | None = None
    summary_field: str | None = None
    id_field: str | None = None
    limit: int | None = Field(None, ge=1)
    batch_size: BatchSize = 1
    max_batch_size: int | None = Field(None, ge=1, description="Upper bound for --batch-size auto.")
    auto_batch_plan: list[tuple[int, int]] | None = Field(
        None,
        description="For --batch-size auto on a GPU: the memory plan's (prompt tokens, largest batch) rungs, "
        "ascending; the worker starts at the rung covering its longest prompt, at most max_batch_size.",
    )
    max_new_tokens: int = Field(MAX_NEW_TOKENS, ge=1)
    max_input_tokens: int = Field(4096, ge=1)
    force_output_length: bool = False
    prompt_template: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    gpu_memory_limit_bytes: int | None = Field(None, ge=1)
    max_skipped_fraction: float = Field(0.1, ge=0, le=1)
    vllm_gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    vllm_enforce_eager: bool = False
    vllm_kv_cache_memory_bytes: int | None = Field(
        None,
        ge=1,
        description="vLLM's KV cache size (--kv-cache-memory); None: vLLM sizes it from gpu_memory_utilization, "
        "except on a CPU, where the worker caps it (runner.worker.backends.vllm.CPU_KV_CACHE_BYTES).",
    )
    forced: bool = Field(False, description="Launched with --force despite a known incompatibility.")
    incompatibility: str | None = None
    price_per_hour_usd: float | None = None
    price_source: str | None = Field(
        None,
        description="Where price_per_hour_usd comes from: 'given: --price-per-hour', 'catalog: <instance, region, "
        "on-demand, year>' (runner/contract/catalog/gpus.toml), or 'none: <why no price was recorded>' (a spot "
        "instance, another cloud than the catalog's); None in results written before it was recorded.",
    )
    seed: int = 0
    warmup: Warmup = Field(
        "full",
        description="The untimed call before timing: 'full' (the first batch at the run's output length, so "
        "first-use costs at that shape stay out of docs/s), 'short' (a few new tokens), 'none'.",
    )
    protocol: int = Field(
        PROTOCOL,
        description="What a worker must understand of this config (runner.contract.versions); a worker refuses a "
        "higher one.",
    )
    launch: LaunchInfo = Field(default_factory=LaunchInfo)
    serving: ServingConfig | None = Field(
        None, description="Set for a serving run (docs/serving.md): a server driven under load instead of batches."
    )


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


class WeightsInfo(_Model):
    """What the loaded model's weights are, measured on it rather than read from the scenario's name."""

    bytes: int = Field(description="Bytes of the model's parameters and buffers as loaded (packed 4-bit included).")
    parameters: int = Field(description="Weights the model computes with: a packed 4-bit tensor counts each weight.")
    bits_per_parameter: float = Field(description="8 x bytes / parameters.")
    storage_dtypes: dict[str, int] = Field(
        default_factory=dict, description="Storage dtype of the parameters -> their elements as stored."
    )
    linear_layers: dict[str, int] = Field(
        default_factory=dict, description="Class of the Linear layers (Linear, Linear4bit, Linear8bitLt...) -> count."
    )


class BackendInfo(_Model):
    name: str
    dtype: str
    attention: str | None = Field(None, description="Attention implementation that actually ran.")
    quantization: str | None = None
    weights: WeightsInfo | None = Field(None, description="Measured on the loaded model; None where not measurable.")
    details: dict[str, Any] = Field(default_factory=dict)


class OOMEvent(_Model):
    batch_size: int
    documents: list[str]
    message: str
    seconds: float | None = Field(
        None, description="The call that ran out of memory, until it failed: part of end_to_end_seconds."
    )
    in_warmup: bool | None = Field(None, description="Whether that call was the warm-up (else a timed call).")


class Batching(_Model):
    requested: BatchSize
    final: int | None = Field(
        None,
        description="The largest batch that ran: the requested size, or less where an out-of-memory halving "
        "or too few documents left less.",
    )
    planned_max: int | None = None
    oom_events: list[OOMEvent] = Field(default_factory=list)


class BatchTiming(_Model):
    size: int
    seconds: float
    output_tokens: int
    model_seconds: float | None = Field(None, description="Of ``seconds``, those inside the model's own generate.")
    padded_tokens: int | None = Field(
        None, description="The prompt length the call's batch was padded to: with ``size``, the call's shape."
    )


class Rouge(_Model):
    rouge1: float
    rouge2: float
    rougeL: float


class Percentiles(_Model):
    p50: float
    p90: float
    p99: float


class Metrics(_Model):
    documents: int = Field(
        0,
        description="Documents summarized in this run (resumed ones included); for a serving run, the requests "
        "answered over all its load levels.",
    )
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
    compile_seconds: float | None = Field(
        None,
        description="Seconds torch.compile spent compiling (hf-compile), apart from docs/s like model load; "
        "None where nothing was compiled.",
    )
    compile_seconds_timed: float | None = Field(
        None,
        description="Of compile_seconds, those inside timed calls (a batch size first seen after warm-up): "
        "docs/s includes them.",
    )
    wall_seconds: float | None = Field(None, description="The worker process's life until its result is written.")
    end_to_end_seconds: float | None = Field(
        None,
        description="Model load + warm-up + calls that ran out of memory + every timed call (this process's "
        "load, warm-up and failed calls; all timed calls of the run, resumed ones included): what the "
        "documents cost with nothing left out.",
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


class Distribution(_Model):
    """Mean and percentiles (linear interpolation) of one per-request figure over a level's requests."""

    n: int = 0
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


RequestStatus = Literal["ok", "error", "timeout", "refused", "cancelled", "not_sent"]


class ServingLevel(_Model):
    """One load level of a serving run: its offered load and what the server delivered under it."""

    request_rate: float | None = Field(description="Offered requests/s (Poisson); None: all at once.")
    max_concurrency: int | None = None
    requests: int = Field(description="Requests scheduled at this level (warm-up excluded).")
    statuses: dict[str, int] = Field(default_factory=dict, description="Requests by status (RequestStatus).")
    duration_s: float | None = Field(None, description="First request sent to last response ended.")
    requests_per_second: float | None = Field(None, description="Completed (ok) requests / duration_s.")
    output_tokens_per_second: float | None = None
    total_input_tokens: int = 0
    total_output_tokens: int = 0
    ttft_s: Distribution = Field(default_factory=Distribution)
    itl_s: Distribution = Field(default_factory=Distribution)
    tpot_s: Distribution = Field(default_factory=Distribution)
    e2e_s: Distribution = Field(default_factory=Distribution)
    slo_met: int | None = Field(None, description="Requests that completed within both SLOs; None without --slo.")
    goodput_rps: float | None = Field(None, description="slo_met / duration_s.")
    sustainable: bool | None = Field(None, description="slo_met / requests >= slo_attainment.")
    rouge: Rouge | None = None


class ServingResult(_Model):
    """``result.json``'s serving part: the server, and one entry per load level."""

    server: str = Field(description="'vllm serve (started by the worker)' or 'endpoint'.")
    endpoint: str | None = None
    server_version: str | None = None
    server_args: list[str] = Field(default_factory=list)
    server_start_seconds: float | None = None
    warmup_seconds: float | None = None
    levels: list[ServingLevel] = Field(default_factory=list)
    sustainable_request_rate: float | None = Field(
        None,
        description="Highest offered rate whose level was sustainable; for an all-at-once level that was, its "
        "achieved requests/s. None without --slo or when no level was.",
    )


class ErrorInfo(_Model):
    error_class: str = Field(description="OutOfMemoryError, CudaError, RuntimeError, ContainerOOMKilled, ...")
    message: str


class RunResult(_Model):
    """``result.json``: one run of one image/scenario/GPU/batch-size cell."""

    schema_version: Literal[1] = SCHEMA_VERSION
    schema_minor: int = Field(
        SCHEMA_MINOR, description="Additive changes since the major version (runner.contract.versions.HISTORY)."
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
    serving: ServingResult | None = Field(None, description="Serving runs only; their figures are per load level.")


class DocRecord(_Model):
    """One line of ``docs.jsonl``, appended as each document completes."""

    id: str
    input_tokens: int
    output_tokens: int
    latency_s: float = Field(description="Call time: seconds of the generate call that produced this document.")
    ttft_s: float | None = Field(
        None,
        description="Seconds from the start of the model's work on the call to this document's first token "
        "(vLLM: from the request's arrival).",
    )
    tpot_s: float | None = Field(
        None, description="Seconds per output token after the first, until this document's last (decode)."
    )
    model_s: float | None = Field(
        None, description="Of latency_s, the seconds inside the model's own generate (None: not separable)."
    )
    batch: int = Field(description="Number of that generate call within the run, across resumes.")
    batch_size: int
    padded_tokens: int | None = Field(
        None, description="The prompt length the call's batch was padded to (None: a backend that does not pad)."
    )
    summary: str
    doc_sha256: str | None = Field(
        None, description="The document's own content hash (id, text, references) when it was summarized."
    )
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None


class RequestRecord(_Model):
    """One line of ``requests.jsonl`` in a serving run: one request, whatever became of it."""

    level: int
    index: int = Field(description="Order of the request within its level.")
    id: str = Field(description="The document's id.")
    status: RequestStatus
    http_status: int | None = None
    error: str | None = None
    scheduled_s: float = Field(description="Arrival time, seconds after the level started.")
    sent_s: float | None = Field(None, description="When it was sent (later than scheduled under max_concurrency).")
    ttft_s: float | None = Field(None, description="Sent to the first streamed token.")
    e2e_s: float | None = Field(None, description="Sent to the end of the stream.")
    itl_s: list[float] = Field(default_factory=list, description="Gaps between streamed chunks with text.")
    input_tokens: int | None = Field(None, description="The server's usage.prompt_tokens.")
    output_tokens: int | None = Field(None, description="The server's usage.completion_tokens.")
    finish_reason: str | None = None
    summary: str = ""
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None


def json_schema() -> dict[str, Any]:
    """The published JSON Schema for ``result.json``."""
    schema = RunResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
