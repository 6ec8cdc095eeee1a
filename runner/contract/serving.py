"""Serving figures: from per-request records to one ``ServingLevel`` per load level (docs/serving.md).

Pure Python, no heavy imports: the worker computes a level's figures with it, and so can the host or a
report from ``requests.jsonl``. Each figure is defined once, here and in docs/serving.md.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from runner.contract.aggregate import mean_rouge, percentile
from runner.contract.errors import UserError
from runner.contract.schema import Distribution, RequestRecord, ServingConfig, ServingLevel, ServingResult

REQUESTS = "requests.jsonl"
UNBOUNDED = ("inf", "max")


def parse_rates(text: str) -> list[float | None]:
    """'1,4,inf' → [1.0, 4.0, None]: offered requests/s, None for every request at once."""
    rates: list[float | None] = []
    for item in text.split(","):
        word = item.strip().lower()
        if word in UNBOUNDED:
            rates.append(None)
            continue
        try:
            rate = float(word)
        except ValueError:
            rate = -1.0
        if not math.isfinite(rate) or rate <= 0:
            raise UserError(
                f"--request-rate {text!r}: {item.strip()!r} is not a rate; give requests per second above 0, "
                "comma-separated, or inf for all at once (e.g. 1,4,inf)"
            )
        rates.append(rate)
    return rates


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?")


def parse_slo(text: str) -> dict[str, float]:
    """'ttft=2s,tpot=100ms' → {'slo_ttft_s': 2.0, 'slo_tpot_s': 0.1}; also attainment=0.99."""
    out: dict[str, float] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "attainment":
            try:
                share = float(value)
            except ValueError:
                share = -1.0
            if not 0 < share <= 1:
                raise UserError(f"--slo attainment={value}: give a share of requests in (0, 1], e.g. attainment=0.9")
            out["slo_attainment"] = share
            continue
        match = _DURATION.fullmatch(value)
        if name not in ("ttft", "tpot") or not match or float(match.group(1)) <= 0:
            raise UserError(
                f"--slo {text!r}: {item.strip()!r} is not an objective; write ttft=SECONDS,tpot=SECONDS "
                "(a number of seconds above 0, or with ms), e.g. ttft=2,tpot=100ms"
            )
        seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
        out[f"slo_{name}_s"] = seconds
    return out


def rate_label(rate: float | None) -> str:
    return "inf" if rate is None else f"{rate:g}"


def distribution(values: Sequence[float]) -> Distribution:
    if not values:
        return Distribution()
    return Distribution(
        n=len(values),
        mean=sum(values) / len(values),
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
    )


def tpot(record: RequestRecord) -> float | None:
    """(E2E − TTFT) / (output tokens − 1): the mean time per token after the first; None under two tokens."""
    if record.ttft_s is None or record.e2e_s is None or not record.output_tokens or record.output_tokens < 2:
        return None
    return (record.e2e_s - record.ttft_s) / (record.output_tokens - 1)


def meets_slo(record: RequestRecord, config: ServingConfig) -> bool:
    """Completed, and within both objectives (a one-token answer has no TPOT and meets that one)."""
    if record.status != "ok" or record.ttft_s is None:
        return False
    if config.slo_ttft_s is not None and record.ttft_s > config.slo_ttft_s:
        return False
    per_token = tpot(record)
    return not (config.slo_tpot_s is not None and per_token is not None and per_token > config.slo_tpot_s)


def has_slo(config: ServingConfig) -> bool:
    return config.slo_ttft_s is not None or config.slo_tpot_s is not None


def level_figures(
    records: Sequence[RequestRecord], rate: float | None, config: ServingConfig, *, with_rouge: bool = True
) -> ServingLevel:
    """A level's figures from all its records (ok or not): latencies over the completed ones, counts over all."""
    ok = [r for r in records if r.status == "ok"]
    # From the first request sent, answered or not (a level's early failures are part of its time), to the
    # last answer that completed.
    sent = [r.sent_s for r in records if r.sent_s is not None]
    ends = [r.sent_s + r.e2e_s for r in ok if r.sent_s is not None and r.e2e_s is not None]
    duration = max(ends) - min(sent) if ends else None
    out_tokens = sum(r.output_tokens or 0 for r in ok)
    per_second = duration is not None and duration > 0
    met = sum(meets_slo(r, config) for r in records) if has_slo(config) else None
    return ServingLevel(
        request_rate=rate,
        max_concurrency=config.max_concurrency,
        requests=len(records),
        statuses=dict(sorted(Counter(r.status for r in records).items())),
        duration_s=duration,
        requests_per_second=len(ok) / duration if per_second else None,
        output_tokens_per_second=out_tokens / duration if per_second else None,
        total_input_tokens=sum(r.input_tokens or 0 for r in ok),
        total_output_tokens=out_tokens,
        ttft_s=distribution([r.ttft_s for r in ok if r.ttft_s is not None]),
        itl_s=distribution([gap for r in ok for gap in r.itl_s]),
        tpot_s=distribution([t for r in ok if (t := tpot(r)) is not None]),
        e2e_s=distribution([r.e2e_s for r in ok if r.e2e_s is not None]),
        slo_met=met,
        goodput_rps=met / duration if met is not None and per_second else None,
        sustainable=met / len(records) >= config.slo_attainment if met is not None and records else None,
        rouge=mean_rouge(ok) if with_rouge else None,  # type: ignore[arg-type]
    )


def sustainable_rate(levels: Sequence[ServingLevel]) -> float | None:
    """The highest offered rate among sustainable levels; an all-at-once level counts at its achieved rate."""
    rates = [
        lv.request_rate if lv.request_rate is not None else lv.requests_per_second for lv in levels if lv.sustainable
    ]
    found = [r for r in rates if r is not None]
    return max(found) if found else None


def read_records(run_dir: Path) -> list[RequestRecord]:
    """``requests.jsonl``; a torn last line (a worker killed while writing) is left out."""
    path = run_dir / REQUESTS
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                out.append(RequestRecord.model_validate_json(line))
            except ValueError:
                continue
    return out


def from_records(run_dir: Path, config: ServingConfig) -> ServingResult | None:
    """The levels a worker finished before it died, from its records: what the host can still say when the
    worker wrote no result (killed, out of memory). None when no level was written."""
    records = read_records(run_dir)
    if not records:
        return None
    levels = sorted({r.level for r in records})
    return ServingResult(
        server="unknown: the worker ended without writing its result",
        endpoint=config.endpoint,
        levels=[
            level_figures([r for r in records if r.level == i], config.request_rates[i], config)
            for i in levels
            if i < len(config.request_rates)
        ],
    )
