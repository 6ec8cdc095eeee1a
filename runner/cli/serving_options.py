"""`runner launch` options of a serving run (docs/serving.md), and the ``ServingConfig`` they make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from runner.contract.errors import UserError
from runner.contract.schema import ServingConfig

SERVING_OPTIONS: list[Callable] = [
    click.option(
        "--endpoint",
        metavar="URL",
        help="Serving: drive this running OpenAI-compatible server (base URL, e.g. http://host:8000) instead "
        "of starting vllm serve; --model is the model name it serves.",
    ),
    click.option(
        "--api-key-env",
        metavar="VAR",
        help="Serving: send the API key held in environment variable VAR (the key is never written anywhere).",
    ),
    click.option(
        "--request-rate",
        metavar="R[,R...]",
        help="Serving: offered requests/s with Poisson arrivals (seeded), one load level per value; inf sends "
        "every request at once. Default: inf.",
    ),
    click.option("--max-concurrency", type=click.IntRange(1), help="Serving: most requests in flight at once."),
    click.option(
        "--num-prompts",
        type=click.IntRange(1),
        help="Serving: requests per level, cycling through the documents (default: each document once).",
    ),
    click.option(
        "--warmup-requests",
        type=click.IntRange(0),
        default=2,
        show_default=True,
        help="Serving: untimed requests before the first level.",
    ),
    click.option(
        "--serve-duration",
        type=click.FloatRange(0, min_open=True),
        help="Serving: seconds each level may last; later arrivals are not sent and running requests are "
        "cancelled, each recorded as such.",
    ),
    click.option(
        "--request-timeout",
        type=click.FloatRange(0, min_open=True),
        default=300.0,
        show_default=True,
        help="Serving: seconds one request may take.",
    ),
    click.option(
        "--server-start-timeout",
        type=click.FloatRange(0, min_open=True),
        default=600.0,
        show_default=True,
        help="Serving: seconds vllm serve may take to answer /health.",
    ),
    click.option(
        "--slo",
        metavar="ttft=S,tpot=S",
        help="Serving: latency objective per request (seconds, or ms), e.g. ttft=2,tpot=100ms; optional "
        "attainment=0.9, the share of a level's requests that must meet it. Gives goodput and the sustainable rate.",
    ),
    click.option(
        "--server-arg",
        "server_args",
        multiple=True,
        metavar="ARG",
        help="Serving: one more argument for vllm serve (repeat it), e.g. --server-arg=--enforce-eager.",
    ),
]

NAMES = (
    "endpoint",
    "api_key_env",
    "request_rate",
    "max_concurrency",
    "num_prompts",
    "warmup_requests",
    "serve_duration",
    "request_timeout",
    "server_start_timeout",
    "slo",
    "server_args",
)


def serving_options(command: Callable) -> Callable:
    for option in reversed(SERVING_OPTIONS):
        command = option(command)
    return command


def pop_serving(options: dict[str, Any], given: set[str]) -> tuple[ServingConfig, list[str]]:
    """Take the serving options out of ``options``; returns their config and the ones typed (``given``)."""
    from runner.contract.serving import parse_rates, parse_slo

    values = {name: options.pop(name) for name in NAMES}
    endpoint = values["endpoint"]
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise UserError(f"--endpoint {endpoint!r}: give the server's base URL, e.g. http://127.0.0.1:8000")
    config = ServingConfig(
        endpoint=endpoint.rstrip("/") if endpoint else None,
        api_key_env=values["api_key_env"],
        api="completions" if options.get("prompt_template") else "chat",
        request_rates=parse_rates(values["request_rate"]) if values["request_rate"] else [None],
        max_concurrency=values["max_concurrency"],
        num_prompts=values["num_prompts"],
        warmup_requests=values["warmup_requests"],
        duration_s=values["serve_duration"],
        request_timeout_s=values["request_timeout"],
        server_start_timeout_s=values["server_start_timeout"],
        server_extra_args=list(values["server_args"]),
        **(parse_slo(values["slo"]) if values["slo"] else {}),
    )
    return config, [_flag(name) for name in NAMES if name in given]


def _flag(name: str) -> str:
    return "--server-arg" if name == "server_args" else "--" + name.replace("_", "-")
