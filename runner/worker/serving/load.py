"""Open-loop load: a level's requests sent on a seeded Poisson schedule, whatever the server answers.

Open loop means a request is sent at its arrival time even while earlier ones are unanswered (a slow
server gets a queue, as it would from real users); ``max_concurrency`` caps the requests in flight, and a
request waiting for a slot is sent late (its ``sent_s`` after its ``scheduled_s``). Every scheduled
request ends as one record: ok, refused, error, timeout, cancelled at the level's time bound, or not sent
because the bound came first.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from runner.contract.schema import RequestRecord, ServingConfig
from runner.worker.serving.client import Progress, Refused, Request, ServerError, stream


def arrivals(n: int, rate: float | None, seed: int) -> list[float]:
    """Arrival offsets in seconds: exponential gaps of mean 1/rate from a seeded generator (a Poisson
    process), so one seed gives one schedule; all at 0 when the rate is unbounded."""
    if rate is None:
        return [0.0] * n
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate)
        out.append(t)
    return out


async def _one(
    client: Any,
    url: str,
    headers: dict[str, str],
    progress: Progress,
    origin: float,
    timeout: float,
    slots: asyncio.Semaphore | None,
) -> RequestRecord:
    import httpx

    async with slots if slots is not None else contextlib.nullcontext():
        try:
            await asyncio.wait_for(stream(client, url, progress, headers), timeout)
        except asyncio.TimeoutError:
            return progress.record("timeout", origin, f"no complete answer within --request-timeout {timeout:g} s")
        except httpx.TimeoutException as exc:
            return progress.record("timeout", origin, f"{type(exc).__name__}: {exc}")
        except Refused as exc:
            return progress.record("refused", origin, str(exc))
        except (ServerError, httpx.HTTPError, ValueError) as exc:  # ValueError: a chunk that is not JSON
            return progress.record("error", origin, f"{type(exc).__name__}: {exc}")
    return progress.record("ok", origin)


async def drive_level(
    client: Any,
    url: str,
    headers: dict[str, str],
    requests: Sequence[Request],
    config: ServingConfig,
    on_record: Callable[[RequestRecord], None],
) -> list[RequestRecord]:
    """Send ``requests`` at their scheduled times; returns one record per request, in index order."""
    slots = asyncio.Semaphore(config.max_concurrency) if config.max_concurrency else None
    origin = time.perf_counter()
    deadline = origin + config.duration_s if config.duration_s else None
    tasks: dict[asyncio.Task, Progress] = {}
    records: list[RequestRecord] = []

    def done(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is None:
            on_record(task.result())

    for request in requests:
        start = origin + request.scheduled_s
        if deadline is not None and start > deadline:
            record = Progress(request).record(
                "not_sent", origin, f"its arrival came after --serve-duration {config.duration_s:g} s"
            )
            on_record(record)
            records.append(record)
            continue
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        progress = Progress(request)
        task = asyncio.create_task(_one(client, url, headers, progress, origin, config.request_timeout_s, slots))
        task.add_done_callback(done)
        tasks[task] = progress
    remaining = None if deadline is None else max(0.0, deadline - time.perf_counter())
    finished, pending = await asyncio.wait(tasks, timeout=remaining) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task, progress in tasks.items():
        if task in finished:
            records.append(task.result())
        else:
            record = progress.record("cancelled", origin, f"still running at --serve-duration {config.duration_s:g} s")
            on_record(record)
            records.append(record)
    return sorted(records, key=lambda r: r.index)
