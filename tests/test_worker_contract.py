"""The host <-> worker contract: the worker package (runner/worker/, what every image runs) reaches only an
explicit list of host modules, directly or through them. A new import there is a change of the contract:
it goes into WORKER_CONTRACT here and into docs/ARCHITECTURE.md's "The host <-> worker contract" together,
because every image then has to carry that module, and a host-only module (launching, matrix, cli, report)
pulled into the worker would drag the host's dependencies and concerns into every image."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from runner.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "runner"

WORKER_CONTRACT = {
    "runner": "the package itself (__version__)",
    "runner.schema": "RunConfig in, DocRecord and RunResult out: config.json, docs.jsonl, result.json",
    "runner.defaults": "the study's default output and prompt length (RunConfig's defaults)",
    "runner.rundir": "the run folder: atomic JSON, append-and-fsync records, torn-line repair",
    "runner.events": "the marked JSON lines on stdout that every executor reads",
    "runner.datasets": "JSONL loading, field mapping, content hash (the host checks the same file)",
    "runner.aggregate": "metrics and status from the records (the host finishes dead runs the same way)",
    "runner.weights": "whether ROUGE means anything, and its words",
    "runner.secrets": "redaction of tokens in logs",
    "runner.errors": "UserError",
    "runner.engine_failures": "out-of-memory wording shared with the host's reading of output.log",
    "runner.architectures": "model shapes and context lengths",
    "runner.catalog": "the GPU catalog, to name the device the worker found",
    "runner.nvml": "GPU discovery, energy and device memory",
    "runner.git": "the revision a result records",
    "runner.quant_formats": "which checkpoint formats an AWQ scenario serves (host refuses, worker tells vLLM)",
    "runner.versions": "the protocol and schema versions a worker checks a config against",
    "runner.allocator": "which CUDA allocator settings a worker runs with (the host plans with the same rule)",
    "runner.serving": "serving figures from requests.jsonl (the host finishes dead serving runs the same way)",
}


def _module_file(name: str) -> Path | None:
    path = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Every runner module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "runner"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "runner":
            found.add(node.module)
            # `from runner import events`: a module; `from runner import __version__`: an attribute.
            found |= {f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")}
    return found


def host_modules_reached_by_worker() -> dict[str, str]:
    """Host modules the worker package reaches, each with the module that first imports it."""
    pending = [p for p in (PACKAGE / "worker").rglob("*.py")]
    seen_files: set[Path] = set()
    reached: dict[str, str] = {}
    while pending:
        path = pending.pop()
        if path in seen_files:
            continue
        seen_files.add(path)
        for name in _imports(path):
            module = _module_file(name)
            if module is None:
                continue
            if not name.startswith("runner.worker"):
                reached.setdefault(name, str(path.relative_to(REPO_ROOT)))
            pending.append(module)
    return reached


def test_the_worker_reaches_only_the_contract_modules():
    reached = host_modules_reached_by_worker()
    outside = {name: by for name, by in reached.items() if name not in WORKER_CONTRACT}
    assert not outside, (
        f"the worker reaches host modules outside its contract: {outside}; add each to WORKER_CONTRACT and "
        "docs/ARCHITECTURE.md if it belongs to the contract, else move what the worker needs into one that does"
    )


def test_the_contract_lists_no_module_the_worker_does_not_use():
    unused = set(WORKER_CONTRACT) - set(host_modules_reached_by_worker())
    assert not unused, f"WORKER_CONTRACT names modules the worker no longer reaches: {sorted(unused)}"


def test_the_architecture_doc_names_every_contract_module():
    doc = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = doc[doc.index("## The host ↔ worker contract") :]
    missing = [name for name in WORKER_CONTRACT if name != "runner" and f"`{name.replace('.', '/')}" not in section]
    assert not missing, f"docs/ARCHITECTURE.md's contract section does not name {missing}"


def test_a_host_only_import_in_the_worker_is_caught(tmp_path, monkeypatch):
    """The check itself can fail: a worker module importing runner.launching is reported."""
    worker = tmp_path / "runner" / "worker"
    worker.mkdir(parents=True)
    (tmp_path / "runner" / "__init__.py").write_text("")
    (tmp_path / "runner" / "launching.py").write_text("")
    (worker / "__init__.py").write_text("")
    (worker / "bad.py").write_text("def f():\n    from runner.launching import build_config\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "runner")
    assert host_modules_reached_by_worker() == {"runner.launching": "runner/worker/bad.py"}
