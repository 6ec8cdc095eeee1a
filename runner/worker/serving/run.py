"""A serving run: dataset → server (started here, or an endpoint) → warm-up → one load level per rate.

Each level's records go to ``requests.jsonl`` when it ends, with ROUGE of the streamed text (scored after
the level, so scoring never delays a timing); its figures go to ``result.json``'s ``serving.levels``. A
serving run is measured whole: run again, it starts from the first level.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.contract import events
from runner.contract.datasets import Dataset, Document, load_dataset
from runner.contract.schema import (
    BackendInfo,
    DeviceInfo,
    Metrics,
    RequestRecord,
    RunConfig,
    ServingConfig,
    ServingResult,
)
from runner.contract.serving import REQUESTS, level_figures, rate_label, read_records, sustainable_rate
from runner.worker import quality
from runner.worker.environment import device_info, environment, resolve_device
from runner.worker.prompts import DEFAULT_TEMPLATE, INSTRUCTION
from runner.worker.serving.client import Progress, Refused, Request, ServerError, request_body, stream
from runner.worker.serving.load import arrivals, drive_level
from runner.worker.serving.server import ServerFailed, vllm_server

log = logging.getLogger(__name__)

WARMUP_NEW_TOKENS = 4
API_KEY_VARIABLE = "SUMBENCH_ENDPOINT_API_KEY"
"""Where the worker keeps the key it read from --api-key-env: a name ``runner.contract.secrets`` recognizes, so the
key is masked in every log line, note and error message whatever the user's variable is called."""


@dataclass
class Ongoing:
    """The level being driven and the records it has finished, so a stop mid-level still keeps them."""

    level: int | None = None
    requests: list[Request] = field(default_factory=list)
    seen: list[RequestRecord] = field(default_factory=list)


@dataclass
class Target:
    base_url: str
    server: str
    args: list[str]
    start_seconds: float | None


def prompt_text(document: str, api: str, template: str | None) -> str:
    """The user message for chat (the server adds the model's chat template, as an offline run's
    tokenizer does), or the whole prompt for completions."""
    if api == "chat":
        return f"{INSTRUCTION}\n\n{document}"
    return (template or DEFAULT_TEMPLATE).format(instruction=INSTRUCTION, document=document)


def api_headers(serving: ServingConfig) -> dict[str, str]:
    if not serving.api_key_env:
        return {}
    key = os.environ.get(serving.api_key_env)
    if not key:
        raise ServerFailed(f"--api-key-env {serving.api_key_env}: that variable is not set in the worker's environment")
    os.environ[API_KEY_VARIABLE] = key
    return {"Authorization": f"Bearer {key}"}


@contextlib.contextmanager
def target(config: RunConfig, run_dir: Path) -> Iterator[Target]:
    serving = config.serving
    assert serving is not None
    if serving.endpoint:
        yield Target(serving.endpoint.rstrip("/"), "endpoint", [], None)
        return
    with vllm_server(config, run_dir) as server:
        yield Target(server.base_url, "vllm serve (started by the worker)", server.args, server.start_seconds)


def level_requests(config: RunConfig, docs: list[Document], level: int) -> list[Request]:
    serving = config.serving
    assert serving is not None
    n = serving.num_prompts or len(docs)
    offsets = arrivals(n, serving.request_rates[level], config.seed + level)
    return [
        Request(
            level,
            i,
            docs[i % len(docs)].id,
            offsets[i],
            request_body(
                serving.api,
                config.model,
                prompt_text(docs[i % len(docs)].text, serving.api, config.prompt_template),
                config.max_new_tokens,
                config.force_output_length,
            ),
        )
        for i in range(n)
    ]


def scored(records: list[RequestRecord], by_id: dict[str, Document]) -> list[RequestRecord]:
    out = []
    for r in records:
        refs = by_id[r.id].references
        if r.status == "ok" and refs:
            r = r.model_copy(update=quality.rouge(r.summary, refs).model_dump())
        out.append(r)
    return out


def write_records(run_dir: Path, records: list[RequestRecord]) -> None:
    with open(run_dir / REQUESTS, "a", encoding="utf-8") as f:
        for r in records:
            f.write(r.model_dump_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


async def _warm_up(client: Any, url: str, headers: dict[str, str], requests: list[Request]) -> None:
    """Untimed requests one at a time; the run fails here, with the server's words, if one is not answered."""
    import httpx

    for request in requests:
        body = dict(request.body, max_tokens=WARMUP_NEW_TOKENS)
        body.pop("min_tokens", None)
        try:
            await stream(client, url, Progress(Request(-1, request.index, request.doc_id, 0.0, body)), headers)
        except (Refused, ServerError, httpx.HTTPError) as exc:
            said = str(exc) if isinstance(exc, (Refused, ServerError)) else f"{type(exc).__name__}: {exc}"
            raise ServerFailed(f"the server did not answer the warm-up request to {url}: {said}") from None


async def _drive(
    config: RunConfig, run_dir: Path, base_url: str, headers: dict[str, str], state: Any, ongoing: Ongoing
) -> None:
    import httpx

    serving = config.serving
    assert serving is not None and state.dataset is not None
    docs = list(state.dataset.documents)
    by_id = {d.id: d for d in docs}
    path = "/v1/chat/completions" if serving.api == "chat" else "/v1/completions"
    url = base_url + path
    levels = [level_requests(config, docs, i) for i in range(len(serving.request_rates))]
    total = sum(len(lv) for lv in levels)
    limits = httpx.Limits(max_connections=serving.max_concurrency, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=httpx.Timeout(serving.request_timeout_s), limits=limits) as client:
        t0 = time.perf_counter()
        await _warm_up(client, url, headers, levels[0][: serving.warmup_requests])
        state.serving.warmup_seconds = state.warmup_seconds = time.perf_counter() - t0
        events.emit("start", total=total, done=0)
        done = 0
        for i, requests in enumerate(levels):
            rate = serving.request_rates[i]
            label = f"rate {rate_label(rate)}"
            counted = {"n": done, "ok": 0, "t0": time.perf_counter()}

            def progress(record: RequestRecord, counted=counted, label=label) -> None:
                ongoing.seen.append(record)
                counted["n"] += 1
                counted["ok"] += record.status == "ok"
                elapsed = max(time.perf_counter() - counted["t0"], 1e-9)
                events.emit(
                    "progress",
                    done=counted["n"],
                    total=total,
                    level=label,
                    completed_per_second=counted["ok"] / elapsed,
                )

            log.info("level %d: %d requests at %s/s", i, len(requests), rate_label(rate))
            ongoing.level, ongoing.requests, ongoing.seen = i, requests, []
            records = scored(await drive_level(client, url, headers, requests, serving, progress), by_id)
            ongoing.level = None
            write_records(run_dir, records)
            figures = level_figures(records, rate, serving)
            state.serving.levels.append(figures)
            state.generated_now += figures.statuses.get("ok", 0)
            done += len(requests)
            log.info(
                "level %d (%s/s): %s; %s req/s, TTFT p90 %s s, TPOT p90 %s s",
                i,
                rate_label(rate),
                figures.statuses,
                _fmt(figures.requests_per_second),
                _fmt(figures.ttft_s.p90),
                _fmt(figures.tpot_s.p90),
            )
    state.serving.sustainable_request_rate = sustainable_rate(state.serving.levels)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _server_version(base_url: str, headers: dict[str, str]) -> str | None:
    import httpx

    with contextlib.suppress(httpx.HTTPError, ValueError):
        answer = httpx.get(f"{base_url}/version", headers=headers, timeout=5.0)
        if answer.status_code == 200:
            return answer.json().get("version")
    return None


def execute(config: RunConfig, run_dir: Path, state: Any) -> None:
    """Run every level against the server; fills ``state`` (``runner.worker.run.RunState``) as it goes."""
    serving = config.serving
    assert serving is not None
    state.dataset = _dataset(config)
    state.device = _device(config)
    state.env = environment(state.device, config.launch)
    previous = run_dir / REQUESTS
    if previous.exists():
        previous.replace(run_dir / f"requests.previous-{int(time.time())}.jsonl")
        state.notes.append("a serving run is measured whole: this attempt started again from the first level")
    headers = api_headers(serving)
    with target(config, run_dir) as where:
        state.load_seconds = where.start_seconds
        state.serving = ServingResult(
            server=where.server,
            endpoint=serving.endpoint,
            server_args=where.args,
            server_start_seconds=where.start_seconds,
        )
        state.serving.server_version = _server_version(where.base_url, headers)
        state.backend = BackendInfo(
            name="vllm-serve" if serving.endpoint is None else "endpoint",
            dtype=config.dtype,
            quantization=config.quantization,
            details={"server_version": state.serving.server_version, "api": serving.api},
        )
        ongoing = Ongoing()
        try:
            asyncio.run(_drive(config, run_dir, where.base_url, headers, state, ongoing))
        except BaseException:
            _keep_stopped_level(config, run_dir, state, ongoing)
            raise


def _keep_stopped_level(config: RunConfig, run_dir: Path, state: Any, ongoing: Ongoing) -> None:
    """A level cut short (Ctrl-C, SIGTERM, --timeout, a failure): its finished records, and one
    ``cancelled`` record for each request that had not finished, so every scheduled request is still there."""
    if ongoing.level is None or config.serving is None or state.serving is None:
        return
    finished = {r.index for r in ongoing.seen}
    rest = [
        RequestRecord(
            level=r.level,
            index=r.index,
            id=r.doc_id,
            status="cancelled",
            error="the run stopped before this request ended",
            scheduled_s=r.scheduled_s,
        )
        for r in ongoing.requests
        if r.index not in finished
    ]
    by_id = {d.id: d for d in state.dataset.documents}
    records = sorted(scored([*ongoing.seen, *rest], by_id), key=lambda r: r.index)
    write_records(run_dir, records)
    rate = config.serving.request_rates[ongoing.level]
    state.serving.levels.append(level_figures(records, rate, config.serving))
    state.generated_now += state.serving.levels[-1].statuses.get("ok", 0)
    log.warning("level %d stopped: %d of %d requests had finished", ongoing.level, len(finished), len(records))


def _device(config: RunConfig) -> DeviceInfo:
    """This machine's device for a server started here; for an endpoint, the --gpu the user says it runs on."""
    if config.serving is not None and config.serving.endpoint:
        kind = "cpu" if config.gpu == "cpu" else "cuda"
        return DeviceInfo(kind=kind, name=f"{config.gpu} (the endpoint's, as given)", catalog_gpu=config.gpu)
    return device_info(resolve_device(config.device), None)


def _dataset(config: RunConfig) -> Dataset:
    return load_dataset(
        config.data,
        text_field=config.text_field,
        summary_field=config.summary_field,
        id_field=config.id_field,
        limit=config.limit,
    )


def fill_metrics(metrics: Metrics, run_dir: Path, dataset: Dataset | None) -> None:
    """The run-wide figures of a serving run: its completed requests over all levels (their ROUGE, token
    counts, the lead-3 baseline of their documents). Speed stays per level, in ``serving.levels``."""
    try:
        ok = [r for r in read_records(run_dir) if r.status == "ok"]
    except (OSError, ValueError):
        return
    metrics.documents = len(ok)
    metrics.total_output_tokens = sum(r.output_tokens or 0 for r in ok)
    if ok:
        metrics.avg_input_tokens = sum(r.input_tokens or 0 for r in ok) / len(ok)
        metrics.avg_output_tokens = metrics.total_output_tokens / len(ok)
    from runner.contract.aggregate import mean_rouge

    metrics.rouge = mean_rouge(ok)  # type: ignore[arg-type]
    if dataset is not None:
        by_id = {d.id: d for d in dataset.documents}
        docs = [by_id[i] for i in sorted({r.id for r in ok}) if i in by_id and by_id[i].references]
        metrics.lead3_rouge = quality.mean([quality.rouge(quality.lead3(d.text), d.references) for d in docs])
