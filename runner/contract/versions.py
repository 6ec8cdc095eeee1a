"""Which sumbench wrote a file, and whether this one can read it.

Host and worker may be different builds: an image built last month runs a config today's host wrote, and
a result copied back from another machine may come from a newer sumbench. Two numbers say what each side
understands, checked before pydantic sees a file, so a mismatch is one sentence saying what to upgrade:

- ``PROTOCOL``: what a worker must understand of ``config.json``. A worker refuses a config with a higher
  one (``rebuild image X``): running it would silently ignore an option the host asked for.
- ``SCHEMA_VERSION.SCHEMA_MINOR`` of ``result.json`` (and of the config, which is part of it). Additive
  fields (new, optional, with defaults) bump the minor: an older reader drops the fields it does not know
  and reads the rest. A major bump means a field changed meaning: an older reader refuses.

Like pyperf's format history, every bump is listed in ``HISTORY`` with what changed.
"""

from __future__ import annotations

from typing import Any

PROTOCOL = 3
SCHEMA_VERSION = 1
SCHEMA_MINOR = 3

HISTORY: tuple[tuple[str, str], ...] = (
    ("schema 1.0, protocol 1", "the first recorded versions (files without schema_minor or protocol)"),
    (
        "schema 1.1, protocol 2",
        "config: warmup (full/short/none), protocol; result: schema_minor, metrics.end_to_end_seconds, "
        "time_to_first_token_s and time_per_output_token_s percentiles; docs.jsonl: ttft_s, tpot_s. "
        "Landed together with: config sdpa_backend, torch_compile, vllm_kv_cache_memory_bytes, serving, "
        "model_fingerprint, dataset_sha256; metrics compile_seconds(_timed); backend.weights; result serving; "
        "docs.jsonl doc_sha256",
    ),
    (
        "schema 1.2, protocol 3",
        "config: auto_batch_plan (--batch-size auto starts at the memory plan's batch for the run's longest "
        "prompt, not for the default prompt length)",
    ),
    (
        "schema 1.3, protocol 3",
        "result: batching.oom_events[].seconds and .in_warmup (a call that ran out of memory is part of "
        "end_to_end_seconds), metrics.batches[].padded_tokens; docs.jsonl: padded_tokens (a call's shape)",
    ),
)


class NewerVersion(Exception):
    """A file written by a newer sumbench than this one understands."""


def config_protocol(data: Any) -> int:
    """The protocol a raw ``config.json`` declares; 1 for configs written before it was recorded."""
    value = data.get("protocol", 1) if isinstance(data, dict) else 1
    return value if isinstance(value, int) else 1


def check_config_for_worker(data: Any, image: str | None) -> None:
    """Refuse a config from a newer host: this worker would run it without the options it cannot read."""
    found = config_protocol(data)
    if found > PROTOCOL:
        what = f"image {image!r}" if image else "the worker's environment"
        raise NewerVersion(
            f"config.json needs worker protocol {found}, this worker speaks {PROTOCOL}: it was written by a newer "
            f"sumbench host; rebuild {what} from the host's checkout (`docker buildx bake {image or 'cpu'}`, or "
            "install the same sumbench where the process executor runs)"
        )


def result_version(data: Any) -> tuple[int, int]:
    """(major, minor) of a raw ``result.json``; minor 0 for results written before it was recorded."""
    if not isinstance(data, dict):
        return SCHEMA_VERSION, 0
    major, minor = data.get("schema_version", SCHEMA_VERSION), data.get("schema_minor", 0)
    return (major if isinstance(major, int) else SCHEMA_VERSION, minor if isinstance(minor, int) else 0)


def check_result(data: Any, what: str) -> bool:
    """Whether ``data`` (a raw result) is newer in its minor only, so its unknown fields may be dropped;
    raises ``NewerVersion`` for a newer major, which this sumbench cannot read."""
    major, minor = result_version(data)
    if major > SCHEMA_VERSION:
        raise NewerVersion(
            f"{what} was written by a newer sumbench (result schema {major}.{minor}; this one reads "
            f"{SCHEMA_VERSION}.x): upgrade sumbench to read it"
        )
    return major == SCHEMA_VERSION and minor > SCHEMA_MINOR


def drop_unknown(data: Any, errors: list[dict]) -> bool:
    """Remove the fields pydantic called unknown ('extra_forbidden') from ``data``; False if none were."""
    dropped = False
    for err in errors:
        if err.get("type") != "extra_forbidden":
            continue
        *parents, last = err["loc"]
        node = data
        for key in parents:
            node = node[key]
        if isinstance(node, dict) and last in node:
            del node[last]
            dropped = True
    return dropped
