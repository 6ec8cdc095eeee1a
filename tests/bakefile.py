"""docker-bake.hcl read as text, for the tests: what each image target resolves to without buildx.

Enough of HCL for this file's own shape: variables with a literal or variable default, targets with
``inherits``, ``dockerfile``/``target`` strings, an ``args`` map and ``labels = image_labels(...)``.
``docker buildx bake --print`` is the full resolution; tests that have buildx check both agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAKE = ROOT / "docker-bake.hcl"
PAIR = re.compile(r'([\w-]+)\s*=\s*("[^"]*"|[A-Za-z_]\w*\([A-Za-z_]\w*\)|[A-Z_][A-Z0-9_]*)')


def variables() -> dict[str, str]:
    """Variable -> default, a default naming another variable resolved."""
    raw = dict(re.findall(r'variable\s+"(\w+)"\s*\{[^}]*?default\s*=\s*("[^"]*"|\w+)', BAKE.read_text()))
    out: dict[str, str] = {}
    for name, value in raw.items():
        while not value.startswith('"'):
            value = raw[value]
        out[name] = value.strip('"')
    return out


def blocks() -> dict[str, str]:
    """Target name -> its block's text."""
    text = BAKE.read_text()
    out = {}
    for m in re.finditer(r'target\s+"([\w-]+)"\s*\{', text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out[m.group(1)] = text[m.end() : i - 1]
    return out


def value(expr: str, variables: dict[str, str]) -> str:
    """A string literal, a variable, or base(VARIABLE) with BASE_IMAGE unset."""
    if expr.startswith('"'):
        return expr.strip('"')
    if m := re.fullmatch(r"base\((\w+)\)", expr):
        return variables[m.group(1)]
    return variables[expr]


@dataclass
class Target:
    name: str
    dockerfile: str = ""
    stage: str = ""
    args: dict[str, str] = field(default_factory=dict)
    """Build arg -> expression (a variable name, a literal in quotes, base(VAR))."""
    labels: dict[str, str] = field(default_factory=dict)
    """io.sumbench.KEY -> expression, from image_labels(); plus title and image name."""


def _own(name: str, block: str) -> Target:
    t = Target(name)
    if m := re.search(r'^\s*dockerfile\s*=\s*"([^"]+)"', block, re.M):
        t.dockerfile = m.group(1)
    if m := re.search(r'^\s*target\s*=\s*"([^"]+)"', block, re.M):
        t.stage = m.group(1)
    if m := re.search(r"args\s*=\s*\{([^}]*)\}", block):
        t.args = dict(PAIR.findall(m.group(1)))
    if m := re.search(r"image_labels\((.*)\)\s*$", block, re.S):
        call = m.group(1)
        image, description = re.findall(r'"([^"]*)"', call)[:2]
        t.labels = {f"io.sumbench.{k}": v for k, v in PAIR.findall(call.split("{", 1)[1])}
        t.labels["io.sumbench.image"] = f'"{image}"'
        t.labels["org.opencontainers.image.description"] = f'"{description}"'
    return t


def targets() -> dict[str, Target]:
    """Every target, with what it inherits merged in (its own settings win, as in bake)."""
    raw = blocks()

    def resolve(name: str) -> Target:
        block = raw[name]
        merged = Target(name)
        m = re.search(r"inherits\s*=\s*\[([^\]]*)\]", block)
        for parent in re.findall(r'"([\w-]+)"', m.group(1)) if m else []:
            p = resolve(parent)
            merged.dockerfile, merged.stage = p.dockerfile or merged.dockerfile, p.stage or merged.stage
            merged.args.update(p.args)
        own = _own(name, block)
        merged.dockerfile = own.dockerfile or merged.dockerfile
        merged.stage = own.stage or merged.stage
        merged.args.update(own.args)
        merged.labels = own.labels
        return merged

    return {name: resolve(name) for name in raw}


def images() -> dict[str, Target]:
    """The image targets (not the _shared parents)."""
    return {name: t for name, t in targets().items() if not name.startswith("_")}


def lock_of(target: Target) -> str:
    """The image's lock dir under images/: LOCK, else its IMAGE."""
    return (target.args.get("LOCK") or target.args["IMAGE"]).strip('"')
