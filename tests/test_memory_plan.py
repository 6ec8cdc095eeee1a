"""The memory plan: parameter counts, bytes per dtype and quantization, and what fits where."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli import main
from runner.contract.architectures import BUILTIN_CONFIGS
from runner.contract.catalog import get_gpu, get_image, images
from runner.contract.errors import UserError
from runner.memory_plan import (
    MAX_PLANNED_BATCH,
    GiB,
    ModelShape,
    context_overflow,
    footprint_for,
    kv_bytes_per_token,
    largest_batch,
    plan_all,
    plan_cell,
    resolve_shape,
    weight_bytes,
)
from runner.scenarios import get_scenario

MiB = 1 << 20


def plan(image: str, scenario: str, gpu: str, model: str = "llama-2-7b", **kwargs):
    return plan_cell(model, get_image(image), get_scenario(scenario), get_gpu(gpu), **kwargs)


@pytest.mark.parametrize(
    ("model", "params"),
    [("llama-2-7b", 6_738_415_616), ("llama-2-13b", 13_015_864_320), ("llama-3-8b", 8_030_261_248)],
)
def test_parameter_counts_match_the_published_checkpoints(model: str, params: int):
    assert resolve_shape(model).params == params


@pytest.mark.parametrize(
    "config",
    [
        dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=512,
            tie_word_embeddings=True,
        ),
        dict(
            hidden_size=96,
            intermediate_size=160,
            num_hidden_layers=3,
            num_attention_heads=6,
            num_key_value_heads=6,
            vocab_size=300,
            tie_word_embeddings=False,
            attention_bias=True,
        ),
        dict(
            hidden_size=64,
            intermediate_size=100,
            num_hidden_layers=1,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=32,
            vocab_size=256,
            mlp_bias=True,
        ),
    ],
)
def test_parameter_formula_matches_a_real_llama(config: dict):
    """The shape arithmetic counts what transformers builds: GQA, tied heads, biases, explicit head_dim."""
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**config))
    assert resolve_shape_from(config).params == sum(p.numel() for p in model.parameters())


def resolve_shape_from(config: dict):
    from runner.memory_plan import ModelShape

    return ModelShape.from_config(config)


def test_a_local_folder_is_planned_from_its_config_json(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 4096,
                "intermediate_size": 11008,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 32,
                "vocab_size": 32000,
            }
        )
    )
    assert resolve_shape(str(tmp_path)).params == resolve_shape("llama-2-7b").params
    assert resolve_shape("meta-llama/Llama-2-7b-chat-hf").params == resolve_shape("llama-2-7b").params


def test_unknown_model_says_what_to_pass():
    with pytest.raises(UserError, match=r"folder with config\.json or a built-in name"):
        resolve_shape("no-such-model")


def test_bytes_per_dtype_and_quantization():
    shape = resolve_shape("llama-2-7b")
    fp16 = weight_bytes(shape, "float16", None)
    assert fp16 == 2 * shape.params  # 13.48 GB, the number every Llama-2-7B memory table starts from
    assert weight_bytes(shape, "float32", None) == 2 * fp16
    assert weight_bytes(shape, "bfloat16", None) == fp16
    nf4, int8 = weight_bytes(shape, "float16", "bnb-nf4"), weight_bytes(shape, "float16", "bnb-int8")
    awq = weight_bytes(shape, "float16", "awq")
    # Embeddings and lm_head stay fp16: 2 x 32000 x 4096 x 2 bytes = 0.49 GiB of every quantized model.
    assert 3.7 * GiB < nf4 < 4.0 * GiB
    assert 6.3 * GiB < int8 < 6.7 * GiB
    assert 3.5 * GiB < awq < nf4
    assert kv_bytes_per_token(shape, "float16") == 512 * 1024  # 32 layers x 32 heads x 128 x (K, V) x 2 B
    gqa = resolve_shape("llama-3-8b")
    assert kv_bytes_per_token(gqa, "float16") == 128 * 1024  # 8 KV heads: a quarter of the cache


def test_llama2_7b_fp16_on_t4_fits_only_a_few_sequences():
    """12.55 GiB of weights leave a T4 (15 GiB) about 1.4 GiB: a couple of 815-token sequences."""
    cell = plan("hf", "default", "t4", prompt_tokens=515, max_new_tokens=300)
    assert cell.status == "fits"
    assert cell.weights_bytes == pytest.approx(12.55 * GiB, rel=0.01)
    assert cell.kv_per_sequence_bytes == 815 * 512 * 1024
    assert 1 <= cell.max_batch <= 4  # type: ignore[operator]
    assert cell.verdict() == f"fits up to batch {cell.max_batch}"


def test_memory_limit_turns_a_fit_into_a_shortfall():
    cell = plan("hf", "default", "t4", memory_limit=13 * GiB)
    assert cell.status == "does_not_fit"
    assert 0 < cell.shortfall_bytes < 1 * GiB  # type: ignore[operator]
    assert cell.verdict().startswith("does not fit: 0.")


def test_fp32_on_t4_does_not_fit_by_the_weights_alone():
    cell = plan("hf", "fp32", "t4")
    assert cell.status == "does_not_fit"
    assert cell.shortfall_bytes > 10 * GiB  # type: ignore[operator]  # 25 GiB of weights on a 15 GiB card


def test_four_bit_fits_on_t4_with_room_for_a_batch():
    cell = plan("hf-bnb", "4-bit", "t4")
    assert cell.status == "fits" and cell.max_batch >= 8  # type: ignore[operator]


def test_a100_80gb_fits_large_batches():
    cell = plan("hf", "default", "a100-80gb")
    assert cell.status == "fits" and 100 <= cell.max_batch < MAX_PLANNED_BATCH  # type: ignore[operator]


def test_h100_batch_128_needs_51_gib_of_cache():
    """128 x 815 tokens x 0.5 MiB = 51 GiB of KV: allocated, that fits 80 GB beside 12.5 GiB of weights;
    with the allocator's headroom for a cache grown by torch.cat it is just past the plan's limit."""
    fp = footprint_for("llama-2-7b", get_scenario("default"), get_gpu("h100"), 515, 300)
    assert 128 * fp.kv_per_sequence == pytest.approx(51 * GiB, rel=0.01)
    assert fp.peak_allocated(128) < get_gpu("h100").memory_bytes
    cell = plan("hf", "default", "h100")
    assert 96 <= cell.max_batch < 128  # type: ignore[operator]


def test_vllm_batches_are_capped_and_explained():
    cell = plan("vllm", "vllm", "h200")
    assert cell.status == "fits" and cell.capped and cell.max_batch == MAX_PLANNED_BATCH
    assert "capped" in cell.verdict()
    assert any("vLLM schedules" in n for n in cell.notes)


def test_vllm_fp16_llama2_7b_does_not_fit_a_t4():
    """vLLM takes 90% of 15 GiB; 12.55 GiB of weights and its profiling pass leave no KV cache."""
    assert plan("vllm", "vllm", "t4").status == "does_not_fit"
    assert plan("vllm-awq", "vllm-awq", "t4").status == "fits"


def test_incompatible_cells_carry_the_rules_reasons():
    cell = plan("hf-flash", "flash-attn", "t4")
    assert cell.status == "incompatible" and cell.max_batch is None
    assert "FlashAttention-2 needs an Ampere GPU" in cell.verdict()
    assert plan("vllm-awq", "vllm-awq", "v100-16gb").status == "incompatible"


def test_bf16_on_t4_is_planned_as_fp16_with_the_note():
    cell = plan("hf", "bf16", "t4")
    assert cell.dtype == "float16" and cell.status == "fits"
    assert any("runs it as fp16" in n for n in cell.notes)


def test_plan_all_covers_each_image_and_its_scenarios():
    cells = plan_all("llama-2-7b", get_gpu("a10g"))
    pairs = {(c.image, c.scenario) for c in cells}
    assert ("hf-bnb", "4-bit") in pairs and ("vllm-awq", "vllm-awq") in pairs
    assert ("vllm", "default") not in pairs  # only the scenarios an image runs
    only = plan_all("llama-2-7b", get_gpu("a10g"), image_keys=("hf",), scenario_names=("default",))
    assert [(c.image, c.scenario) for c in only] == [("hf", "default")]


def test_largest_batch_for_auto():
    scenario = get_scenario("default")
    assert (
        largest_batch("llama-2-7b", scenario, get_gpu("a100-80gb"), 300, None)
        == plan("hf", "default", "a100-80gb").max_batch
    )
    assert largest_batch("llama-2-7b", scenario, get_gpu("h100"), 300, 15 * GiB) in range(1, 8)
    assert largest_batch("llama-2-7b", get_scenario("fp32"), get_gpu("t4"), 300, None) == 1  # fails, recorded
    assert largest_batch("llama-2-7b", get_scenario("fp32"), get_gpu("cpu"), 300, None) is None
    assert largest_batch("not-a-model", scenario, get_gpu("t4"), 300, None) is None
    # Fewer new tokens, smaller cache, bigger batch.
    assert largest_batch("llama-2-7b", scenario, get_gpu("a10g"), 50, None) > largest_batch(
        "llama-2-7b", scenario, get_gpu("a10g"), 300, None
    )


def test_cli_json(capsys):
    main(["plan", "--model", "llama-2-7b", "--gpu", "t4", "--gpu-memory-limit", "15GiB", "--json"])
    out = json.loads(capsys.readouterr().out)
    cells = {(c["image"], c["scenario"]): c for c in out["cells"]}
    assert out["parameters"] == 6_738_415_616 and out["gpu_memory_limit_bytes"] == 15 * GiB
    assert cells[("hf", "default")]["status"] == "fits"
    assert cells[("hf-flash", "flash-attn")]["status"] == "incompatible"
    assert cells[("hf", "fp32")]["verdict"].startswith("does not fit")


def test_cli_table_and_errors(capsys):
    main(["plan", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--image", "hf"])
    assert "fits up to batch" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["plan", "--model", "no-such-model", "--gpu", "t4"])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "folder with config.json" in err


@pytest.mark.parametrize("as_json", [[], ["--json"]])
def test_image_without_the_scenario_is_an_error_not_an_empty_plan(capsys, as_json):
    with pytest.raises(SystemExit) as done:
        main(["plan", "--model", "llama-2-7b", "--gpu", "t4", "--image", "hf", "--scenario", "vllm", *as_json])
    assert done.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    runs = "default, bf16, eager, fp32, sdpa-flash, hf-compile"
    assert err.strip() == f"error: image hf does not run scenario vllm (it runs: {runs})"


def test_context_length_is_checked(capsys):
    shape = resolve_shape("llama-2-7b")
    assert shape.context_length == 4096 and resolve_shape("llama-3-8b").context_length == 8192
    assert context_overflow(shape, 3796, 300) is None  # exactly the context
    assert "make 4097, more than the model's context length of 4096" in context_overflow(shape, 3797, 300)

    args = ["plan", "--model", "llama-2-7b", "--gpu", "a100-80gb", "--image", "hf", "--scenario", "default", "--json"]
    main([*args, "--prompt-tokens", "5000"])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["context_length"] == 4096 and data["exceeds_context"] is True
    assert err.startswith("warning: llama-2-7b: 5000 prompt + 300 new tokens make 5300") and "4096" in err
    main(args)
    out, err = capsys.readouterr()
    assert json.loads(out)["exceeds_context"] is False and err == ""


def test_context_length_is_read_from_whichever_key_the_family_uses():
    from runner.contract.architectures import BUILTIN_CONFIGS, declared_context
    from runner.memory_plan import ModelShape

    llama = dict(BUILTIN_CONFIGS["llama-2-7b"])
    del llama["max_position_embeddings"]
    shape = ModelShape.from_config({**llama, "seq_length": 2048})  # ChatGLM-style
    assert (shape.context_length, shape.context_key) == (2048, "seq_length")
    assert "context length of 2048 (seq_length)" in context_overflow(shape, 2000, 300)
    assert ModelShape.from_config(llama).context_length is None  # unknown: nothing is claimed
    assert declared_context({"max_position_embeddings": 4096, "n_positions": 1024}) == ("max_position_embeddings", 4096)
    assert declared_context({"n_positions": True, "max_seq_len": 0}) is None  # no bools, no zeros


def test_table_counts_small_models_and_keeps_names_whole(capsys):
    main(["plan", "--model", "tiny-llama", "--gpu", "t4", "--image", "hf-flash"])
    out = capsys.readouterr().out
    assert "tiny-llama (built-in architecture, 598K parameters) on NVIDIA T4" in out
    # Not a terminal: the table keeps its natural width, so a long verdict does not squeeze the names.
    assert re.search(r"^│ hf-flash │ flash-attn │ .*incompatible: FlashAttention-2 needs an Ampere GPU", out, re.M)


def test_planning_never_imports_torch():
    code = "import sys, runner.memory_plan, runner.cli.plan; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_launch_auto_takes_its_starting_batch_from_the_plan():
    """`runner launch --batch-size auto` on a GPU starts at the plan's largest batch, capped by the limit."""
    from runner.launching import LaunchRequest, build_config
    from runner.paths import SAMPLE_DATASET

    def config(**kwargs):
        req = LaunchRequest(
            model="llama-2-7b",
            data=str(SAMPLE_DATASET),
            image="hf",
            batch_size="auto",
            synthetic_weights=True,
            **kwargs,
        )
        return build_config(req)[0]

    assert config(gpu="a100-80gb").max_batch_size == plan("hf", "default", "a100-80gb").max_batch
    assert config(gpu="a100-80gb", gpu_memory_limit=15 * GiB).max_batch_size in range(1, 8)
    assert config(gpu="a100-80gb", max_batch_size=8).max_batch_size == 8  # an explicit bound wins


def test_the_auto_ladder_plans_every_prompt_length_up_to_the_limit():
    """The host cannot count tokens; it hands the worker the plan's batch for prompts of up to N tokens, from
    the default length up to the longest prompt that may run, so a run of longer prompts starts smaller."""
    from runner.contract.defaults import PROMPT_TOKENS
    from runner.memory_plan import LADDER_STEP, auto_batch_ladder

    scenario, h200 = get_scenario("default"), get_gpu("h200")
    ladder = auto_batch_ladder("llama-2-7b", scenario, h200, 300, None, True, 4096 - 300)
    tokens, batches = [n for n, _ in ladder], [b for _, b in ladder]
    assert ladder[0] == (PROMPT_TOKENS, largest_batch("llama-2-7b", scenario, h200, 300, None))
    assert tokens[-1] == 3796 and tokens == sorted(set(tokens))
    assert all(b / a <= LADDER_STEP + 0.01 for a, b in itertools.pairwise(tokens))  # no rung far from the next
    assert batches == sorted(batches, reverse=True) and batches[-1] < batches[0] / 3
    for n, b in ladder:  # each rung is the plan itself at that length
        assert b == largest_batch("llama-2-7b", scenario, h200, 300, None, True, n)
    assert auto_batch_ladder("llama-2-7b", get_scenario("vllm"), h200, 300, None, True, 3796) is None
    assert auto_batch_ladder("llama-2-7b", scenario, get_gpu("cpu"), 300, None, True, 3796) is None


def test_launch_hands_the_ladder_to_the_worker_up_to_the_context():
    from runner.launching import LaunchRequest, build_config
    from runner.paths import SAMPLE_DATASET

    req = LaunchRequest(
        model="llama-2-7b", data=str(SAMPLE_DATASET), image="hf", gpu="h200", batch_size="auto", synthetic_weights=True
    )
    config = build_config(req)[0]
    assert config.auto_batch_plan[0] == (515, config.max_batch_size)
    assert config.auto_batch_plan[-1][0] == 4096 - 300  # Llama-2's context less the new tokens
    fixed = build_config(dataclasses.replace(req, batch_size=8))[0]
    assert fixed.auto_batch_plan is None


def test_a_folder_named_like_a_built_in_is_planned_as_the_folder(tiny_model, tmp_path, monkeypatch, capsys):
    """`plan --model tiny-llama` beside a ./tiny-llama folder reads the folder, as `launch` would load it."""
    shutil.copytree(tiny_model, tmp_path / "tiny-llama")
    monkeypatch.chdir(tmp_path)
    folder = resolve_shape("tiny-llama").params
    assert (
        folder
        == resolve_shape(str(tiny_model)).params
        != ModelShape.from_config({"model_type": "llama", **BUILTIN_CONFIGS["tiny-llama"]}).params
    )
    main(["plan", "--model", "tiny-llama", "--gpu", "t4", "--image", "hf"])
    assert "tiny-llama (folder tiny-llama/, " in capsys.readouterr().out
    monkeypatch.chdir(tmp_path.parent)  # no folder of that name here: the built-in
    main(["plan", "--model", "tiny-llama", "--gpu", "t4", "--image", "hf", "--json"])
    assert json.loads(capsys.readouterr().out)["model_source"] == "built-in architecture"


def test_images_for_the_other_kind_of_device_are_left_out_unless_named(capsys):
    main(["plan", "--model", "llama-2-7b", "--gpu", "t4", "--json"])
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert cells and all(c["image"] != "cpu" for c in cells)
    main(["plan", "--model", "llama-2-7b", "--gpu", "t4"])
    cpu_cells = sum(len(i.scenarios) for i in images().values() if i.device == "cpu")  # cpu and vllm-cpu
    left_out = f"({cpu_cells} cells of images built for the CPU left out: name one with --image to see it)"
    assert left_out in capsys.readouterr().out
    main(["plan", "--model", "llama-2-7b", "--gpu", "t4", "--image", "cpu", "--json"])
    assert {c["status"] for c in json.loads(capsys.readouterr().out)["cells"]} == {"incompatible"}


def test_a_cpu_cell_is_planned_against_this_machines_memory(monkeypatch):
    from runner import memory_plan

    cpu, image = get_gpu("cpu"), get_image("cpu")
    monkeypatch.setattr(memory_plan, "host_memory_available", lambda: 20 * GiB)  # what /proc/meminfo would say
    short = plan_cell("llama-2-7b", image, get_scenario("fp32"), cpu)  # 25.1 GiB of fp32 weights
    assert short.status == "does_not_fit" and short.host
    assert short.verdict().startswith("does not fit: 5.9 GiB short of the 20.0 GiB available here")
    fits = plan_cell("llama-2-7b", image, get_scenario("default"), cpu)  # 12.6 GiB in fp16
    assert fits.status == "unplanned" and "fits the 20.0 GiB available here" in fits.verdict()
    monkeypatch.setattr(memory_plan, "host_memory_available", lambda: None)  # not Linux: nothing claimed
    assert plan_cell("llama-2-7b", image, get_scenario("fp32"), cpu).verdict().endswith("not planned")
    fp32 = memory_plan.footprint_for("llama-2-7b", get_scenario("fp32"), cpu)
    assert memory_plan.host_shortfall(fp32, memory_plan.host_memory_available()) is None


def test_host_memory_is_read_from_proc_meminfo():
    from runner.memory_plan import host_memory_available

    available = host_memory_available()
    if not Path("/proc/meminfo").exists():
        assert available is None
        return
    total = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
    assert 0 < available <= total * 1024


def test_launch_refuses_a_cpu_model_larger_than_this_machines_memory(tiny_model, tmp_path, monkeypatch, capsys):
    from conftest import one_line

    from runner import memory_plan
    from runner.launching import LaunchRequest, build_config, check_launch_options
    from runner.paths import SAMPLE_DATASET

    monkeypatch.setattr(memory_plan, "host_memory_available", lambda: 64 * 1024)  # 64 KiB: the tiny model is bigger
    line = one_line(capsys, ["launch", "--model", str(tiny_model), "--results", str(tmp_path / "results")])
    assert re.fullmatch(r"error: .*tiny.* needs about 1\.\d MiB on the CPU .* or pass --force to try anyway", line)
    assert not (tmp_path / "results").exists()
    request = LaunchRequest(model=str(tiny_model), data=str(SAMPLE_DATASET))
    check_launch_options(dataclasses.replace(request, force=True))  # --force tries anyway
    check_launch_options(dataclasses.replace(request, executor="docker"))  # a Docker engine has its own memory
    build_config(request)  # a matrix plans cells for machines it has not seen
    monkeypatch.setattr(memory_plan, "host_memory_available", lambda: 64 * GiB)
    check_launch_options(request)


def test_headroom_is_checked_against_reserved_memory_for_the_workers_allocator(monkeypatch):
    """On an H200 the plan's batch 224 ran out of memory under torch's default allocator, reserved memory
    at 1.69x the allocated growth (86.88 GiB allocated, 51.43 GiB reserved but unallocated). With that
    allocator the plan now proposes a batch whose reserved memory at that ratio fits; with the worker's
    default (expandable segments, 1.14x measured on an H100) it keeps the batch it had."""
    from runner.launching import LaunchRequest, build_config
    from runner.memory_plan import budget_bytes, footprint_for, reserved_factor
    from runner.paths import SAMPLE_DATASET

    h200, scenario = get_gpu("h200"), get_scenario("default")
    expandable = largest_batch("llama-2-7b", scenario, h200, 300, None)
    default = largest_batch("llama-2-7b", scenario, h200, 300, None, expandable=False)
    assert expandable == 224 and default < expandable
    fp = footprint_for("llama-2-7b", scenario, h200, 515, 300, expandable=False)
    budget = budget_bytes(h200, None)
    assert fp.weights + 1.69 * fp.growing(default) <= budget < fp.weights + 1.69 * fp.growing(expandable)
    assert reserved_factor(False) > 1.69 and reserved_factor(True) > 1.14

    def auto(**kwargs) -> int | None:
        req = LaunchRequest(
            model="llama-2-7b", data=str(SAMPLE_DATASET), image="hf", gpu="h200", batch_size="auto",
            synthetic_weights=True, **kwargs,
        )  # fmt: skip
        return build_config(req)[0].max_batch_size

    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    monkeypatch.delenv("PYTORCH_ALLOC_CONF", raising=False)
    assert auto() == expandable
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128")  # the worker keeps the user's
    assert auto() == default
