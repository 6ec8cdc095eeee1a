"""One streamed request to an OpenAI-compatible server, timed from send to each chunk.

httpx, not the openai SDK or aiohttp: the SDK retries failed requests on its own (a refusal would be
timed as a slow success) and parses every chunk into models, which adds client time to each token's
figures; httpx gives the raw server-sent events with explicit timeouts and no retries, has one API for
the async client and the blocking health check, and is already in every vLLM environment.

Token counts come from the server's ``usage`` (``stream_options.include_usage``), never from tokenizing
here: the client may not even have the tokenizer (a hosted endpoint).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from runner.contract.schema import RequestRecord, RequestStatus
from runner.contract.secrets import redact

REFUSED_CODES = range(400, 500)  # the server said no: too long, bad key, over its rate limit, ...


@dataclass
class Request:
    """What one request asks the server for."""

    level: int
    index: int
    doc_id: str
    scheduled_s: float
    body: dict[str, Any]


@dataclass
class Progress:
    """A request's measurements as they arrive, so a request cut short still yields a record."""

    request: Request
    sent: float | None = None
    first: float | None = None
    last: float | None = None
    ended: float | None = None
    chunks: list[float] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    http_status: int | None = None

    def record(self, status: RequestStatus, origin: float, error: str | None = None) -> RequestRecord:
        r = self.request
        end = self.ended if status == "ok" else None
        usage = self.usage or {}
        return RequestRecord(
            level=r.level,
            index=r.index,
            id=r.doc_id,
            status=status,
            http_status=self.http_status,
            error=redact(error) if error else None,
            scheduled_s=r.scheduled_s,
            sent_s=self.sent - origin if self.sent is not None else None,
            ttft_s=self.first - self.sent if self.first is not None and self.sent is not None else None,
            e2e_s=end - self.sent if end is not None and self.sent is not None else None,
            itl_s=[b - a for a, b in zip(self.chunks, self.chunks[1:], strict=False)],
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            finish_reason=self.finish_reason,
            summary="".join(self.text),
        )


def request_body(api: str, model: str, prompt: str, max_tokens: int, forced: bool) -> dict[str, Any]:
    """Greedy, streamed, with usage in the last chunk. A forced length (random weights) asks vLLM to
    ignore EOS: extra fields other servers may refuse, so they are sent only then."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if forced:
        body.update(min_tokens=max_tokens, ignore_eos=True)
    return body


def _chunk_text(choice: dict[str, Any]) -> str:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return delta.get("content") or ""
    return choice.get("text") or ""


async def stream(client: Any, url: str, progress: Progress, headers: dict[str, str]) -> None:
    """Send the request and read its stream into ``progress``; raises ``Refused`` or ``ServerError``
    for an HTTP error answer, and httpx's own errors for a broken connection or a timeout."""
    progress.sent = time.perf_counter()
    async with client.stream("POST", url, json=progress.request.body, headers=headers) as response:
        progress.http_status = response.status_code
        if response.status_code != 200:
            detail = (await response.aread()).decode("utf-8", "replace")
            raise (Refused if response.status_code in REFUSED_CODES else ServerError)(
                f"HTTP {response.status_code}: {' '.join(detail.split())[:300]}"
            )
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            now = time.perf_counter()
            event = json.loads(data)
            if event.get("error"):
                raise ServerError(f"error in stream: {json.dumps(event['error'])[:300]}")
            if event.get("usage"):
                progress.usage = event["usage"]
            for choice in event.get("choices") or []:
                text = _chunk_text(choice)
                if text:
                    if progress.first is None:
                        progress.first = now
                    progress.chunks.append(now)
                    progress.text.append(text)
                if choice.get("finish_reason"):
                    progress.finish_reason = choice["finish_reason"]
    progress.ended = time.perf_counter()
    if progress.usage is None:
        raise ServerError("the stream ended without usage (the server ignored stream_options.include_usage)")


class Refused(Exception):
    """A 4xx answer: the server would not take the request."""


class ServerError(Exception):
    """A 5xx answer, an error inside the stream, or a stream without usage."""
