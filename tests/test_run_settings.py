"""Environment variables that change memory or speed are part of a result: two runs of one config under
different allocator settings are different measurements (on an H100, torch's default allocator kept 78 GiB
reserved at batch 32 where expandable segments kept 27)."""

from __future__ import annotations

from conftest import read_result

from runner.worker.environment import RUN_SETTINGS, run_settings


def test_only_the_listed_variables_that_are_set_are_kept():
    env = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "HOME": "/somewhere", "HF_TOKEN": "hf_secret"}
    assert run_settings(env) == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    assert run_settings({}) == {}
    assert "HF_TOKEN" not in RUN_SETTINGS


def test_a_worker_run_records_its_settings(make_run_dir, run_worker, monkeypatch):
    for name in RUN_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    run_dir = make_run_dir(limit=2)
    assert run_worker(run_dir) == 0
    assert read_result(run_dir)["environment"]["settings"] == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}


def test_vllm_cpu_settings_are_kept():
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "0-1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    assert run_settings(env | {"VLLM_API_KEY": "secret"}) == env
