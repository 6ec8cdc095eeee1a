"""Whether two runs can be compared at all, before any number of theirs is.

No significance test fixes runs that did different work: another dataset sample, another model, another
output length, another prompt template, another number of documents (a run interrupted part-way).
``runner compare`` refuses such a pair (``refusal``) unless asked to go on, and then shows ``warnings``
above the numbers. Image, scenario, GPU and batch size are not on that list: they are what a comparison
is for, and the config table shows them side by side.
"""

from __future__ import annotations

from runner.contract.schema import RunResult
from runner.contract.weights import weights_kind
from runner.report.cells import Work, base_model_label, checkpoint_label, model_label, work_differences
from runner.report.loading import Run

CONSEQUENCE = {
    "datasets": "speed and quality differences include the documents themselves",
    "models": "speed and quality differences include the models themselves",
    "output lengths": "a longer output takes longer to write and scores differently",
    "prompts": "another prompt changes the input length, what the model writes and how it scores",
}


def labels(a: Run, b: Run) -> tuple[str, str]:
    """How messages name the runs: by run id, or by folder where both have the same id."""
    ida, idb = a.result.run_id, b.result.run_id
    return (ida, idb) if ida != idb else (str(a.path), str(b.path))


def _values(work: Work, a: RunResult, b: RunResult) -> str:
    """'sha ab12… vs sha cd34…': the two values as shown, in full where the short forms look alike."""
    sa, sb = work.show(a), work.show(b)
    if sa == sb:  # two checkpoints in folders of the same name
        sa, sb = str(work.get(a)), str(work.get(b))
    return f"{sa} vs {sb}"


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _empty(label: str, r: RunResult) -> str:
    return f"{label} ({r.status}" + (f", {r.error.error_class})" if r.error else ")")


def refusal(a: Run, b: Run) -> str | None:
    """Why no number of these two runs can be set against the other's, in one sentence; None when they can.

    A run without documents measured nothing to compare (its generate time is a default zero), so that
    comes first; then whatever part of the work the runs did not share."""
    la, lb = labels(a, b)
    empty = [_empty(label, run.result) for label, run in ((la, a), (lb, b)) if not run.result.metrics.documents]
    if empty:
        verb = "has" if len(empty) == 1 else "have"
        return f"{_joined(empty)} {verb} no documents, so there is no speed or score to compare"
    named = [f"{w.what} ({_values(w, a.result, b.result)})" for w in work_differences([a.result, b.result])]
    if counts := _documents(a.result, b.result, la, lb):
        named.append(f"documents ({counts})")
    if not named:
        return None
    return f"{la} and {lb} ran different {_joined(named)}: their speeds and scores are not comparable"


def _documents(a: RunResult, b: RunResult, la: str = "A", lb: str = "B") -> str | None:
    """'6 vs 24 summarized; A is partial' when the runs summarized different numbers of documents: an
    interrupted run stopped on another set of documents than the one it is set against, so it did other
    work, whatever its dataset hash says."""
    if a.metrics.documents == b.metrics.documents:
        return None
    unfinished = [f"{label} is {r.status}" for label, r in ((la, a), (lb, b)) if r.status != "completed"]
    return f"{a.metrics.documents} vs {b.metrics.documents} summarized" + "".join(f"; {u}" for u in unfinished)


def warnings(a: RunResult, b: RunResult) -> list[str]:
    """What the reader of a comparison must know first: different work, settings, status or weights."""
    out = [
        f"the runs used different {w.what} ({_values(w, a, b)}): {CONSEQUENCE[w.what]}"
        for w in work_differences([a, b])
    ]
    if model_label(a.config.model) != model_label(b.config.model) and base_model_label(a) == base_model_label(b):
        out.append(
            f"the runs loaded different checkpoints of {base_model_label(a)} ({checkpoint_label(a)} vs "
            f"{checkpoint_label(b)}): quality differences are the quantization's"
        )
    if a.metrics.documents and b.metrics.documents and (counts := _documents(a, b)):
        out.append(f"the runs summarized different documents ({counts}): their speeds and scores cover other work")
    if not (a.dataset and b.dataset):
        out.append("one of the runs has no dataset record (it failed before loading one)")
    if a.environment.settings != b.environment.settings:
        out.append(
            f"the runs' environment settings differ ({settings(a) or 'none'} vs {settings(b) or 'none'}): "
            "allocator, attention and thread settings change memory and speed"
        )
    sources = (a.metrics.peak_memory_source, b.metrics.peak_memory_source)
    if None not in sources and sources[0] != sources[1]:
        out.append(
            f"the runs measured peak memory differently ({sources[0]} vs {sources[1]}): its change compares "
            "two kinds of figure; device memory (NVML), where both have it, is measured the same way"
        )
    for label, r in (("A", a), ("B", b)):
        if r.status != "completed":
            out.append(f"{label} ({r.run_id}) is {r.status}" + (f": {r.error.error_class}" if r.error else ""))
        if kind := weights_kind(r):
            out.append(f"{label} ran {kind}: its ROUGE is not meaningful")
    return out


def settings(r: RunResult) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(r.environment.settings.items()))


def same_run(a: Run, b: Run) -> str | None:
    """A warning when A and B are one run: the same folder, or copies of it. Every change is then zero,
    and a reader who meant to pick two runs should hear so before reading the table."""
    ra, rb = a.result, b.result
    if a.path.resolve() == b.path.resolve():
        return f"{a.path} is compared with itself (the same folder twice): every change is zero"
    if ra.run_id != rb.run_id:
        return None
    if ra.started_at == rb.started_at:
        return f"{a.path} and {b.path} are copies of one run ({ra.run_id}): this compares a run with itself"
    return (
        f"{a.path} and {b.path} both hold run id {ra.run_id}: "
        "if one is a copy of the other, this compares a run with itself"
    )
