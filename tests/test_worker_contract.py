"""The host <-> worker contract, as the layout states it: the worker (runner/worker/, what every image runs)
imports only runner/contract/ (and runner's __version__), and runner/contract/ imports only itself. So all
the worker reaches lies in that one folder, every image carries exactly it, and a host-only module
(launching, matrix, cli, report) can never be pulled into an image by an import. A module the worker needs
moves into runner/contract/ and into docs/ARCHITECTURE.md's "The host ↔ worker contract" together."""

from __future__ import annotations

import ast
from pathlib import Path

from runner.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "runner"


def _is_module(package: Path, name: str) -> bool:
    path = package.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _module_name(package: Path, path: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(package: Path, path: Path) -> list[tuple[int, str]]:
    """Each runner module ``path`` imports (module level or inside functions), with its line; an attribute
    of the package itself (``from runner import __version__``) counts as ``runner``."""
    here = _module_name(package, path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*here[: len(here) - node.level + 1], *([node.module] if node.module else [])])
            if node.level == 0:
                base = node.module or ""
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.append((node.lineno, name if _is_module(package, name) else base))
    return [(line, name) for line, name in found if name.split(".")[0] == package.name]


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def imports_outside(package: Path, folder: str, allowed: tuple[str, ...]) -> list[str]:
    """``file:line name`` for each import under ``package/folder`` of a runner module not in ``allowed``."""
    root = package.name
    return sorted(
        f"{path.relative_to(package.parent)}:{line} {name}"
        for path in (package / folder).rglob("*.py")
        for line, name in imports(package, path)
        if name != root and not _within(name, tuple(f"{root}.{prefix}" for prefix in allowed))
    )


def contract_modules(package: Path = PACKAGE) -> set[str]:
    return {_module_name(package, path) for path in (package / "contract").rglob("*.py")} - {"runner.contract"}


def test_the_worker_imports_only_the_contract():
    outside = imports_outside(PACKAGE, "worker", ("worker", "contract"))
    assert not outside, (
        f"the worker imports runner modules outside runner/contract/: {outside}; move what it needs into "
        "runner/contract/ (and docs/ARCHITECTURE.md's contract section) if both sides share it"
    )


def test_the_contract_imports_only_itself():
    """Neither host-only code nor the worker (torch) is reachable through the contract."""
    outside = imports_outside(PACKAGE, "contract", ("contract",))
    assert not outside, f"runner/contract/ imports runner modules outside itself: {outside}"


def test_every_contract_module_is_used_by_the_worker():
    """A module only the host uses belongs beside the host's, not in every image."""
    pending = list((PACKAGE / "worker").rglob("*.py"))
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for _, name in imports(PACKAGE, path):
            target = PACKAGE.parent.joinpath(*name.split("."))
            pending += [p for p in (target.with_suffix(".py"), target / "__init__.py") if p.is_file()]
    reached = {_module_name(PACKAGE, path) for path in seen}
    assert not contract_modules() - reached, f"the worker never reaches {sorted(contract_modules() - reached)}"


def test_the_architecture_doc_names_every_contract_module():
    doc = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = doc[doc.index("## The host ↔ worker contract") :]
    missing = [name for name in sorted(contract_modules()) if f"`{name.replace('.', '/')}" not in section]
    assert not missing, f"docs/ARCHITECTURE.md's contract section does not name {missing}"


def test_imports_outside_the_contract_are_caught(tmp_path):
    """The check can fail: a worker's import of a host-only module, however written, and a contract module's
    import of the worker, are reported; the contract, the worker's own modules and __version__ are not."""
    package = tmp_path / "runner"
    for folder in ("worker/backends", "contract"):
        (package / folder).mkdir(parents=True)
    for name in ("__init__", "launching", "worker/__init__", "worker/backends/__init__", "worker/models"):
        (package / f"{name}.py").write_text("")
    (package / "contract" / "__init__.py").write_text("")
    (package / "contract" / "schema.py").write_text("")
    (package / "worker" / "backends" / "hf.py").write_text(
        "from runner import __version__\nfrom runner.contract import schema\nfrom ..models import x\n"
        "def f():\n    from runner.launching import build_config\n"
    )
    (package / "worker" / "run.py").write_text("import runner.launching\nfrom .. import launching\n")
    (package / "contract" / "leak.py").write_text("from runner.worker import models\n")
    assert imports_outside(package, "worker", ("worker", "contract")) == [
        "runner/worker/backends/hf.py:5 runner.launching",
        "runner/worker/run.py:1 runner.launching",
        "runner/worker/run.py:2 runner.launching",
    ]
    assert imports_outside(package, "contract", ("contract",)) == ["runner/contract/leak.py:1 runner.worker.models"]
    assert contract_modules(package) == {"runner.contract.schema", "runner.contract.leak"}
