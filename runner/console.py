"""What a person sees while a run goes and when it ends: a progress bar and a one-screen summary."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from runner.contract import events
from runner.contract.schema import Metrics, OOMEvent, Percentiles, RunResult
from runner.contract.weights import SUMMARY_NOTES, weights_kind

console = Console(stderr=True)
"""Progress, warnings and diagnostics: stderr, so they never mix with what a command prints as its result."""

PIPED_WIDTH = 10_000
"""Width of a command's output when stdout is no terminal. Rich assumes 80 columns there, and a wide table
fitted to 80 cuts the ids a script greps for (``v100…``); tables never expand, so they keep their natural
width and plain lines stay whole."""


def stdout_console() -> Console:
    """Where a command's result goes (tables, reports): stdout, fitted to a terminal's width, else not cut."""
    out = Console()
    return out if out.is_terminal else Console(width=PIPED_WIDTH)


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


class RunProgress:
    """Turns the worker's output into a live progress bar; ordinary log lines scroll above it."""

    def __init__(self, label: str, verbose: bool = False) -> None:
        self.verbose = verbose
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(label, total=None, rate="loading model")

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def on_line(self, line: str) -> None:
        event = events.parse(line)
        if event is None:
            if self.verbose or " WARNING " in line or " ERROR " in line or line.startswith(("note:", "Traceback")):
                self.progress.console.print(line, markup=False, highlight=False, style="dim")
            return
        kind = event.get("event")
        if kind == "start":
            self.progress.update(self.task, total=event["total"], completed=event["done"], rate="warming up")
        elif kind == "progress":
            if "level" in event:  # a serving run: requests answered so far, not documents of a batch
                rate = f"{event['completed_per_second']:.2f} completed requests/s ({event['level']})"
            else:
                rate = f"{event['docs_per_second']:.2f} docs/s (bs {event['batch_size']})"
            self.progress.update(self.task, completed=event["done"], rate=rate)
        elif kind == "oom":
            self.progress.console.print(
                f"out of memory at batch size {event['batch_size']}: retrying at {event['next_batch_size']}",
                style="yellow",
            )


def _timed_calls(m: Metrics) -> str:
    """How much of the timed generate calls the model itself took; the rest is the harness's."""
    share = m.model_generate_seconds / m.generate_seconds * 100 if m.generate_seconds else None  # type: ignore[operator]
    return f"{m.generate_seconds:.2f} s, {fmt(share, '.1f')}% inside the model's generate"


UNEVEN_BATCHES = 2.0
"""Slowest over fastest seconds per output token across a run's batches beyond which its docs/s is
flagged: a run whose first batches pay for first use (kernels, allocator, caches) is not yet steady."""

FEW_BATCHES = 3


def timing_warning(result: RunResult) -> str | None:
    """Why this run's docs/s may not be a steady number, for the reader to see before comparing it.
    Not for ``--batch-size dynamic``: vLLM takes every prompt in one call by design."""
    m = result.metrics
    timed = [b for b in m.batches if b.seconds > 0 and b.output_tokens > 0]
    if not timed or m.docs_per_second is None or result.config.batch_size == "dynamic":
        return None
    if len(timed) < FEW_BATCHES:
        return (
            f"only {len(timed)} timed batch{'es' if len(timed) > 1 else ''}: docs/s rests on too few calls "
            "to be steady; use more documents (and --repeat N for runner compare, which tests run against run)"
        )
    per_token = [b.seconds / b.output_tokens for b in timed]  # a short last batch is not a slow one
    spread = max(per_token) / min(per_token)
    if spread <= UNEVEN_BATCHES:
        return None
    seconds = [b.seconds for b in timed]
    return (
        f"batches ran {spread:.1f}x apart in time per token ({min(seconds):.2f}-{max(seconds):.2f} s a batch): "
        "early batches can carry first-use costs; compare runs of the same length, or use more documents"
        + _slowest_shape(timed, per_token, warmed=result.config.warmup != "none")
    )


def _slowest_shape(timed: list, per_token: list[float], warmed: bool) -> str:
    """Whether the slowest call was the first of its shape (size, padded length): a call of a new shape
    may pay first-use costs inside its time; one of a shape already run (or warmed) did not. Empty where
    the backend does not record the padded length."""
    if any(b.padded_tokens is None for b in timed):
        return ""
    slowest = max(range(len(timed)), key=per_token.__getitem__)
    b = timed[slowest]
    before = {(c.size, c.padded_tokens) for c in timed[:slowest]} | (
        {(timed[0].size, timed[0].padded_tokens)} if warmed else set()
    )
    shape = f"call {slowest + 1}, {b.size} prompts padded to {b.padded_tokens} tokens"
    if (b.size, b.padded_tokens) in before:
        return f"; the slowest ({shape}) had a shape an earlier call had"
    return f"; the slowest ({shape}) was the first call of its shape"


def _percentiles(p: Percentiles | None, spec: str, unit: str, scale: float = 1.0) -> str:
    if p is None:
        return "- (not measured by this backend)"
    return f"{p.p50 * scale:{spec}} / {p.p90 * scale:{spec}} / {p.p99 * scale:{spec}}{unit}"


def _end_to_end(m: Metrics) -> str:
    """Load, warm-up and every timed call, and the docs/s they make: the cost with nothing left out."""
    if m.end_to_end_seconds is None:
        return "-"
    rate = f" · {m.documents / m.end_to_end_seconds:.3f} docs/s" if m.documents and m.end_to_end_seconds else ""
    return f"{m.end_to_end_seconds:.1f} s (load + warm-up + calls){rate}"


def summary_table(result: RunResult, run_dir: Path) -> Table:
    """The one screen a person reads after a run: what ran, how fast, how good, what it cost."""
    m = result.metrics
    table = Table(title=f"sumbench run {result.run_id}", show_header=False, title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value")
    quality_note = _quality_note(result)
    energy = f"{fmt(m.energy_per_doc_joules, '.1f')} J" if m.energy_per_doc_joules is not None else _no_energy(result)
    rows = [
        ("status", _status(result)),
        ("cell", _cell(result)),
        ("device", result.environment.device.name),
        ("backend", _backend(result)),
        (
            "documents",
            f"{m.documents} done, {m.skipped_too_long + m.skipped_by_backend} skipped"
            + (f" of {result.dataset.documents}" if result.dataset else ""),
        ),
        (
            "throughput",
            f"{fmt(m.docs_per_second, '.3f')} docs/s · {fmt(m.output_tokens_per_second, '.1f')} output tokens/s",
        ),
        ("tokens / doc", f"{fmt(m.avg_input_tokens, '.1f')} in · {fmt(m.avg_output_tokens, '.1f')} out"),
        ("call time p50/p90/p99", f"{fmt(m.latency_p50_s)} / {fmt(m.latency_p90_s)} / {fmt(m.latency_p99_s)} s"),
        ("first token p50/p90/p99", _percentiles(m.time_to_first_token_s, ".3f", " s")),
        ("per token p50/p90/p99", _percentiles(m.time_per_output_token_s, ".2f", " ms", 1000)),
        ("ROUGE-1/2/L F1", _rouge(m.rouge) + quality_note),
        ("lead-3 baseline", _rouge(m.lead3_rouge)),
        ("model load · warmup", f"{fmt(m.model_load_seconds, '.1f')} s · {fmt(m.warmup_seconds, '.2f')} s"),
        *([("torch.compile", _compile(m))] if m.compile_seconds is not None else []),
        ("end to end", _end_to_end(m)),
        *([("timed calls", _timed_calls(m))] if m.model_generate_seconds is not None else []),
        ("peak memory", f"{fmt_bytes(m.peak_memory_bytes)} ({m.peak_memory_source or '-'})"),
        *(
            [("device memory", f"{fmt_bytes(m.peak_device_memory_bytes)} (NVML, whole GPU)")]
            if m.peak_device_memory_bytes is not None
            else []
        ),
        ("energy / doc", energy),
        ("$ / 1k docs", fmt(m.cost_per_1k_docs_usd, ".4f")),
    ]
    if result.serving is not None:
        rows = _with_serving_rows(result, rows)
    if result.batching.oom_events:
        rows.append(("OOM events", ", ".join(_oom(e) for e in result.batching.oom_events)))
    if warning := timing_warning(result):
        rows.append(("timing", f"[yellow]{warning}[/]"))
    rows += [("note", note) for note in result.notes]
    rows.append(("results", str(run_dir)))
    for key, value in rows:
        table.add_row(key, value)
    return table


SERVING_REPLACES = (
    "documents",
    "throughput",
    "call time p50/p90/p99",
    "first token p50/p90/p99",
    "per token p50/p90/p99",
    "model load · warmup",
)
"""Summary rows of an offline run that a serving run shows per load level instead."""


def _with_serving_rows(result: RunResult, rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A serving run's summary: its server and one line per load level in place of the batch figures."""
    from runner.contract.serving import has_slo, rate_label

    s = result.serving
    assert s is not None
    where = f"{s.server}{f' at {s.endpoint}' if s.endpoint else ''}, version {s.server_version or 'unknown'}"
    added = [("server", f"{where} · start {fmt(s.server_start_seconds, '.1f')} s · warm-up {fmt(s.warmup_seconds)} s")]
    for lv in s.levels:
        ms = [None if v is None else v * 1000 for v in (lv.tpot_s.p50, lv.tpot_s.p90)]
        not_ok = ", ".join(f"{n} {k}" for k, n in lv.statuses.items() if k != "ok")
        added.append(
            (
                f"rate {rate_label(lv.request_rate)} req/s",
                f"{lv.statuses.get('ok', 0)}/{lv.requests} ok{f' ({not_ok})' if not_ok else ''} · "
                f"{fmt(lv.requests_per_second, '.3f')} req/s · {fmt(lv.output_tokens_per_second, '.1f')} tok/s · "
                f"TTFT p50/p90 {fmt(lv.ttft_s.p50, '.3f')} / {fmt(lv.ttft_s.p90, '.3f')} s · "
                f"TPOT p50/p90 {fmt(ms[0], '.1f')} / {fmt(ms[1], '.1f')} ms"
                + (f" · goodput {fmt(lv.goodput_rps, '.3f')} req/s" if lv.goodput_rps is not None else ""),
            )
        )
    if result.config.serving is not None and has_slo(result.config.serving):
        added.append(("sustainable rate", f"{fmt(s.sustainable_request_rate, '.3g')} req/s"))
    kept = [row for row in rows if row[0] not in SERVING_REPLACES]
    at = next((i + 1 for i, row in enumerate(kept) if row[0] == "backend"), len(kept))
    return kept[:at] + added + kept[at:]


def _quality_note(result: RunResult) -> str:
    """Beside ROUGE, in plain words, when the weights were never trained: a demo's reader sees numbers
    there and must not take them for the model's quality."""
    kind = weights_kind(result)
    return "" if kind is None else SUMMARY_NOTES[kind]


def _status(result: RunResult) -> str:
    style = {"completed": "green", "partial": "yellow", "failed": "red"}[result.status]
    error = f" ({result.error.error_class}: {result.error.message})" if result.error else ""
    return f"[{style}]{result.status}[/]{error}"


def _cell(result: RunResult) -> str:
    cfg, final = result.config, result.batching.final
    requested = f" (requested {cfg.batch_size})" if final is not None and cfg.batch_size != final else ""
    return f"image {cfg.image} · scenario {cfg.scenario} · gpu {cfg.gpu} · batch {final or cfg.batch_size}{requested}"


def _compile(m) -> str:
    """Compile seconds, apart from docs/s like model load; those that fell inside timed calls said plainly."""
    text = f"{m.compile_seconds:.1f} s compiling, apart from docs/s"
    if m.compile_seconds_timed:
        text = f"{m.compile_seconds:.1f} s compiling, {m.compile_seconds_timed:.1f} s of it inside timed calls"
    return text


def _no_energy(result: RunResult) -> str:
    """Why there is no energy figure: a CPU or a card without the counter, or nothing it could be split over."""
    if result.serving is not None:
        return "- (not measured for a server)"
    if not result.metrics.documents:
        return "- (no documents)"
    return "- (no counter)"


def _oom(event: OOMEvent) -> str:
    """An out-of-memory event: the batch size, and which call failed after how long (results since schema 1.3)."""
    if event.seconds is None:
        return f"bs {event.batch_size}"
    return f"bs {event.batch_size} ({'warm-up' if event.in_warmup else 'timed call'}, {event.seconds:.1f} s)"


def _backend(result: RunResult) -> str:
    b = result.backend
    if b is None:
        return "-"
    text = f"{b.name} {b.dtype}" + (f", attention {b.attention}" if b.attention else "")
    text += f", {b.quantization}" if b.quantization else ""
    if b.weights is not None:  # measured on the loaded model, not read from the scenario
        text += f" · {b.weights.bits_per_parameter:.1f} bits/weight as loaded"
    return text


def _rouge(r) -> str:
    return "-" if r is None else f"{r.rouge1:.4f} / {r.rouge2:.4f} / {r.rougeL:.4f}"
