"""`runner compare` on real runs: side-by-side metrics, and whether a speed difference is real."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_report import _launch, build_bench, edited_copy, in_process, result_of

from runner.contract import rundir
from runner.contract.errors import UserError
from runner.contract.schema import Rouge, RunResult
from runner.report.compare import compare_runs
from runner.report.loading import load_run
from runner.report.significance import incomplete_beta, paired_test, t_two_sided_p, welch_test


@pytest.fixture(scope="session")
def bench(tiny_model, tmp_path_factory):
    return build_bench(tiny_model, tmp_path_factory)


def slowed(factor: float):
    """A run taking ``factor`` times as long: the edit a slower backend would make (for the wording tests;
    the real speed change is ``sides``' batch-1 runs)."""

    def edit(r: RunResult) -> None:
        m = r.metrics
        for b in m.batches:
            b.seconds *= factor
        m.generate_seconds *= factor
        m.docs_per_second /= factor
        m.output_tokens_per_second /= factor
        m.latency_p50_s *= factor
        m.latency_p90_s *= factor
        m.latency_p99_s *= factor

    return edit


@dataclass(frozen=True)
class Sides:
    """Real runs for tests across processes, batch 8 and 128 new tokens each: eight repeats of one cell of
    the tiny model, and four of a copy with 32 layers instead of 2 (random weights, the same tokenizer):
    the same prompts and output lengths, really slower: 3-12x here, depending on the machine's load."""

    root: Path

    @property
    def repeats(self) -> list[Path]:
        return [self.root / f"same-r{i}" for i in range(1, 9)]

    @property
    def deep(self) -> list[Path]:
        return [self.root / f"deep-r{i}" for i in range(1, 5)]


def deeper_copy(model: Path, dest: Path, layers: int) -> Path:
    """``model`` with ``layers`` decoder layers of random weights, saved as a checkpoint beside its tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    shutil.copytree(model, dest)
    config = AutoConfig.from_pretrained(dest)
    config.num_hidden_layers = layers
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(dest)
    return dest


@pytest.fixture(scope="session")
def sides(tiny_model, tmp_path_factory) -> Sides:
    root = tmp_path_factory.mktemp("sides")
    deep = deeper_copy(tiny_model, tmp_path_factory.mktemp("models") / "deep-llama", layers=32)
    for model, run_id, repeat in ((tiny_model, "same", "8"), (deep, "deep", "4")):
        proc = _launch(
            model, root, run_id, "--scenario", "fp32", "--batch-size", "8", "--repeat", repeat,
            "--max-new-tokens", "128",
        )  # fmt: skip
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    return Sides(root)


def runs(paths: list[Path]) -> list:
    return [load_run(p) for p in paths]


def test_repeats_of_one_cell_are_not_called_significant(sides):
    """Four processes a side, of one cell, interleaved in time (a drifting machine loads both sides alike):
    the per-run test must not call them different. A test on their batches did (4.49x, p = 0.001)."""
    a, b = runs(sides.repeats[0::2]), runs(sides.repeats[1::2])
    cmp = compare_runs(a, b)
    docs, call = cmp.tests[:2]
    assert docs.name == "docs/s per run" and docs.welch.n_a == docs.welch.n_b == 4
    assert docs.a == [r.result.metrics.docs_per_second for r in a]
    for test in (docs, call):  # not called a change: not significant, or only inside the noise threshold
        assert not test.welch.significant or test.within_noise, test.sentence()
    row = next(m for m in cmp.metrics if m.spec.name == "docs/s")
    assert row.direction == "no clear change"
    assert "within runs (description only): batch docs/s " in docs.sentence()


@pytest.mark.parametrize(
    ("ratio", "noise", "direction", "said"),
    [
        (1.04, 0.05, "no clear change", "significant, but within the 5% noise threshold: no clear change"),
        (1.04, 0.0, "better", "1.04x faster, significant ("),
        (1.10, 0.05, "better", "1.10x faster, significant ("),
        (1 / 1.10, 0.05, "worse", "1.10x slower, significant ("),
    ],
)
def test_a_significant_speed_change_under_the_noise_threshold_is_no_clear_change(ratio, noise, direction, said):
    """Interleaved repeats of one cell on the 2-core CI machine came out 4% apart with p = 0.025: a test on
    four runs a side finds drifts no choice turns on, so a change under the threshold is not called one."""
    from runner.report.compare import METRICS, MetricChange, SampleTest, geometric_mean
    from runner.report.significance import welch_test

    a = [48.5, 49.3, 47.6, 49.9]
    b = [v * ratio * (1 + 0.004 * (-1) ** i) for i, v in enumerate(a)]  # the same spread, moved by the ratio
    test = SampleTest("docs/s per run", "", True, a, b, welch_test([math.log(v) for v in a], [math.log(v) for v in b]))
    test = dataclasses.replace(test, noise=noise)
    assert test.welch.significant, test.sentence()  # the t-test alone calls every one of these a change
    change = MetricChange(METRICS[0], geometric_mean(a), geometric_mean(b), test)
    assert change.direction == direction and said in test.sentence(), test.sentence()
    assert test.within_noise is (direction == "no clear change")


def test_a_real_speed_change_is_significant_and_has_one_figure(sides):
    """Sixteen times the layers against the tiny model, four runs a side: really slower, and called so."""
    a, b = runs(sides.deep), runs(sides.repeats[:4])
    cmp = compare_runs(a, b)
    assert "ran different model" in (cmp.refusal or "")  # the CLI wants --allow-different; the test is the same
    docs = cmp.tests[0]
    row = next(m for m in cmp.metrics if m.spec.name == "docs/s")
    assert docs.welch.significant and row.b > 2 * row.a, docs.sentence()
    assert row.direction == "better"
    # One speed-up figure: the sentence's ratio is the ratio of the table's docs/s (the sides' geometric means).
    assert row.a == pytest.approx(math.exp(docs.welch.mean_a)) and row.b == pytest.approx(math.exp(docs.welch.mean_b))
    assert f"{row.b / row.a:.2f}x faster, significant (Welch t on log values = " in docs.sentence()


def test_one_run_each_gets_the_difference_and_no_verdict(sides):
    a, b = load_run(sides.repeats[0]), load_run(sides.repeats[1])
    cmp = compare_runs(a, b)
    docs = cmp.tests[0]
    assert docs.welch is None
    ratio = b.result.metrics.docs_per_second / a.result.metrics.docs_per_second
    how = f"{max(ratio, 1 / ratio):.2f}x {'faster' if ratio > 1 else 'slower'}"
    assert f"(1 vs 1 runs): {how}; one run each: no verdict" in docs.sentence(), docs.sentence()
    assert next(m for m in cmp.metrics if m.spec.name == "docs/s").direction == "no verdict"
    same = compare_runs(runs(sides.repeats[:3]), runs(sides.repeats[:3])).tests[0].welch
    assert same.p == pytest.approx(1.0) and not same.significant


def test_compare_cli_markdown_and_json(sides, tmp_path):
    # Copies of one run 1% apart, and the same slowed 2x: the wording of a change the test must find.
    base = sides.repeats[0]
    originals = [edited_copy(base, tmp_path, f"base-{i}", slowed(f)) for i, f in enumerate((1.0, 1.01, 0.99))]
    slow = [edited_copy(base, tmp_path, f"slow-{i}", slowed(2 * f)) for i, f in enumerate((1.0, 1.01, 0.99))]
    proc = in_process(["compare", *map(str, originals), "vs", *map(str, slow)])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("# base-0 and 2 more (A) vs slow-0 and 2 more (B)")
    assert re.search(r"^\| docs/s \| \d+\.\d{3} \| \d+\.\d{3} \| -\d+\.\d{3} \| -50\.0% \| worse \|$", out, re.M)
    assert re.search(r"^\| run id \| base-0 \| slow-0 \| ≠ \|$", out, re.M)
    assert re.search(r"^\| runs \| 3 \| 3 \|  \|$", out, re.M)
    slower = r"^- docs/s per run: .* \(3 vs 3 runs: .*\): 2\.00x slower, significant \(Welch t on log values = "
    assert re.search(slower, out, re.M)
    assert "mean of per-batch" not in out

    proc = in_process(["compare", *map(str, sides.repeats[:2]), "--format", "json"])
    data = json.loads(proc.stdout)
    names = ["docs/s per run", "call time p50 per run", *(f"ROUGE-{n} per document" for n in "12L")]
    assert [t["name"] for t in data["tests"]] == names
    assert [t["t_test"] for t in data["tests"]][:2] == [None, None]  # one run each
    assert "one run each: no verdict" in data["tests"][0]["summary"]
    assert all(t["t_test"] == "paired" or (t["identical"] and t["p"] is None) for t in data["tests"][2:])
    assert data["metrics"][0]["metric"] == "docs/s" and data["a"] == [str(sides.repeats[0])]
    assert data["metrics"][0]["a"] == pytest.approx(result_of(sides.repeats[0]).metrics.docs_per_second)


def test_a_side_that_mixes_cells_is_refused_and_names_what_differs(bench, tmp_path):
    """A set of runs is the repeats of one cell: batch 4 beside batch 2 on one side is no sample of either,
    nor is a run that timed its first-use costs (--warmup none) beside one that did not."""

    def batch_2(r: RunResult) -> None:
        r.config.batch_size = 2

    def unwarmed(r: RunResult) -> None:
        r.config.warmup = "none"

    a = [bench.repeats[0], edited_copy(bench.repeats[1], tmp_path, "bs2", batch_2)]
    cmp = compare_runs(runs(a), runs(bench.repeats[:2]))
    assert (
        cmp.refusal
        == f"side A's runs are not repeats of one cell (bs2: batch {result_of(a[0]).config.batch_size} vs 2)"
    )
    with pytest.raises(UserError, match=r"side A's runs are not repeats of one cell .*pass --allow-different"):
        in_process(["compare", *map(str, a), "vs", *map(str, bench.repeats[:2])])
    b = [bench.repeats[0], edited_copy(bench.repeats[1], tmp_path, "cold", unwarmed)]
    cmp = compare_runs(runs(bench.repeats[:2]), runs(b))
    assert "side B's runs are not repeats of one cell (cold: warmup full vs none)" in cmp.refusal
    assert ("warm-up", "full", "full") in cmp.config
    assert compare_runs(runs(bench.repeats[:2]), runs(bench.repeats[:2])).refusal is None


def test_a_side_folds_every_time_by_one_mean_and_memory_by_its_largest(bench, tmp_path):
    def scaled(factor: float, peak: int):
        def edit(r: RunResult) -> None:
            slowed(factor)(r)
            r.metrics.peak_memory_bytes = peak

        return edit

    a = [
        edited_copy(bench.repeats[0], tmp_path, f"a{i}", scaled(f, peak))
        for i, (f, peak) in enumerate(((1.0, 100), (4.0, 300)))
    ]
    cmp = compare_runs(runs(a), runs(a))
    rows = {m.spec.name: m.a for m in cmp.metrics}
    base = result_of(bench.repeats[0]).metrics
    for name, value in (("call time p50", base.latency_p50_s), ("call time p90", base.latency_p90_s)):
        assert rows[name] == pytest.approx(2 * value)  # the geometric mean of 1x and 4x, both rows alike
    assert rows["docs/s"] == pytest.approx(base.docs_per_second / 2)
    assert rows["peak memory"] == 300


def test_compare_refuses_a_side_without_runs(sides):
    with pytest.raises(UserError, match="needs run folders on both sides of `vs`"):
        in_process(["compare", str(sides.repeats[0]), "vs"])
    with pytest.raises(UserError, match="got 3 run folders: give two"):
        in_process(["compare", *map(str, sides.repeats[:3])])
    with pytest.raises(UserError, match="nowhere is not a run folder"):
        in_process(["compare", str(sides.repeats[0]), "nowhere"])


def verdicts(a, b) -> dict[str, str]:
    return {m.spec.name: m.direction for m in compare_runs(load_run(a), load_run(b)).metrics}


def rescored(run, rouge1: list[float], rouge_l: list[float]) -> None:
    """Rewrite the per-document ROUGE-1 and ROUGE-L in ``run``'s docs.jsonl: the samples of its ROUGE test."""
    records = rundir.read_docs(run)
    for d, r1, rl in zip(records, rouge1, rouge_l, strict=True):
        d.rouge1, d.rougeL = r1, rl
    (run / rundir.DOCS).write_text("".join(d.model_dump_json() + "\n" for d in records))


def test_only_a_significant_test_gives_a_direction(bench, tmp_path):
    """Identical work: a docs/s 20% up in one run against one run is no verdict (one run each), and a
    call time p99 that moved is "one sample". Per-document ROUGE that moves up and down is no verdict, one that
    drops on every document is. A figure measured once per run gets none, however far it moved: +20%
    peak memory, +50% model load and a warmup three times as long are "one sample"."""

    def noisy_but_faster_on_paper(r: RunResult) -> None:
        r.metrics.docs_per_second *= 1.2
        r.metrics.latency_p99_s *= 0.8
        r.metrics.peak_memory_bytes = int(r.metrics.peak_memory_bytes * 1.2)
        r.metrics.model_load_seconds *= 1.5
        r.metrics.warmup_seconds *= 3
        r.metrics.rouge = Rouge(rouge1=0.400, rouge2=0.2, rougeL=0.3)

    def base(r: RunResult) -> None:
        r.metrics.rouge = Rouge(rouge1=0.402, rouge2=0.2, rougeL=0.36)

    a = edited_copy(bench.repeats[0], tmp_path, "base", base)
    b = edited_copy(bench.repeats[0], tmp_path, "noisy", noisy_but_faster_on_paper)
    base_r1 = [0.30 + 0.02 * i for i in range(8)]
    base_rl = [0.32 + 0.01 * i for i in range(8)]
    rescored(a, base_r1, base_rl)
    rescored(
        b,
        [s + (0.01 if i % 2 else -0.01) for i, s in enumerate(base_r1)],  # up and down: no direction
        [s - 0.06 + (0.005 if i % 2 else 0) for i, s in enumerate(base_rl)],  # lower on every document
    )
    v = verdicts(a, b)
    assert v["docs/s"] == "no verdict" and v["call time p99"] == "one sample"
    assert v["peak memory"] == v["model load"] == v["warmup"] == "one sample"
    assert v["ROUGE-1"] == "no clear change"
    assert v["ROUGE-L"] == "worse"
    assert v["documents"] == ""  # no preferred direction

    proc = in_process(["compare", str(a), str(b)])
    assert re.search(r"^\| docs/s \| .* \| \+20\.0% \| no verdict \|$", proc.stdout, re.M)
    assert re.search(r"^\| warmup \| .* \| \+200\.0% \| one sample \|$", proc.stdout, re.M)
    assert re.search(
        r"^- ROUGE-L per document: .*: -0\.0575 per document, significant \(paired t = ", proc.stdout, re.M
    )
    assert "better or worse only where a test finds the difference significant at alpha = 0.05" in proc.stdout
    assert '"one sample": a figure with no test here (call time p90, call time p99, first token' in proc.stdout


def set_scores(rouge1: float):
    def edit(r: RunResult) -> None:
        r.metrics.rouge = Rouge(rouge1=rouge1, rouge2=0.2, rougeL=0.25)

    return edit


def test_rouge_better_on_every_document_is_better(bench, tmp_path):
    def higher(r: RunResult) -> None:
        r.metrics.rouge = Rouge(rouge1=0.35, rouge2=0.2, rougeL=0.30)

    a = edited_copy(bench.repeats[0], tmp_path, "low", set_scores(0.30))
    b = edited_copy(bench.repeats[0], tmp_path, "high", higher)
    rescored(a, [0.28 + 0.01 * i for i in range(8)], [0.25] * 8)
    rescored(b, [0.33 + 0.01 * i + 0.001 * (i % 3) for i in range(8)], [0.25] * 8)
    cmp = compare_runs(load_run(a), load_run(b))
    rouge1 = next(t for t in cmp.tests if t.name == "ROUGE-1 per document")
    assert rouge1.welch.name == "paired" and rouge1.welch.n_a == 8 and rouge1.welch.significant
    v = {m.spec.name: m.direction for m in cmp.metrics}
    assert v["ROUGE-1"] == "better"
    assert v["ROUGE-L"] == "no change"  # the same on every document, whatever result.json says


def test_identical_scores_on_every_document_are_no_test(bench, tmp_path):
    """A random model scores 0 on every document in both runs: a paired test is undefined at zero
    variance, so the comparison says the scores are identical rather than "t = 0.00, p = 1"."""
    slow = edited_copy(bench.repeats[0], tmp_path, "slow", slowed(2.0))  # the same docs.jsonl, slower
    cmp = compare_runs(load_run(bench.repeats[0]), load_run(slow))
    rouge = [t for t in cmp.tests if t.per == "document"]
    assert len(rouge) == 3
    for t in rouge:
        assert t.welch is None and t.identical
        assert re.fullmatch(
            rf"{t.name}: \d\.\d{{4}} in both runs \(8 documents\): identical scores on every document: no test",
            t.sentence(),
        )
    assert {m.direction for m in cmp.metrics if m.spec.name.startswith("ROUGE")} == {"no change"}

    proc = in_process(["compare", str(bench.repeats[0]), str(slow), "--format", "json"])
    tests = json.loads(proc.stdout)["tests"][2:]
    assert [(t["t"], t["p"], t["significant"], t["identical"]) for t in tests] == [(None, None, None, True)] * 3
    shown = in_process(["compare", str(bench.repeats[0]), str(slow)]).stdout
    assert re.search(r"^\| ROUGE-1 \| .* \| no change \|$", shown, re.M)
    assert "- ROUGE-1 per document: " in shown and "paired t = " not in shown


def test_different_datasets_are_warned_about(bench, tmp_path):
    def other_data(r: RunResult) -> None:
        r.dataset.sha256 = "0" * 64

    other = edited_copy(bench.repeats[1], tmp_path, "other", other_data)
    cmp = compare_runs(load_run(bench.repeats[0]), load_run(other))
    assert any("different datasets" in w and "000000000000" in w for w in cmp.warnings)


def test_failed_run_has_nothing_to_test(bench):
    cmp = compare_runs(load_run(bench.repeats[0]), load_run(bench.failed))
    assert cmp.tests[0].welch is None
    assert "cannot test (1 vs 0 runs with documents; each side needs at least 2" in cmp.tests[0].sentence()
    assert any("is failed: OutOfMemoryError" in w for w in cmp.warnings)


# --- the statistics themselves ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "df", "p"),
    [(12.706, 1, 0.05), (4.303, 2, 0.05), (2.228, 10, 0.05), (2.0, 10, 0.0734), (1.96, 1e6, 0.05), (2.576, 1e6, 0.01)],
)
def test_t_distribution_matches_published_critical_values(t, df, p):
    assert t_two_sided_p(t, df) == pytest.approx(p, abs=2e-4)
    assert t_two_sided_p(-t, df) == pytest.approx(p, abs=2e-4)


def test_incomplete_beta_edges_and_symmetry():
    assert incomplete_beta(2, 3, 0) == 0 and incomplete_beta(2, 3, 1) == 1
    assert incomplete_beta(1, 1, 0.3) == pytest.approx(0.3)  # uniform distribution
    assert incomplete_beta(2.5, 1.5, 0.7) == pytest.approx(1 - incomplete_beta(1.5, 2.5, 0.3))
    assert t_two_sided_p(0.0, 5) == pytest.approx(1.0)


def test_paired_test_known_example_and_degenerate_samples():
    # Differences 1, 1, 2, 1: mean 1.25, standard deviation 0.5, so t = 1.25 / (0.5 / 2) = 5 with df = 3,
    # between the two-sided critical values for p = 0.02 (4.541) and p = 0.01 (5.841).
    p = paired_test([1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 5.0, 5.0])
    assert p.t == pytest.approx(5.0) and p.df == 3 and 0.01 < p.p < 0.02 and p.significant
    assert p.mean_b - p.mean_a == pytest.approx(1.25) and p.name == "paired"
    assert paired_test([0.3, 0.4], [0.3, 0.4]) is None  # no document moved: no t, no p
    assert paired_test([0.3, 0.4], [0.4, 0.5]).significant  # every document moved by the same amount
    assert paired_test([0.3], [0.4]) is None


def test_welch_known_example_and_degenerate_samples():
    # Unequal variances (1.449 and 21.472, means 19.37 and 22.51); t and df worked out by hand.
    a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0]
    b = [28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7]
    w = welch_test(a, b)
    se = math.sqrt(1.449 / 10 + 21.472111 / 10)
    assert w.t == pytest.approx(3.14 / se, rel=1e-5)
    assert w.df == pytest.approx(se**4 / ((1.449 / 10) ** 2 / 9 + (21.472111 / 10) ** 2 / 9), rel=1e-5)
    assert w.df == pytest.approx(10.21, abs=0.01)
    # t = 2.074 lies between the df=10 critical values for p = 0.10 (1.812) and p = 0.05 (2.228).
    assert 0.05 < w.p < 0.10 and not w.significant
    assert welch_test([1.0], [1.0, 2.0]) is None
    assert welch_test([2.0, 2.0], [2.0, 2.0]).p == 1.0
    assert welch_test([2.0, 2.0], [3.0, 3.0]).significant


def test_different_environment_settings_are_shown_and_warned_about(bench, tmp_path):
    def expandable(r: RunResult) -> None:
        r.environment.settings = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}

    other = edited_copy(bench.repeats[1], tmp_path, "expandable", expandable)
    cmp = compare_runs(load_run(bench.repeats[0]), load_run(other))
    assert any("settings differ" in w and "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True" in w for w in cmp.warnings)
    (row,) = [(a, b) for name, a, b in cmp.config if name == "settings"]
    assert row[1] == "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True" and row[0] != row[1]
    same = compare_runs(load_run(bench.repeats[0]), load_run(bench.repeats[1]))
    assert not any("settings differ" in w for w in same.warnings)


def test_peak_memory_measured_two_ways_is_warned_about_and_the_device_figure_compared(bench, tmp_path):
    """torch's reserved memory against NVML's whole card is two kinds of figure: said, and shown beside the
    one memory figure every GPU backend measures alike."""

    def on_vllm(r: RunResult) -> None:
        r.metrics.peak_memory_source = "nvml_device_used"
        r.metrics.peak_memory_bytes = r.metrics.peak_device_memory_bytes = 40 * 2**30

    def on_hf(r: RunResult) -> None:
        r.metrics.peak_memory_source = "torch_cuda_max_reserved"
        r.metrics.peak_memory_bytes, r.metrics.peak_device_memory_bytes = 30 * 2**30, 32 * 2**30

    a = edited_copy(bench.repeats[0], tmp_path, "hf", on_hf)
    b = edited_copy(bench.repeats[1], tmp_path, "vllm", on_vllm)
    cmp = compare_runs(load_run(a), load_run(b))
    assert any("peak memory differently (torch_cuda_max_reserved vs nvml_device_used)" in w for w in cmp.warnings)
    assert ("peak memory measures", "torch_cuda_max_reserved", "nvml_device_used") in cmp.config
    device = {m.spec.name: m for m in cmp.metrics}["device memory (NVML)"]
    assert (device.a, device.b) == (32 * 2**30, 40 * 2**30)
    same = compare_runs(load_run(bench.repeats[0]), load_run(bench.repeats[1]))
    assert not any("peak memory differently" in w for w in same.warnings)


def test_the_models_share_of_the_generate_time_is_compared_too(bench):
    cmp = compare_runs(load_run(bench.repeats[0]), load_run(bench.repeats[1]))
    rows = {m.spec.name: m for m in cmp.metrics}
    inside = rows["model generate time"]
    assert inside.a is not None and 0 < inside.a <= rows["generate time"].a
