"""`runner compare` on real runs: side-by-side metrics, and whether a speed difference is real."""

from __future__ import annotations

import json
import math
import random
import re

import pytest
from test_report import build_bench, edited_copy, in_process, result_of

from runner import rundir
from runner.report.compare import batch_docs_per_second, compare_runs
from runner.report.loading import load_run
from runner.report.significance import incomplete_beta, paired_test, t_two_sided_p, welch_test
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
    docs, latency = compare_runs(a, b).tests[:2]
    assert not docs.welch.significant and not latency.welch.significant, docs.sentence()
    assert "not significant (Welch t = " in docs.sentence()


def test_two_real_repeats_of_one_cell(bench):
    a, b = (load_run(p) for p in bench.repeats)
    docs, latency = compare_runs(a, b).tests[:2]
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
    docs, latency = cmp.tests[:2]
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
    assert out.startswith("# fp32-bs1-r1 (A) vs slow (B)")
    assert re.search(r"^\| docs/s \| \d+\.\d{3} \| \d+\.\d{3} \| -\d+\.\d{3} \| -50\.0% \| worse \|$", out, re.M)
    assert re.search(r"^\| run id \| fp32-bs1-r1 \| slow \| ≠ \|$", out, re.M)
    assert re.search(r"^\| scenario \| fp32 \| fp32 \|  \|$", out, re.M)
    assert re.search(r"^- docs/s per batch: .* 2\.00x slower, significant \(Welch t = .*p = ", out, re.M)

    proc = in_process(["compare", *map(str, bench.repeats), "--format", "json"])
    data = json.loads(proc.stdout)
    names = ["docs/s per batch", "latency per batch", *(f"ROUGE-{n} per document" for n in "12L")]
    assert [t["name"] for t in data["tests"]] == names
    assert [t["t_test"] for t in data["tests"]][:2] == ["Welch", "Welch"]
    # Repeats of a greedy run usually score every document alike: then there is no paired test to run.
    assert all(t["t_test"] == "paired" or (t["identical"] and t["p"] is None) for t in data["tests"][2:])
    assert 0 <= data["tests"][0]["p"] <= 1
    assert data["metrics"][0]["metric"] == "docs/s"
    assert data["metrics"][0]["a"] == pytest.approx(result_of(bench.repeats[0]).metrics.docs_per_second)


def verdicts(a, b) -> dict[str, str]:
    return {m.spec.name: m.direction for m in compare_runs(load_run(a), load_run(b)).metrics}


def rescored(run, rouge1: list[float], rouge_l: list[float]) -> None:
    """Rewrite the per-document ROUGE-1 and ROUGE-L in ``run``'s docs.jsonl: the samples of its ROUGE test."""
    records = rundir.read_docs(run)
    for d, r1, rl in zip(records, rouge1, rouge_l, strict=True):
        d.rouge1, d.rougeL = r1, rl
    (run / rundir.DOCS).write_text("".join(d.model_dump_json() + "\n" for d in records))


def test_only_a_significant_test_gives_a_direction(bench, tmp_path):
    """Identical work with noisy timings: a whole-run docs/s that moved is no verdict while the per-batch
    test says the runs do not differ. Per-document ROUGE that moves up and down is no verdict, one that
    drops on every document is. A figure measured once per run gets none, however far it moved: +20%
    peak memory, +50% model load and a warmup three times as long are "one sample"."""

    def noisy_but_faster_on_paper(r: RunResult) -> None:
        jittered(seed=6, spread=0.03)(r)
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
    assert v["docs/s"] == "no clear change" and v["latency p99"] == "no clear change"
    assert v["peak memory"] == v["model load"] == v["warmup"] == "one sample"
    assert v["ROUGE-1"] == "no clear change"
    assert v["ROUGE-L"] == "worse"
    assert v["documents"] == ""  # no preferred direction

    proc = in_process(["compare", str(a), str(b)])
    assert re.search(r"^\| docs/s \| .* \| \+20\.0% \| no clear change \|$", proc.stdout, re.M)
    assert re.search(r"^\| warmup \| .* \| \+200\.0% \| one sample \|$", proc.stdout, re.M)
    assert re.search(
        r"^- ROUGE-L per document: .*: -0\.0575 per document, significant \(paired t = ", proc.stdout, re.M
    )
    assert "better or worse only where a test finds the difference significant at alpha = 0.05" in proc.stdout
    assert '"one sample": a figure measured once per run (peak memory, ' in proc.stdout


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


def test_without_enough_batches_speed_is_untested(bench, tmp_path):
    """One batch a run leaves nothing to test docs/s with, so no change in it is called a direction."""

    def one_batch(factor: float):
        def edit(r: RunResult) -> None:
            del r.metrics.batches[1:]
            r.metrics.docs_per_second *= factor

        return edit

    a = edited_copy(bench.repeats[0], tmp_path, "one", one_batch(1.0))
    assert verdicts(a, edited_copy(bench.repeats[0], tmp_path, "faster", one_batch(1.2)))["docs/s"] == "untested"
    cmp = compare_runs(load_run(a), load_run(a))
    assert "cannot test (1 vs 1 batches; each run needs at least 2: use more documents" in cmp.tests[0].sentence()


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


def test_the_models_share_of_the_generate_time_is_compared_too(bench):
    cmp = compare_runs(load_run(bench.repeats[0]), load_run(bench.repeats[1]))
    rows = {m.spec.name: m for m in cmp.metrics}
    inside = rows["model generate time"]
    assert inside.a is not None and 0 < inside.a <= rows["generate time"].a
