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


def test_the_worker_sets_expandable_segments_when_the_user_set_nothing():
    """torch's default allocator ran an H200 out of memory at the plan's batch with 51 GiB reserved but
    unallocated; a CUDA run gets expandable segments for its length, and its result says who set them."""
    from runner.contract.allocator import default_applied

    environ = {"HOME": "/somewhere"}
    with default_applied(environ) as note:
        assert environ["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
        assert run_settings(environ) == {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    assert "expandable_segments:True set by the worker (the user set none)" in note
    assert environ == {"HOME": "/somewhere"}  # the caller's environment is its own again


def test_the_users_allocator_setting_is_kept():
    from runner.contract.allocator import default_applied

    environ = {"PYTORCH_ALLOC_CONF": "max_split_size_mb:128"}
    with default_applied(environ) as note:
        assert environ == {"PYTORCH_ALLOC_CONF": "max_split_size_mb:128"}
    assert "the user's setting (max_split_size_mb:128) kept" in note


def test_a_cpu_run_says_nothing_of_a_cuda_allocator(make_run_dir, run_worker, monkeypatch):
    """The demo printed 'CUDA allocator: ... set by the worker' on a CPU: noise about a GPU it never used."""
    for name in RUN_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    run_dir = make_run_dir(limit=2)
    assert run_worker(run_dir) == 0
    result = read_result(run_dir)
    assert result["config"]["device"] == "cpu"
    assert result["environment"]["settings"] == {}
    assert not any("allocator" in n for n in result["notes"])


def test_which_allocator_a_worker_will_run_with():
    from runner.contract.allocator import expandable

    assert expandable({}) and expandable({"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True,max_split_size_mb:64"})
    assert not expandable({"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:64"})
    assert not expandable({"PYTORCH_ALLOC_CONF": "expandable_segments:False"})
