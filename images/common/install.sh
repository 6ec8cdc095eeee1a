#!/bin/sh
# The one install procedure every sumbench image runs (images/common/Dockerfile calls it; put
# shared logic here).
#
#   install.sh system            # optional OS packages ($SYSTEM_PACKAGES), the sumbench user, dirs
#   install.sh deps LOCK         # venv + pinned Python deps of images/LOCK (requirements+constraints)
#   install.sh package LOCK      # the sumbench package itself (--no-deps) + checks
#
# LOCK is a lock dir under images/ (e.g. `cpu`, `vllm-awq/awq-quantize`) holding
# requirements.txt (direct pins) and constraints.txt (the whole closure, exact pins).
# Paths (bind-mounted by the Dockerfile's RUN --mount):
#   /src        repo files: images/common, images/LOCK, pyproject.toml (deps), + README.md, runner (package)
#   /wheelhouse wheels for an offline build (wheelhouse/<image>/ on the host, may be empty)
# With wheels in /wheelhouse pip runs with --no-index --find-links /wheelhouse (an offline build
# must find everything there); without, it uses the index (PIP_INDEX_URL / PIP_EXTRA_INDEX_URL).
set -eu

SRC=${SUMBENCH_SRC:-/src}
VENV=${VIRTUAL_ENV:-/opt/venv}
WHEELHOUSE=${WHEELHOUSE:-/wheelhouse}
APP_USER=sumbench
APP_UID=1000

# Empty build args arrive as empty variables; pip would take an empty index URL literally.
[ -n "${PIP_INDEX_URL:-}" ] || unset PIP_INDEX_URL
[ -n "${PIP_EXTRA_INDEX_URL:-}" ] || unset PIP_EXTRA_INDEX_URL

log() { echo "[install] $*"; }
die() { echo "[install] error: $*" >&2; exit 1; }

pip_source_args() {
  if ls "$WHEELHOUSE"/*.whl >/dev/null 2>&1; then
    echo "--no-index --find-links $WHEELHOUSE"
  fi
}

# Base images differ in where python lives: python:3.11-slim has /usr/local/bin/python3,
# Debian's python3 is /usr/bin/python3. The venv pins the interpreter for the image's life.
base_python() {
  for p in "python${PYTHON_VERSION:-3.11}" python3; do
    if command -v "$p" >/dev/null 2>&1; then command -v "$p"; return 0; fi
  done
  die "no python${PYTHON_VERSION:-3.11} in the base image"
}

step_system() {
  # Only what the base lacks: a base that has them all (an offline build's) needs no mirror.
  missing=""
  for p in ${SYSTEM_PACKAGES:-}; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    log "apt:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086  # a word list on purpose
    apt-get install -y -qq --no-install-recommends $missing
    rm -rf /var/lib/apt/lists/*
  fi
  if ! getent passwd "$APP_UID" >/dev/null 2>&1; then
    groupadd --gid "$APP_UID" "$APP_USER"
    useradd --uid "$APP_UID" --gid "$APP_UID" --create-home --shell /bin/bash "$APP_USER"
  fi
  mkdir -p /workspace /models/hf-cache "$VENV"
  chown "$APP_UID:$APP_UID" /workspace /models /models/hf-cache
}

# Requirement lines for pip: the project's runtime + worker deps (pyproject.toml), then the image's
# direct pins. Lines tagged `# build-against-torch` go to $2 (installed afterwards, see below).
write_requirements() {
  "$VENV/bin/python" - "$SRC/pyproject.toml" "$SRC/images/$LOCK/requirements.txt" "$1" "$2" <<'PY'
import sys, tomllib
pyproject, reqs, out_main, out_late = sys.argv[1:5]
meta = tomllib.load(open(pyproject, "rb"))["project"]
main = list(meta.get("dependencies", [])) + list(meta.get("optional-dependencies", {}).get("worker", []))
late = []
for raw in open(reqs):
    line, _, comment = raw.partition("#")
    line = line.strip()
    if not line:
        continue
    (late if "build-against-torch" in comment else main).append(line)
open(out_main, "w").write("\n".join(main) + "\n")
open(out_late, "w").write("\n".join(late) + ("\n" if late else ""))
PY
}

# Names of requirements.txt lines tagged `# TAG`, space-separated.
tagged() {
  sed -n -E "s/^([A-Za-z0-9_.-]+)[^#]*#.*\\b$1\\b.*/\\1/p" "$SRC/images/$LOCK/requirements.txt" | tr '\n' ' ' | sed 's/ $//'
}
# `# left-out`: listed by a requirement, never installed (see scripts/lock-constraints.py).
left_out() { tagged left-out; }

step_deps() {
  [ -f "$SRC/images/$LOCK/constraints.txt" ] || die "no images/$LOCK/constraints.txt"
  py=$(base_python)
  have=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$have" = "${PYTHON_VERSION:-3.11}" ] || die "base image has Python $have, the pins are for ${PYTHON_VERSION:-3.11}"
  log "venv $VENV on $py ($("$py" -c 'import platform; print(platform.python_version())'))"
  "$py" -m venv "$VENV"
  src_args=$(pip_source_args)
  if [ -n "$src_args" ]; then
    log "offline: $(ls "$WHEELHOUSE" | wc -l) files in the wheelhouse"
  else
    log "wheelhouse empty: installing from the package index"
  fi
  constraints="$SRC/images/$LOCK/constraints.txt"
  pip="$VENV/bin/python -m pip"
  # shellcheck disable=SC2086
  $pip install --quiet $src_args --constraint "$constraints" pip
  tmp=$(mktemp -d)
  write_requirements "$tmp/main.txt" "$tmp/late.txt"
  if [ -n "$(left_out)" ]; then
    # Names a requirement lists that must not be installed (`# left-out`): pip cannot skip a dependency,
    # so the whole closure (exact pins, the left-out ones already dropped by the lock) goes in as is.
    log "left out: $(left_out)"
    # shellcheck disable=SC2086
    $pip install $src_args --no-deps --requirement "$constraints"
  else
    # shellcheck disable=SC2086
    $pip install $src_args --constraint "$constraints" --requirement "$tmp/main.txt"
  fi
  if [ -s "$tmp/late.txt" ]; then
    # Packages whose setup.py imports torch (flash-attn): build against the torch just installed.
    # shellcheck disable=SC2086
    $pip install $src_args --no-build-isolation --constraint "$constraints" --requirement "$tmp/late.txt"
  fi
  rm -rf "$tmp"
}

step_package() {
  # Build from a copy: the bind mount is read-only and README.md may not exist yet.
  tmp=$(mktemp -d)
  cp -a "$SRC/pyproject.toml" "$SRC/runner" "$tmp/"
  if [ -f "$SRC/README.md" ]; then cp "$SRC/README.md" "$tmp/"; else : >"$tmp/README.md"; fi
  pip="$VENV/bin/python -m pip"
  src_args=$(pip_source_args)
  # setuptools/wheel are pinned in the venv already: no isolated build env (and no index) needed.
  # shellcheck disable=SC2086
  $pip install --quiet --no-deps --no-build-isolation $src_args "$tmp"
  rm -rf "$tmp"
  # Known findings pass: a left-out package reported missing by the requirement that lists it, and a
  # `# mistagged` wheel (its WHEEL file names other tags than its file name) reported as unsupported.
  known="requires ($(left_out | tr ' ' '|')), which is not installed|^($(tagged mistagged | tr ' ' '|')) [^ ]+ is not supported"
  if ! "$VENV/bin/python" -m pip check >"$tmp.check" 2>&1; then
    if grep -q -v -i -E "$known" "$tmp.check"; then
      cat "$tmp.check"; die "pip check failed"
    fi
    log "pip check: only known findings ($(tr '\n' ';' <"$tmp.check"))"
  fi
  rm -f "$tmp.check"
  # Every installed distribution must be pinned, at that exact version, in constraints.txt.
  "$VENV/bin/python" - "$SRC/images/$LOCK/constraints.txt" <<'PY'
import re, sys
from importlib.metadata import distributions
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
pins = {}
for raw in open(sys.argv[1]):
    line = raw.split("#", 1)[0].strip()
    if "==" in line:
        name, ver = line.split("==", 1)
        pins[canon(name)] = ver.strip()
bad = []
for d in distributions():
    name = canon(d.metadata["Name"])
    if name == "sumbench":
        continue
    pinned = pins.get(name)
    # PEP 440: `==2.8.3` admits a local build `2.8.3+cu12...` (flash-attn's release wheels); a pin
    # with a local part (torch `+cpu`) must match exactly.
    if pinned is None or (d.version != pinned and ("+" in pinned or d.version.split("+")[0] != pinned)):
        bad.append(f"{name}=={d.version} (pinned: {pins.get(name, 'not pinned')})")
if bad:
    sys.exit("[install] installed but not pinned in constraints.txt:\n  " + "\n  ".join(sorted(bad)))
print(f"[install] {len(pins)} pins, all installed distributions match")
PY
  # The labels must tell the truth about torch.
  if [ -n "${TORCH_VERSION:-}" ]; then
    got=$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("torch"))')
    [ "$got" = "$TORCH_VERSION" ] || die "torch $got installed, but TORCH_VERSION (label) says $TORCH_VERSION"
  fi
  "$VENV/bin/python" -c 'import runner, runner.worker; print("[install] sumbench", runner.__version__)'
}

cmd=${1:-}
LOCK=${2:-}
case "$cmd" in
  system) step_system ;;
  deps) [ -n "$LOCK" ] || die "usage: install.sh deps LOCK"; step_deps ;;
  package) [ -n "$LOCK" ] || die "usage: install.sh package LOCK"; step_package ;;
  *) die "usage: install.sh system | deps LOCK | package LOCK" ;;
esac
