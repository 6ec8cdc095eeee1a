"""Kubernetes target: a Job and a ConfigMap per cell, validated offline against Kubernetes' own schemas.

``kubernetes_validate`` ships the published OpenAPI-derived JSON schemas of each Kubernetes release;
strict mode also rejects unknown fields. Validation runs with sockets disabled, so it is offline. The
submit-and-collect path runs against a stand-in for the two API objects it uses; no cluster is needed.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from runner import matrix
from runner.contract import catalog
from runner.contract.errors import UserError
from runner.contract.schema import RunConfig
from runner.launching import LaunchRequest
from runner.paths import SAMPLE_DATASET
from runner.targets import k8s
from runner.targets.k8s import K8sOptions, job_name

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[dev]'")

HUB_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
IMAGES = ["hf", "hf-flash", "vllm-awq"]
SCENARIOS = ["default", "flash-attn", "vllm-awq"]
GPUS = ["t4", "a100-80gb", "h100"]
# Every GPU feature discovery product each type covers: a Job must schedule on either form of the card.
PRODUCTS = {
    "t4": ["Tesla-T4"],
    "a100-80gb": ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"],
    "h100": ["NVIDIA-H100-80GB-HBM3"],
}
# podFailurePolicy is GA from 1.31; check the oldest release that has it and the newest the package knows.
VERSIONS = ["1.31", kubernetes_validate.latest_version()]


def render(tmp_path: Path, options: K8sOptions, model: str = HUB_MODEL, **kw) -> matrix.MatrixManifest:
    fields = dict(
        images=IMAGES,
        scenarios=SCENARIOS,
        gpus=GPUS,
        batch_sizes=[1, 8],
        base=LaunchRequest(model=model, data=str(SAMPLE_DATASET), limit=20),
        target="k8s",
        results=tmp_path,
        matrix_id="k8s-m",
        registry="registry.example.com/you",
        tag="0.1.0",
        options=options,
    )
    fields.update(kw)
    return matrix.run(matrix.MatrixRequest(**fields), print, dry_run=True)


def gpu_values(pod: dict) -> tuple[str, list[str]]:
    """The node label key a pod requires, and the values any of which will do."""
    assert "nodeSelector" not in pod, "a selector names one product; the affinity takes every form of the card"
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    (expression,) = term["matchExpressions"]
    assert expression["operator"] == "In"
    return expression["key"], expression["values"]


def objects(folder: Path) -> dict[tuple[str, str], dict]:
    out = {}
    for path in sorted((folder / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


@pytest.fixture
def k8s_matrix(tmp_path):
    options = K8sOptions(
        namespace="bench",
        results_pvc="sumbench-results",
        hf_token_secret="hf-token",
        image_pull_secret="regcred",
        deadline_seconds=7200,
        backoff_limit=1,
        ttl_seconds=3600,
    )
    return tmp_path / "k8s-m", render(tmp_path, options)


def test_every_object_is_valid_kubernetes(k8s_matrix, monkeypatch):
    folder, manifest = k8s_matrix

    def no_network(*args, **kwargs):
        raise AssertionError("schema validation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    docs = objects(folder)
    assert len([k for k in docs if k[0] == "Job"]) == len([c for c in manifest.cells if c.status == "planned"]) == 22
    for doc in docs.values():
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_catches_a_misspelled_field(k8s_matrix):
    folder, _ = k8s_matrix
    job = next(doc for (kind, _), doc in objects(folder).items() if kind == "Job")
    job["spec"]["template"]["spec"]["containers"][0]["resorces"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSIONS[-1], strict=True)


def test_jobs_ask_for_one_gpu_of_the_cell_type(k8s_matrix):
    folder, manifest = k8s_matrix
    docs = objects(folder)
    for cell in manifest.cells:
        name = job_name("k8s-m", cell.run_id)
        if cell.status == "dropped":
            assert ("Job", name) not in docs
            continue
        job = docs[("Job", name)]
        spec = job["spec"]
        pod = spec["template"]["spec"]
        (worker,) = pod["containers"]
        assert worker["resources"]["limits"] == {"nvidia.com/gpu": 1}
        assert gpu_values(pod) == ("nvidia.com/gpu.product", PRODUCTS[cell.gpu])
        assert worker["image"] == f"registry.example.com/you/sumbench/{cell.image}:0.1.0"
        assert worker["args"] == [f"/sumbench/results/k8s-m/{cell.run_id}"]  # ENTRYPOINT runs the worker
        assert "command" not in worker
        assert (spec["activeDeadlineSeconds"], spec["backoffLimit"], spec["ttlSecondsAfterFinished"]) == (7200, 1, 3600)
        assert pod["restartPolicy"] == "Never" and pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert job["metadata"]["namespace"] == "bench"
        assert job["metadata"]["annotations"]["sumbench/run-id"] == cell.run_id
        assert cell.where == f"k8s job bench/{name}"


def test_pods_run_as_non_root_with_the_token_from_a_secret(k8s_matrix):
    folder, _ = k8s_matrix
    for (kind, _), job in objects(folder).items():
        if kind != "Job":
            continue
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"] + pod["initContainers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["HF_TOKEN"] == {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}},
        }
    assert "hf_" not in "".join(p.read_text() for p in (folder / "k8s").glob("*.yaml")).replace("hf_home", "")


def test_config_and_dataset_reach_the_pod_through_volumes(k8s_matrix):
    folder, manifest = k8s_matrix
    docs = objects(folder)
    data = docs[("ConfigMap", k8s.data_configmap_name("k8s-m"))]
    assert data["data"]["howto-sample.jsonl"] == SAMPLE_DATASET.read_text()
    cell = next(c for c in manifest.cells if c.status == "planned")
    name = job_name("k8s-m", cell.run_id)
    config = RunConfig.model_validate_json(docs[("ConfigMap", name)]["data"]["config.json"])
    assert config.run_id == cell.run_id and config.data == "/sumbench/data/howto-sample.jsonl"
    assert config.launch.executor == "k8s" and config.limit == 20
    assert config == RunConfig.model_validate_json((folder / cell.run_id / "config.json").read_text())
    pod = docs[("Job", name)]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"] == {"name": "config", "configMap": {"name": name}}
    assert volumes["data"]["configMap"]["name"] == k8s.data_configmap_name("k8s-m")
    assert volumes["results"] == {"name": "results", "persistentVolumeClaim": {"claimName": "sumbench-results"}}
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["data"]["readOnly"] and mounts["config"]["readOnly"] and not mounts["results"].get("readOnly")


def test_gke_labels_and_custom_label_keys(tmp_path):
    manifest = render(
        tmp_path / "gke",
        K8sOptions(gpu_label="gke"),
        images=["hf"],
        scenarios=None,
        gpus=["t4", "a10g"],
        batch_sizes=[1],
    )
    by = {c.gpu: c for c in manifest.cells}
    assert by["a10g"].status == "dropped" and "cloud.google.com/gke-accelerator" in by["a10g"].reason
    job = objects(tmp_path / "gke" / "k8s-m")[("Job", job_name("k8s-m", by["t4"].run_id))]
    assert gpu_values(job["spec"]["template"]["spec"]) == ("cloud.google.com/gke-accelerator", ["nvidia-tesla-t4"])

    render(
        tmp_path / "custom",
        K8sOptions(gpu_label="example.com/gpu"),
        images=["hf"],
        scenarios=None,
        gpus=["h100"],
        batch_sizes=[1],
    )
    (job,) = [d for (kind, _), d in objects(tmp_path / "custom" / "k8s-m").items() if kind == "Job"]
    assert gpu_values(job["spec"]["template"]["spec"]) == ("example.com/gpu", ["NVIDIA-H100-80GB-HBM3"])
    with pytest.raises(UserError, match="--k8s-gpu-label"):
        K8sOptions(gpu_label="not a label")


def test_a_local_model_needs_a_volume(tmp_path):
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(UserError, match="--k8s-model-pvc"):
        render(tmp_path / "a", K8sOptions(), model=str(model), images=["hf"], scenarios=None, gpus=["t4"])
    assert not (tmp_path / "a").exists(), "a refused matrix leaves no folder"
    manifest = render(
        tmp_path / "b",
        K8sOptions(model_pvc="models", data_pvc="datasets"),
        model=str(model),
        images=["hf"],
        scenarios=None,
        gpus=["t4"],
        batch_sizes=[1],
    )
    folder = tmp_path / "b" / "k8s-m"
    assert not (folder / "k8s" / "00-data.yaml").exists()
    job = objects(folder)[("Job", job_name("k8s-m", manifest.cells[0].run_id))]
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["model"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "datasets", "readOnly": True}
    config = RunConfig.model_validate_json((folder / manifest.cells[0].run_id / "config.json").read_text())
    assert config.model == "/sumbench/model/my-model"
    for version in VERSIONS:
        kubernetes_validate.validate(job, version, strict=True)


def test_a_big_dataset_needs_a_volume(tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": "word " * 2000, "summary": "words"}) + "\n" for i in range(100))
    )
    fields = dict(
        images=["hf"],
        gpus=["t4"],
        batch_sizes=[1],
        target="k8s",
        results=tmp_path,
        base=LaunchRequest(model=HUB_MODEL, data=str(big)),
        options=K8sOptions(),
    )
    with pytest.raises(UserError, match="--k8s-data-pvc"):
        matrix.run(matrix.MatrixRequest(**fields), print, dry_run=True)
    assert [p.name for p in tmp_path.iterdir()] == ["big.jsonl"], "a refused matrix leaves no folder"


def test_a_gated_model_takes_its_token_from_the_secret_not_from_here(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    gated = "meta-llama/Llama-2-7b-chat-hf"
    fields = dict(images=["hf"], scenarios=None, gpus=["a100-80gb", "h100"], batch_sizes=[1], model=gated)
    options = K8sOptions(data_pvc="datasets", results_pvc="results", hf_token_secret="hf")
    manifest = render(tmp_path / "dry", options, **fields)
    assert [c.status for c in manifest.cells] == ["planned", "planned"]
    base = LaunchRequest(model=gated, data=str(SAMPLE_DATASET))
    request = matrix.MatrixRequest(images=["hf"], gpus=["h100"], batch_sizes=[1], base=base, target="k8s")
    request.results, request.options = tmp_path / "real", options
    assert matrix.plan(request).cells  # a real launch: the pods read the Secret
    request.options = K8sOptions(data_pvc="datasets")
    with pytest.raises(UserError, match=f"{gated} is gated .* pass --hf-token-secret NAME"):
        matrix.plan(request)


def test_a_dry_run_of_a_gated_model_without_a_secret_is_refused_as_the_real_run_would_be(tmp_path, monkeypatch):
    """Its manifests would run pods with no token, and the command the dry run prints would be refused."""
    monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 30)  # this machine's token never reaches a pod
    gated = "meta-llama/Llama-2-7b-chat-hf"
    fields = dict(images=["hf"], scenarios=None, gpus=["h100"], batch_sizes=[1], model=gated)
    with pytest.raises(UserError, match=f"{gated} is gated .* pass --hf-token-secret NAME"):
        render(tmp_path, K8sOptions(data_pvc="datasets"), **fields)
    assert not (tmp_path / "k8s-m").exists()


# --- GPU forms, CPU and memory ---------------------------------------------------------------------------


def test_each_gpu_type_schedules_on_every_form_of_its_card_and_no_other(tmp_path, monkeypatch):
    """A selector on the SXM product left an A100 Job Pending for hours on PCIe nodes; the H100 PCIe and NVL
    differ too much from the SXM (bandwidth, memory, price) to share its entry, so they have their own."""
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: pytest.fail("validation used the network"))
    gpus = ["a100-40gb", "a100-80gb", "v100-32gb", "h100", "h100-pcie", "h100-nvl"]
    manifest = render(tmp_path, K8sOptions(), images=["hf-flash"], scenarios=["default"], gpus=gpus, batch_sizes=[1])
    docs = objects(tmp_path / "k8s-m")
    selected = {}
    for cell in manifest.cells:
        job = docs[("Job", job_name("k8s-m", cell.run_id))]
        key, selected[cell.gpu] = gpu_values(job["spec"]["template"]["spec"])
        assert key == "nvidia.com/gpu.product"
        for version in VERSIONS:
            kubernetes_validate.validate(job, version, strict=True)
    assert selected == {
        "a100-40gb": ["NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB"],
        "a100-80gb": ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"],
        "v100-32gb": ["Tesla-V100-SXM2-32GB", "Tesla-V100-PCIE-32GB", "Tesla-V100S-PCIE-32GB"],
        "h100": ["NVIDIA-H100-80GB-HBM3"],
        "h100-pcie": ["NVIDIA-H100-PCIe"],
        "h100-nvl": ["NVIDIA-H100-NVL"],
    }
    # What a node's product label says is what the catalog matches the card to, on the node as in the worker.
    for gpu, products in selected.items():
        for product in products:
            assert catalog.match_gpu(product.replace("-", " "), catalog.get_gpu(gpu).memory_bytes).key == gpu


def test_the_worker_requests_cpu_and_the_memory_its_model_loads_in(tmp_path):
    """A pod without requests is BestEffort: placed where a 7B checkpoint may not fit, and evicted first."""
    model = tmp_path / "llama-7b"
    model.mkdir()
    shape = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32}
    shape |= {"num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000}
    (model / "config.json").write_text(json.dumps(shape))
    options = K8sOptions(model_pvc="models", data_pvc="datasets")
    gpus = ["t4", "cpu"]
    manifest = render(tmp_path / "a", options, model=str(model), images=["hf-bnb", "cpu"], scenarios=None, gpus=gpus)
    resources = {}
    for cell in (c for c in manifest.cells if c.status == "planned"):
        job = objects(tmp_path / "a" / "k8s-m")[("Job", job_name("k8s-m", cell.run_id))]
        (worker,) = job["spec"]["template"]["spec"]["containers"]
        resources[cell.gpu] = worker["resources"]
        for version in VERSIONS:
            kubernetes_validate.validate(job, version, strict=True)
    # 6.74 billion parameters: 12.6 GiB in 16 bits (the 4-bit scenario reads them so), 25.1 GiB in fp32 on a CPU.
    assert resources["t4"] == {"requests": {"cpu": "4", "memory": "17Gi"}, "limits": {"nvidia.com/gpu": 1}}
    assert resources["cpu"] == {"requests": {"cpu": "4", "memory": "30Gi"}}

    options = K8sOptions(model_pvc="models", data_pvc="datasets", cpus=2.5, memory_bytes=40 * 2**30)
    manifest = render(tmp_path / "b", options, model=str(model), images=["hf"], scenarios=None, gpus=["t4"])
    job = objects(tmp_path / "b" / "k8s-m")[("Job", job_name("k8s-m", manifest.cells[0].run_id))]
    requests = job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests == {"cpu": "2.5", "memory": "40Gi"}
    with pytest.raises(UserError, match="--k8s-cpus"):
        K8sOptions(cpus=0)


def test_a_hub_model_download_gets_the_disk_it_needs(tmp_path):
    """The pod downloads a hub model into its emptyDir: without an ephemeral-storage request a node with a
    small disk takes the pod and evicts it part-way through a 13 GB download."""
    options = K8sOptions(data_pvc="datasets", hf_token_secret="hf:token")
    manifest = render(tmp_path, options, model="meta-llama/Llama-2-7b-chat-hf", images=["hf"], scenarios=None,
                      gpus=["a100-80gb"])  # fmt: skip
    job = objects(tmp_path / "k8s-m")[("Job", job_name("k8s-m", manifest.cells[0].run_id))]
    pod = job["spec"]["template"]["spec"]
    requests = pod["containers"][0]["resources"]["requests"]
    cache = next(v for v in pod["volumes"] if v["name"] == "cache")
    assert requests["ephemeral-storage"] == "17Gi" and cache["emptyDir"] == {"sizeLimit": "17Gi"}
    for version in VERSIONS:
        kubernetes_validate.validate(job, version, strict=True)


# --- the dry run's closing lines ------------------------------------------------------------------------


def test_a_dry_run_ends_with_how_to_submit_it_and_what_the_volumes_hold(tmp_path, capsys):
    from runner.cli import main

    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    args = ["matrix", "--target", "k8s", "--registry", "registry.example.com/me", "--images", "hf", "--gpus", "t4"]
    args += ["--model", str(model)]
    args += ["--k8s-model-pvc", "models", "--k8s-data-pvc", "datasets", "--k8s-results-pvc", "runs"]
    args += ["--namespace", "bench", "--hf-token-secret", "hf:token", "--k8s-memory", "24GiB"]
    args += ["--results", str(tmp_path / "r"), "--matrix-id", "m1"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--dry-run"])
    out = capsys.readouterr().err  # the matrix's table and lines are the console's, on stderr
    assert exit_info.value.code == 0, out
    assert "the same command with --matrix-id" not in out, "the same command would only dry-run again"
    closing = out[out.index("dry run: nothing was submitted") :]
    assert f"Kubernetes manifests: {tmp_path / 'r' / 'm1' / 'k8s'}/*.yaml (namespace bench)" in closing
    assert "PVC datasets (--k8s-data-pvc): the dataset file howto-sample.jsonl at its root" in closing
    assert "PVC models (--k8s-model-pvc): the model folder my-model/ at its root" in closing
    assert "PVC runs (--k8s-results-pvc): writable by uid 1000" in closing and "m1/<run-id>/" in closing
    assert "kubectl create secret generic hf -n bench --from-literal=token=hf_..." in closing
    assert (
        f"kubectl apply -f {tmp_path / 'r' / 'm1' / 'k8s'}/ then runner matrix --collect {tmp_path / 'r' / 'm1'}"
        in closing
    )
    submit = next(line for line in closing.splitlines() if line.startswith("to submit")).split(": ", 1)[1]
    assert "--dry-run" not in submit and submit.endswith("--matrix-id m1")
    assert "--k8s-memory 24GiB" in submit and "--hf-token-secret hf:token" in submit
    options = shlex.split(submit)[2:]  # after `runner matrix`: every option as typed, each with its value
    assert sorted(zip(options[::2], options[1::2], strict=True)) == sorted(zip(args[1::2], args[2::2], strict=True))

    with pytest.raises(SystemExit) as exit_info:  # it continues the dry run's matrix, not a new one
        main(shlex.split(submit)[1:])
    assert exit_info.value.code == 1  # no kubeconfig here: the manifests are written, the cells stay planned
    assert "the same command with --matrix-id m1" in capsys.readouterr().err


# --- submitting and collecting ---------------------------------------------------------------------------


class FakeCluster:
    """The calls the target makes on CoreV1Api and BatchV1Api, answered from memory."""

    def __init__(self, logs: dict[str, str]) -> None:
        self.created: list[tuple[str, str, dict]] = []
        self.logs = logs  # job name -> worker log

    def create_namespaced_config_map(self, namespace, body):
        self.created.append(("ConfigMap", namespace, body))

    def create_namespaced_job(self, namespace, body):
        self.created.append(("Job", namespace, body))

    def read_namespaced_job_status(self, name, namespace):
        return SimpleNamespace(status=SimpleNamespace(conditions=[SimpleNamespace(type="Complete", status="True")]))

    def list_namespaced_pod(self, namespace, label_selector):
        name = label_selector.removeprefix("job-name=")
        return SimpleNamespace(
            items=[SimpleNamespace(metadata=SimpleNamespace(name=f"{name}-abcde", creation_timestamp=1))]
        )

    def read_namespaced_pod_log(self, pod, namespace, container):
        assert container == "worker"
        return self.logs.get(pod.removesuffix("-abcde"), "no result here\n")


def test_a_gpu_no_node_has_is_said_before_its_jobs_wait_for_hours(tmp_path, monkeypatch):
    cluster = FakeCluster({})
    labels = [{"nvidia.com/gpu.product": "NVIDIA-A100-80GB-PCIe"}, {"kubernetes.io/os": "linux"}]
    cluster.list_node = lambda label_selector: SimpleNamespace(
        items=[SimpleNamespace(metadata=SimpleNamespace(labels=x)) for x in labels if label_selector in x]
    )
    monkeypatch.setattr(k8s, "_clients", lambda: (cluster, cluster))
    lines: list[str] = []
    fields = dict(
        images=["hf"],
        gpus=["a100-80gb", "h100"],
        batch_sizes=[1],
        base=LaunchRequest(model=HUB_MODEL, data=str(SAMPLE_DATASET)),
        target="k8s",
        results=tmp_path,
        matrix_id="k8s-m",
        options=K8sOptions(poll_seconds=0, wait=False),
    )
    matrix.run(matrix.MatrixRequest(**fields), lines.append)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert warnings == [
        "warning: no node has nvidia.com/gpu.product in (NVIDIA-H100-80GB-HBM3) now: the h100 Jobs stay Pending "
        "until one joins (an autoscaler) or --deadline (21600 s) ends them"
    ]


def test_submit_then_collect_results_from_pod_logs(tmp_path, monkeypatch, finished_run):
    result = json.loads((finished_run / "result.json").read_text())
    first = "hf-t4-default-bs1"
    logs = {
        job_name("k8s-m", first): "loading\n::sumbench:: "
        + json.dumps({"event": "result", "status": "completed", "result": result})
        + "\n"
    }
    cluster = FakeCluster(logs)
    monkeypatch.setattr(k8s, "_clients", lambda: (cluster, cluster))
    lines: list[str] = []
    fields = dict(
        images=["hf"],
        gpus=["t4", "h100"],
        batch_sizes=[1],
        base=LaunchRequest(model=HUB_MODEL, data=str(SAMPLE_DATASET)),
        target="k8s",
        results=tmp_path,
        matrix_id="k8s-m",
        options=K8sOptions(namespace="bench", poll_seconds=0),
    )
    manifest = matrix.run(matrix.MatrixRequest(**fields), lines.append)

    kinds = [(kind, body["metadata"]["name"]) for kind, _, body in cluster.created]
    assert kinds[0] == ("ConfigMap", k8s.data_configmap_name("k8s-m"))
    assert ("Job", job_name("k8s-m", first)) in kinds and len(kinds) == 5
    assert all(ns == "bench" for _, ns, _ in cluster.created)

    by = {c.run_id: c for c in manifest.cells}
    assert by[first].status == "done" and by[first].result_status == "completed"
    assert json.loads((tmp_path / "k8s-m" / first / "result.json").read_text()) == result
    assert "::sumbench::" in (tmp_path / "k8s-m" / first / "pod.log").read_text()
    assert by["hf-h100-default-bs1"].status == "error" and "without a result line" in by["hf-h100-default-bs1"].reason


@pytest.mark.skipif(importlib.util.find_spec("kubernetes") is None, reason="pip install -e '.[k8s]'")
def test_without_a_kubeconfig_the_manifests_are_for_kubectl(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    lines: list[str] = []
    fields = dict(
        images=["hf"],
        gpus=["t4"],
        batch_sizes=[1],
        target="k8s",
        results=tmp_path,
        matrix_id="k8s-m",
        base=LaunchRequest(model=HUB_MODEL, data=str(SAMPLE_DATASET)),
        options=K8sOptions(),
    )
    manifest = matrix.run(matrix.MatrixRequest(**fields), lines.append)
    assert any(f"kubectl apply -f {tmp_path / 'k8s-m' / 'k8s'}" in line for line in lines)
    assert [c.status for c in manifest.cells] == ["planned"]
