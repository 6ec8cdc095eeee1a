"""Reading an engine process's root cause out of the output it printed (vLLM V1's log shapes)."""

from __future__ import annotations

from runner.contract.engine_failures import explain, root_cause
from runner.contract.schema import ErrorInfo

DIED = ErrorInfo(
    error_class="RuntimeError",
    message="Engine core initialization failed. See root cause above. Failed core proc(s): {'EngineCore_DP0': 1}",
)
TRACEBACK_TAIL = [
    "(EngineCore_DP0 pid=12809) INFO 11-26 10:00:01 [gpu_worker.py:358] Available KV cache memory: -0.5 GiB",
    "(EngineCore_DP0 pid=12809) ERROR 11-26 10:00:02 [core.py:936] EngineCore failed to start.",
    "(EngineCore_DP0 pid=12809) ERROR 11-26 10:00:02 [core.py:936] Traceback (most recent call last):",
    '(EngineCore_DP0 pid=12809) ERROR 11-26 10:00:02 [core.py:936]   File "kv_cache_utils.py", line 616, in _check',
    "(EngineCore_DP0 pid=12809) ERROR 11-26 10:00:02 [core.py:936] ValueError: No available memory for the cache "
    "blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
    "2026-11-26 10:00:03 ERROR runner.worker.run RuntimeError: Engine core initialization failed. See root cause "
    "above. Failed core proc(s): {'EngineCore_DP0': 1}",
]


def test_out_of_memory_behind_vllm_prefixes_is_an_out_of_memory_error():
    explained = explain(DIED, TRACEBACK_TAIL)
    assert explained is not None and explained.error_class == "OutOfMemoryError"
    assert explained.message.startswith("ValueError: No available memory for the cache blocks.")


def test_another_root_cause_keeps_its_class_and_the_workers_words():
    lines = ["(EngineCore_DP0 pid=7) RuntimeError: FlashAttention only supports Ampere GPUs or newer."]
    explained = explain(DIED, lines)
    assert explained is not None and explained.error_class == "RuntimeError"
    assert "Ampere" in explained.message and "Engine core initialization failed" in explained.message


def test_the_last_exception_printed_wins_and_the_workers_own_report_is_skipped():
    lines = [
        "KeyError: 'early'",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        *DIED.message.split("\n"),
    ]
    assert root_cause(lines, DIED.message) == ("OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB")


def test_errors_that_are_not_an_engine_death_are_left_alone():
    plain = ErrorInfo(error_class="RuntimeError", message="shape mismatch")
    assert explain(plain, TRACEBACK_TAIL) is None
    assert explain(DIED, ["INFO all fine", "no exception here"]) is None
