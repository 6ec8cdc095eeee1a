"""The hf scenarios added beside the study's: sdpa-flash (SDPA held to its FlashAttention kernel) and
hf-compile (static KV cache + torch.compile), and which images and GPUs accept them."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from runner import compat
from runner.contract import catalog
from runner.contract.errors import UserError
from runner.launching import LaunchRequest, build_config
from runner.matrix import expand
from runner.paths import SAMPLE_DATASET
from runner.scenarios import get_scenario

GPU_SCENARIOS = {
    "default": "hf",
    "eager": "hf",
    "bf16": "hf",
    "sdpa-flash": "hf",
    "hf-compile": "hf",
    "4-bit": "hf-bnb",
    "8-bit": "hf-bnb",
}
"""What the GPU check runs on an H200 through the process executor, and the image it names."""


@pytest.mark.parametrize(("scenario", "image"), sorted(GPU_SCENARIOS.items()))
def test_gpu_check_cells_are_accepted_on_h200(tiny_model, scenario, image):
    config, _ = build_config(
        LaunchRequest(model=str(tiny_model), data=str(SAMPLE_DATASET), image=image, gpu="h200", scenario=scenario)
    )
    assert config.scenario == scenario and not config.forced
    assert config.torch_compile is (scenario == "hf-compile")
    assert config.sdpa_backend == ("FLASH_ATTENTION" if scenario == "sdpa-flash" else None)


@pytest.mark.parametrize("image", ["hf", "hf-bnb"])
def test_sdpa_flash_and_compile_run_on_both_cuda_transformers_images(image):
    for name in ("sdpa-flash", "hf-compile"):
        assert compat.check(catalog.get_image(image), get_scenario(name), catalog.get_gpu("a100-80gb")) == []


def test_sdpa_flash_is_refused_below_ampere_with_the_studys_reason():
    reasons = compat.check(catalog.get_image("hf"), get_scenario("sdpa-flash"), catalog.get_gpu("t4"))
    assert reasons == ["FlashAttention-2 needs an Ampere GPU or newer (compute capability 8.0); NVIDIA T4 is 7.5"]


def test_sdpa_flash_is_refused_on_a_cpu_unless_forced(tiny_model):
    request = LaunchRequest(model=str(tiny_model), data=str(SAMPLE_DATASET), image="cpu", scenario="sdpa-flash")
    with pytest.raises(UserError, match="CUDA FlashAttention-2 kernel, which a CPU does not have"):
        build_config(request)
    request.force = True
    config, _ = build_config(request)
    assert config.forced and "CPU does not have" in config.incompatibility


def test_sdpa_flash_runs_one_prompt_at_a_time(tiny_model):
    request = LaunchRequest(
        model=str(tiny_model), data=str(SAMPLE_DATASET), image="hf", gpu="h200", scenario="sdpa-flash", batch_size=4
    )
    with pytest.raises(UserError, match=r"takes no attention mask.*use --batch-size 1"):
        build_config(request)
    cells = expand(["hf"], ["sdpa-flash"], ["h200"], [1, 8, "auto"])
    assert [(c.batch_size, c.status) for c in cells] == [(1, "planned"), (8, "dropped"), ("auto", "dropped")]


def test_hf_compile_needs_no_gpu_and_sdpa_flash_does():
    cpu = catalog.get_gpu("cpu")
    assert compat.check(catalog.get_image("cpu"), get_scenario("hf-compile"), cpu) == []
    assert compat.check(catalog.get_image("hf"), get_scenario("sdpa-flash"), catalog.get_gpu("h200")) == []


class _SdpaSpy:
    """Records, for every SDPA call, whether it got a mask and which kernels SDPA was allowed."""

    def __init__(self):
        from torch.overrides import TorchFunctionMode

        spy = self
        self.calls: list[tuple[bool, bool, bool]] = []

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                import torch

                kwargs = kwargs or {}
                if func is torch.nn.functional.scaled_dot_product_attention:
                    spy.calls.append(
                        (
                            kwargs.get("attn_mask") is not None,
                            torch.backends.cuda.flash_sdp_enabled(),
                            torch.backends.cuda.math_sdp_enabled(),
                        )
                    )
                return func(*args, **kwargs)

        self.mode = Mode()


def _backend(tiny_model, **fields):
    from runner.contract.schema import RunConfig
    from runner.worker.backends.hf import HFBackend

    config = RunConfig(run_id="t", model=str(tiny_model), data=str(SAMPLE_DATASET), attention="sdpa", **fields)
    backend = HFBackend(config, "cpu", [])
    backend.load()
    return backend


def test_sdpa_flash_holds_sdpa_to_flash_and_one_prompt_needs_no_mask(tiny_model):
    """What the CUDA flash kernel needs, seen on the CPU: every attention call of a one-prompt batch has no
    mask and may use flash alone; a padded batch of two needs a mask, which that kernel refuses."""
    backend = _backend(tiny_model, sdpa_backend="FLASH_ATTENTION")
    spy = _SdpaSpy()
    with spy.mode:
        [one] = backend.generate(["How to plant a tree: dig a hole twice as wide as the roots."], 4)
    assert one.output_tokens >= 1
    assert spy.calls and all(call == (False, True, False) for call in spy.calls)
    spy = _SdpaSpy()
    with spy.mode:
        backend.generate(["A long prompt of many words about trees and soil.", "Short."], 4)
    assert any(masked for masked, _, _ in spy.calls)


def test_default_scenario_leaves_sdpa_free(tiny_model):
    backend = _backend(tiny_model)
    spy = _SdpaSpy()
    with spy.mode:
        backend.generate(["How to plant a tree."], 2)
    assert spy.calls and all(math for _, _, math in spy.calls)


@pytest.mark.slow
def test_hf_compile_launch_on_cpu_reports_compile_apart(tiny_model, tmp_path):
    """runner launch end to end: every document done, torch.compile's seconds recorded apart, and none of
    them inside the timed calls, the last, smaller batch included (it is padded to the warmed size)."""
    proc = run_cli(
        [
            "launch", "--model", str(tiny_model), "--scenario", "hf-compile", "--limit", "5", "--batch-size", "2",
            "--max-new-tokens", "8", "--results", str(tmp_path), "--run-id", "compiled",
        ],
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "compiled" / "result.json").read_text())
    m = result["metrics"]
    assert result["status"] == "completed" and m["documents"] == 5
    assert [b["size"] for b in m["batches"]] == [2, 2, 1]
    assert m["compile_seconds"] > 0
    assert m["compile_seconds_timed"] == 0
    assert result["config"]["torch_compile"] is True
    assert "static KV cache" in result["backend"]["details"]["compile"]
    assert "compile" in proc.stdout


def test_report_shows_compile_seconds_apart_where_a_run_compiled(finished_run, tmp_path):
    import shutil

    plain = tmp_path / "runs" / "plain"
    shutil.copytree(finished_run, plain)
    compiled = tmp_path / "runs" / "compiled"
    shutil.copytree(finished_run, compiled)
    result = json.loads((compiled / "result.json").read_text())
    result["run_id"] = "compiled"
    result["config"].update(run_id="compiled", scenario="hf-compile", torch_compile=True, dtype="float16")
    result["metrics"].update(compile_seconds=22.5, compile_seconds_timed=0.0)
    (compiled / "result.json").write_text(json.dumps(result))
    proc = run_cli(["report", str(tmp_path / "runs")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Compile s" in proc.stdout and "| 22.5 |" in proc.stdout
    assert "Compile s: all the seconds torch.compile spent compiling" in proc.stdout
    alone = run_cli(["report", str(plain)])
    assert "Compile s" not in alone.stdout


@pytest.mark.parametrize(("scenario", "attention"), [("default", "sdpa"), ("eager", "eager")])
def test_fp16_scenarios_run_on_the_cpu(tiny_model, tmp_path, scenario, attention):
    """The cpu image's fp16 scenarios, run for real: what ran is what the scenario says, measured."""
    proc = run_cli(
        ["launch", "--model", str(tiny_model), "--scenario", scenario, "--limit", "2", "--max-new-tokens", "4",
         "--results", str(tmp_path), "--run-id", scenario]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / scenario / "result.json").read_text())
    assert result["status"] == "completed" and result["metrics"]["documents"] == 2
    assert (result["backend"]["dtype"], result["backend"]["attention"]) == ("float16", attention)
    assert 16 <= result["backend"]["weights"]["bits_per_parameter"] < 16.1


def test_hf_compile_on_a_cpu_without_a_compiler_says_so(tiny_model, monkeypatch):
    """The cpu image has no C++ compiler: the worker stops at load with the reason, not mid-run in inductor."""
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match=r"hf-compile on a CPU needs a C\+\+ compiler"):
        _backend(tiny_model, torch_compile=True)
