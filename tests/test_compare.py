"""`runner compare` on real runs: side-by-side metrics, and whether a speed difference is real."""

from __future__ import annotations

import json
import math
import random
import re

import pytest
from test_report import build_bench, edited_copy, in_process, result_of

from runner.report.compare import batch_docs_per_second, compare_runs
from runner.report.loading import load_run
from runner.report.significance import incomplete_beta, t_two_sided_p, welch_test
from runner.schema import Rouge, RunResult


@pytest.fixture(scope="session")
def bench(tiny_model, tmp_path_factory):
    return build_bench(tiny_model, tmp_path_factory)


def slowed(factor: float):
    """Every batch takes ``factor`` times as long: the edit a slower backend would make."""

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


def jittered(seed: int, spread: float):
    """Every batch a little slower or faster, at random: timing noise and nothing else."""

    def edit(r: RunResult) -> None:
        rng = random.Random(seed)
        for b in r.metrics.batches:
            b.seconds *= rng.uniform(1 - spread, 1 + spread)

    return edit


def test_noise_alone_is_not_significant(bench, tmp_path):
    a = load_run(bench.repeats[0])
    same = compare_runs(a, a).tests[0].welch
    assert same.p == pytest.approx(1.0) and not same.significant
    b = load_run(edited_copy(bench.repeats[0], tmp_path, "jitter", jittered(seed=6, spread=0.03)))
    docs, latency = compare_runs(a, b).tests
    assert not docs.welch.significant and not latency.welch.significant, docs.sentence()
    assert "not significant (Welch t = " in docs.sentence()


def test_two_real_repeats_of_one_cell(bench):
    a, b = (load_run(p) for p in bench.repeats)
    docs, latency = compare_runs(a, b).tests
    assert docs.welch is not None and docs.welch.n_a == docs.welch.n_b == 8
    assert docs.a == batch_docs_per_second(a.result) and latency.b == [t.seconds for t in b.result.metrics.batches]
    assert docs.welch.significant == (docs.welch.p < 0.05)
    # Usually the repeats differ by noise alone. Not always: a tiny model's speed is Python overhead,
    # which shifts from one process to the next (memory layout, other work on a shared machine) by
    # more than it varies between the batches of one process. A per-batch test then rightly calls the
    # two processes different; pyperf runs many processes for that reason. Say so rather than fail.
    if docs.welch.significant or latency.welch.significant:
        pytest.skip(f"the two worker processes ran at different speeds: {docs.sentence()}")
    assert "not significant" in docs.sentence()


def test_a_run_twice_as_slow_is_significant(bench, tmp_path):
    a = load_run(bench.repeats[0])
    b = load_run(edited_copy(bench.repeats[0], tmp_path, "slow", slowed(2.0)))
    cmp = compare_runs(a, b)
    docs, latency = cmp.tests
    assert docs.welch.significant and latency.welch.significant
    assert docs.welch.mean_b == pytest.approx(docs.welch.mean_a / 2)
    assert "2.00x slower, significant" in docs.sentence()
    assert "2.00x slower, significant" in latency.sentence()
    row = next(m for m in cmp.metrics if m.spec.name == "docs/s")
    assert row.percent == pytest.approx(-50.0) and row.direction == "worse"
    latency_row = next(m for m in cmp.metrics if m.spec.name == "latency p50")
    assert latency_row.percent == pytest.approx(100.0) and latency_row.direction == "worse"


def test_compare_cli_markdown_and_json(bench, tmp_path):
    slow = edited_copy(bench.repeats[0], tmp_path, "slow", slowed(2.0))
    proc = in_process(["compare", str(bench.repeats[0]), str(slow)])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("# slow (B) vs fp32-bs1-r1 (A)")
    assert re.search(r"^\| docs/s \| \d+\.\d{3} \| \d+\.\d{3} \| -\d+\.\d{3} \| -50\.0% \| worse \|$", out, re.M)
    assert re.search(r"^\| run id \| fp32-bs1-r1 \| slow \| ≠ \|$", out, re.M)
    assert re.search(r"^\| scenario \| fp32 \| fp32 \|  \|$", out, re.M)
    assert re.search(r"^- docs/s per batch: .* 2\.00x slower, significant \(Welch t = .*p = ", out, re.M)

    proc = in_process(["compare", *map(str, bench.repeats), "--format", "json"])
    data = json.loads(proc.stdout)
    assert [t["name"] for t in data["tests"]] == ["docs/s per batch", "latency per batch"]
    assert 0 <= data["tests"][0]["p"] <= 1
    assert data["metrics"][0]["metric"] == "docs/s"
    assert data["metrics"][0]["a"] == pytest.approx(result_of(bench.repeats[0]).metrics.docs_per_second)


def verdicts(a, b) -> dict[str, str]:
    return {m.spec.name: m.direction for m in compare_runs(load_run(a), load_run(b)).metrics}


def test_a_direction_needs_significance_or_a_change_beyond_noise(bench, tmp_path):
    """Identical work with noisy timings: a whole-run docs/s that moved is no verdict while the per-batch
    test says the runs do not differ; a 0.2% memory change is noise, a 20% one is not."""

    def noisy_but_faster_on_paper(r: RunResult) -> None:
        jittered(seed=6, spread=0.03)(r)
        r.metrics.docs_per_second *= 1.2
        r.metrics.latency_p99_s *= 0.8
        r.metrics.peak_memory_bytes = int(r.metrics.peak_memory_bytes * 0.998)
        r.metrics.model_load_seconds *= 1.5
        r.metrics.rouge = Rouge(rouge1=0.400, rouge2=0.2, rougeL=0.3)

    def base(r: RunResult) -> None:
        r.metrics.rouge = Rouge(rouge1=0.402, rouge2=0.2, rougeL=0.36)

    a = edited_copy(bench.repeats[0], tmp_path, "base", base)
    b = edited_copy(bench.repeats[0], tmp_path, "noisy", noisy_but_faster_on_paper)
    v = verdicts(a, b)
    assert v["docs/s"] == "no clear change" and v["latency p99"] == "no clear change"
    assert v["peak memory"] == "within noise"
    assert v["ROUGE-1"] == "within noise"  # -0.5%: less than the quality gate's 1%
    assert v["ROUGE-L"] == "worse"  # -16.7%
    assert v["model load"] == "worse"  # +50%, no test: beyond the 5% threshold
    assert v["documents"] == ""  # no preferred direction

    def more_memory(r: RunResult) -> None:
        r.metrics.peak_memory_bytes = int(r.metrics.peak_memory_bytes * 1.2)

    assert verdicts(a, edited_copy(bench.repeats[0], tmp_path, "memory", more_memory))["peak memory"] == "worse"

    proc = in_process(["compare", str(a), str(b)])
    assert re.search(r"^\| docs/s \| .* \| \+20\.0% \| no clear change \|$", proc.stdout, re.M)
    assert re.search(r"^\| peak memory \| .* \| within noise \|$", proc.stdout, re.M)
    assert "better or worse only for a real difference" in proc.stdout
    assert "significant at alpha = 0.05" in proc.stdout and "5% otherwise" in proc.stdout


def test_without_enough_batches_to_test_speed_falls_back_to_the_threshold(bench, tmp_path):
    def one_batch(factor: float):
        def edit(r: RunResult) -> None:
            del r.metrics.batches[1:]
            r.metrics.docs_per_second *= factor

        return edit

    a = edited_copy(bench.repeats[0], tmp_path, "one", one_batch(1.0))
    assert verdicts(a, edited_copy(bench.repeats[0], tmp_path, "faster", one_batch(1.2)))["docs/s"] == "better"
    assert verdicts(a, edited_copy(bench.repeats[0], tmp_path, "same", one_batch(1.02)))["docs/s"] == "within noise"


def test_different_datasets_are_warned_about(bench, tmp_path):
    def other_data(r: RunResult) -> None:
        r.dataset.sha256 = "0" * 64

    other = edited_copy(bench.repeats[1], tmp_path, "other", other_data)
    cmp = compare_runs(load_run(bench.repeats[0]), load_run(other))
    assert any("different datasets" in w and "000000000000" in w for w in cmp.warnings)


def test_failed_run_has_nothing_to_test(bench):
    cmp = compare_runs(load_run(bench.repeats[0]), load_run(bench.failed))
    assert cmp.tests[0].welch is None
    assert "cannot test (8 vs 0 batches" in cmp.tests[0].sentence()
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


def test_the_models_share_of_the_generate_time_is_compared_too(bench):
    cmp = compare_runs(load_run(bench.repeats[0]), load_run(bench.repeats[1]))
    rows = {m.spec.name: m for m in cmp.metrics}
    inside = rows["model generate time"]
    assert inside.a is not None and 0 < inside.a <= rows["generate time"].a
