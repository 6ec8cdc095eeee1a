"""Serving figures from per-request records, the arrival schedule, and the serving options' checks."""

from __future__ import annotations

import statistics
import subprocess
import sys

import pytest

from runner.contract.errors import UserError
from runner.contract.schema import RequestRecord, ServingConfig
from runner.contract.serving import level_figures, parse_rates, parse_slo, sustainable_rate, tpot
from runner.worker.serving.load import arrivals


def record(i: int, status: str = "ok", ttft: float = 0.1, e2e: float = 1.0, tokens: int = 11, sent: float = 0.0):
    ok = status == "ok"
    return RequestRecord(
        level=0,
        index=i,
        id=f"d{i}",
        status=status,  # type: ignore[arg-type]
        scheduled_s=sent,
        sent_s=sent if status != "not_sent" else None,
        ttft_s=ttft if ok else None,
        e2e_s=e2e if ok else None,
        itl_s=[0.05, 0.1] if ok else [],
        input_tokens=100 if ok else None,
        output_tokens=tokens if ok else None,
    )


def test_rates_and_objectives_parse_and_bad_ones_say_how():
    assert parse_rates("1, 4,inf") == [1.0, 4.0, None]
    assert parse_slo("ttft=2,tpot=100ms") == {"slo_ttft_s": 2.0, "slo_tpot_s": 0.1}
    assert parse_slo("ttft=0.5s,attainment=0.99") == {"slo_ttft_s": 0.5, "slo_attainment": 0.99}
    for bad in ("0", "-1", "fast", "1,,2", "nan"):
        with pytest.raises(UserError, match="--request-rate"):
            parse_rates(bad)
    for bad in ("ttft", "ttft=0", "latency=2", "tpot=2min", "attainment=2"):
        with pytest.raises(UserError, match="--slo"):
            parse_slo(bad)


def test_tpot_is_the_time_after_the_first_token_per_later_token():
    assert tpot(record(0, ttft=0.2, e2e=1.2, tokens=11)) == pytest.approx(0.1)
    assert tpot(record(0, tokens=1)) is None


def test_a_level_counts_every_request_and_times_only_completed_ones():
    config = ServingConfig(slo_ttft_s=0.5, slo_tpot_s=0.2, slo_attainment=0.5)
    records = [
        record(0, ttft=0.1, e2e=1.1, sent=0.0),  # tpot 0.1: meets both
        record(1, ttft=0.9, e2e=1.9, sent=1.0),  # ttft over
        record(2, ttft=0.1, e2e=3.1, sent=1.5),  # tpot 0.3: over
        record(3, "refused", sent=2.0),
        record(4, "not_sent"),
    ]
    level = level_figures(records, 4.0, config)
    assert level.requests == 5
    assert level.statuses == {"not_sent": 1, "ok": 3, "refused": 1}
    assert level.duration_s == pytest.approx(4.6)  # first send 0.0 to last end 1.5 + 3.1
    assert level.requests_per_second == pytest.approx(3 / 4.6)
    assert level.total_output_tokens == 33
    assert level.ttft_s.n == 3 and level.ttft_s.p50 == pytest.approx(0.1)
    assert level.tpot_s.p50 == pytest.approx(0.1)
    assert level.e2e_s.mean == pytest.approx(statistics.mean([1.1, 1.9, 3.1]))
    assert level.itl_s.n == 6
    assert level.slo_met == 1 and level.goodput_rps == pytest.approx(1 / 4.6)
    assert level.sustainable is False  # 1 of 5 met, under the 50% asked for


def test_a_levels_time_starts_at_its_first_send_even_when_that_request_failed():
    """Under overload the earliest requests are the ones that time out: leaving them out of the window
    would shorten it and overstate requests/s and goodput exactly where the sweep looks for the limit."""
    config = ServingConfig(slo_ttft_s=0.5)
    level = level_figures([record(0, "timeout", sent=0.0), record(1, sent=9.0, e2e=1.0)], 1.0, config)
    assert level.duration_s == pytest.approx(10.0)
    assert level.requests_per_second == pytest.approx(0.1) and level.goodput_rps == pytest.approx(0.1)
    assert level_figures([record(0, "timeout")], 1.0, config).duration_s is None  # nothing completed: no rate


def test_without_an_objective_there_is_no_goodput_and_no_sustainable_rate():
    level = level_figures([record(0)], None, ServingConfig())
    assert level.slo_met is None and level.goodput_rps is None and level.sustainable is None
    assert sustainable_rate([level]) is None


def test_the_sustainable_rate_is_the_highest_sustainable_level():
    config = ServingConfig(slo_ttft_s=0.5)
    fast = [record(i, ttft=0.1, sent=i) for i in range(3)]
    slow = [record(i, ttft=2.0, sent=i) for i in range(3)]
    levels = [level_figures(fast, 1.0, config), level_figures(fast, 4.0, config), level_figures(slow, 8.0, config)]
    assert sustainable_rate(levels) == 4.0
    at_once = level_figures([record(i, ttft=0.05, e2e=0.1) for i in range(3)], None, config)
    assert at_once.requests_per_second == pytest.approx(30.0)
    assert sustainable_rate([*levels, at_once]) == pytest.approx(at_once.requests_per_second)


def test_arrivals_are_poisson_seeded_and_unbounded_rates_send_at_once():
    a = arrivals(2000, 4.0, seed=1)
    assert a == arrivals(2000, 4.0, seed=1) and a != arrivals(2000, 4.0, seed=2)
    gaps = [b - x for x, b in zip([0.0, *a], a, strict=False)]
    assert statistics.mean(gaps) == pytest.approx(0.25, rel=0.1)  # mean gap 1/rate
    assert statistics.stdev(gaps) == pytest.approx(0.25, rel=0.15)  # exponential: stdev = mean
    assert arrivals(3, None, seed=0) == [0.0, 0.0, 0.0]


def launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runner", "launch", "--model", "tiny-llama", "--synthetic-weights", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--request-rate", "4"], "--request-rate: serving options, and --scenario fp32 serves nothing"),
        (["--scenario", "endpoint"], "--scenario endpoint drives a server that is already running"),
        (["--scenario", "endpoint", "--endpoint", "localhost:8000"], "--endpoint 'localhost:8000'"),
        (["--scenario", "endpoint", "--endpoint", "http://h:1", "--slo", "ttft=fast"], "--slo 'ttft=fast'"),
        (["--scenario", "endpoint", "--endpoint", "http://h:1", "--request-rate", "0"], "--request-rate '0'"),
        (["--image", "vllm", "--gpu", "a100-80gb", "--scenario", "vllm-serve", "--api-key-env", "K"], "takes no key"),
    ],
)
def test_serving_options_are_checked_before_anything_runs(args, said, tmp_path):
    proc = launch(*args, "--results", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert said in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not any(tmp_path.iterdir())


def test_a_serving_client_in_a_python_without_httpx_is_refused_before_it_runs(tmp_path):
    import importlib.util

    proc = launch("--scenario", "endpoint", "--endpoint", "http://127.0.0.1:9", "--results", str(tmp_path))
    if importlib.util.find_spec("httpx") is None:
        assert proc.returncode == 2 and "lacks httpx: pip install httpx" in proc.stderr, proc.stderr
    else:  # it runs, finds nothing listening, and records that as a failed run
        assert proc.returncode == 1 and "warm-up" in (tmp_path / next(tmp_path.iterdir()) / "result.json").read_text()


def test_the_host_keeps_the_levels_of_a_worker_that_died(tmp_path):
    from runner.contract import rundir
    from runner.contract.schema import RunConfig
    from runner.contract.serving import REQUESTS
    from runner.executors import ExitInfo
    from runner.launching import finish_dead_run

    config = RunConfig(
        run_id="dead", model="m", data="d.jsonl", serving=ServingConfig(request_rates=[2.0, None], slo_ttft_s=1.0)
    )
    rundir.write_config(tmp_path, config)
    lines = [record(i, sent=i * 0.5).model_dump_json() for i in range(3)]
    (tmp_path / REQUESTS).write_text("\n".join([*lines, '{"level": 1, "ind']))  # killed while writing level 1
    result = finish_dead_run(tmp_path, config, ExitInfo(exit_code=-9))
    assert result.status == "partial" and result.error.error_class == "Killed"
    assert [lv.request_rate for lv in result.serving.levels] == [2.0]
    assert result.serving.levels[0].statuses == {"ok": 3} and result.serving.levels[0].slo_met == 3


def test_a_server_on_a_cpu_gets_a_small_kv_cache_unless_something_else_sizes_it(monkeypatch):
    from runner.contract.schema import RunConfig
    from runner.worker.backends.vllm import CPU_KV_CACHE_BYTES
    from runner.worker.serving.server import server_args

    def args(device: str) -> list[str]:
        config = RunConfig(run_id="r", model="m", data="d", device=device, serving=ServingConfig())  # type: ignore[arg-type]
        return server_args(config, 8000)

    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    cpu = args("cpu")
    assert cpu[cpu.index("--kv-cache-memory-bytes") + 1] == str(CPU_KV_CACHE_BYTES)
    assert "--no-enable-prefix-caching" in cpu and cpu[cpu.index("--host") + 1] == "127.0.0.1"
    assert "--kv-cache-memory-bytes" not in args("cuda")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")
    assert "--kv-cache-memory-bytes" not in args("cpu")
