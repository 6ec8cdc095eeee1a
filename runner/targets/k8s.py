"""Kubernetes target: one ``batch/v1`` Job per cell, with its config.json in a ConfigMap.

Kubernetes places the pods (a ``nvidia.com/gpu: 1`` limit and a required node affinity on the GPU
product), retries them (``backoffLimit``), stops them (``activeDeadlineSeconds``) and cleans up
(``ttlSecondsAfterFinished``). sumbench only renders the objects, submits them, and reads the results.

The node affinity accepts every product label the catalog entry covers (``k8s_products``: the SXM and
PCIe forms GPU feature discovery names), since a selector on one of them leaves a Job Pending, until
its deadline, on a cluster with only the other. The worker asks for CPU and memory too
(``--k8s-cpus``, ``--k8s-memory``; by default 4 CPUs and the model's 16-bit weights plus 4 GiB, which
loading a checkpoint holds in host memory): a pod without requests is BestEffort, placed on a node
without room to load the model and evicted first.

Volumes, all under ``/sumbench`` in the container:
  config   the cell's ConfigMap (config.json); an init container copies it into the run folder once,
           so a retried pod on a results volume resumes from the documents already written
  data     ``--k8s-data-pvc`` (the dataset at its file name in the volume), or, for a dataset under
           900 KiB, a ConfigMap shared by the matrix
  model    ``--k8s-model-pvc`` when ``--model`` is a local folder (the folder at its name in the volume);
           a hub id downloads in the pod (``--hf-token-secret`` gives it a token from a Secret)
  results  ``--k8s-results-pvc``, or an emptyDir: the worker prints its whole result as a
           ``::sumbench::`` line, so the pod log alone gives back result.json (docs.jsonl stays on the PVC)

Exit codes: the worker exits 1 (failed) or 3 (partial) after writing a result; ``podFailurePolicy``
ends the Job on those instead of retrying a run that would fail the same way, and ignores evictions
and preemptions (``DisruptionTarget``) so they do not use up ``backoffLimit``.

Submitted with the kubernetes client when a kubeconfig (or in-cluster config) exists; otherwise the
manifests are written to ``RESULTS/<matrix-id>/k8s/`` for ``kubectl apply -f``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.contract import catalog, rundir
from runner.contract.errors import UserError
from runner.contract.schema import RunConfig
from runner.targets import (
    CONTAINER_CACHE,
    CONTAINER_CONFIG,
    CONTAINER_DATA_DIR,
    CONTAINER_MODEL_DIR,
    CONTAINER_RESULTS,
    Target,
    collect_output,
    container_config,
    image_reference,
    local_model_dir,
    require,
    to_yaml_documents,
)

MANIFEST_DIR = "k8s"
LOG_FILE = "pod.log"
GPU_LABELS = {"nvidia": "nvidia.com/gpu.product", "gke": "cloud.google.com/gke-accelerator"}
CONFIGMAP_DATA_LIMIT = 900 * 1024  # a ConfigMap holds at most 1 MiB, metadata included
WORKER_FAILURE_EXIT_CODES = [1, 3]  # the worker wrote a result: failed (1) or partial (3)
GiB = 1 << 30
HOST_OVERHEAD_BYTES = 4 * GiB  # Python, torch and CUDA's host side, tokenizer, dataset: beside the weights
UNKNOWN_MODEL_MEMORY_BYTES = 18 * GiB  # a model of unknown shape (a hub id): a 7B model in 16 bits and the process
DEFAULT_CPUS = 4.0
_LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")


@dataclass
class K8sOptions:
    """How cells run on Kubernetes."""

    namespace: str = "default"
    gpu_label: str = "nvidia"  # nvidia | gke | a custom node label key (valued with the catalog's k8s_products)
    data_pvc: str | None = None
    model_pvc: str | None = None
    results_pvc: str | None = None
    hf_token_secret: str | None = None  # NAME or NAME:KEY (key defaults to HF_TOKEN)
    deadline_seconds: int = 6 * 3600
    backoff_limit: int = 2
    ttl_seconds: int = 7 * 24 * 3600
    image_pull_secret: str | None = None
    run_as_user: int = 1000
    wait: bool = True
    poll_seconds: float = 15.0
    cpus: float = DEFAULT_CPUS  # the worker's CPU request
    memory_bytes: int | None = None  # the worker's memory request; None: from the model's weights

    def __post_init__(self) -> None:
        if self.gpu_label not in GPU_LABELS and not _LABEL_KEY.match(self.gpu_label):
            raise UserError(
                f"--k8s-gpu-label {self.gpu_label!r}: use nvidia, gke, or a node label key such as example.com/gpu-type"
            )
        if self.deadline_seconds < 1 or self.backoff_limit < 0 or self.ttl_seconds < 0:
            raise UserError("--deadline must be positive; --backoff-limit and --ttl-after-finished 0 or more")
        if self.cpus <= 0 or (self.memory_bytes is not None and self.memory_bytes < 1):
            raise UserError("--k8s-cpus and --k8s-memory must be positive")

    @property
    def hf_token_secret_ref(self) -> tuple[str, str]:
        """``--hf-token-secret NAME[:KEY]`` as (Secret name, key in it); the key defaults to HF_TOKEN."""
        secret, _, key = (self.hf_token_secret or "").partition(":")
        return secret, key or "HF_TOKEN"

    @property
    def label_key(self) -> str:
        return GPU_LABELS.get(self.gpu_label, self.gpu_label)

    def label_values(self, gpu: catalog.Gpu) -> tuple[str, ...]:
        """Every node label value that is this GPU type (SXM and PCIe forms): a node with any of them will do."""
        return gpu.gke_accelerators if self.gpu_label == "gke" else gpu.k8s_products


def memory_request(config: RunConfig) -> int:
    """Host memory the worker asks for: the model's weights unquantized (how a checkpoint is read into host
    memory before it reaches the GPU, or stays there on a CPU) plus the process's own; a model whose shape
    is unknown here gets a 7B model's."""
    from runner.contract.architectures import model_shape
    from runner.memory_plan import DTYPE_BYTES, ModelShape, weight_bytes

    values = model_shape(config.model)
    try:
        shape = ModelShape.from_config(values, config.model) if values is not None else None
    except UserError:  # a config.json the memory plan cannot read (not a Llama-style decoder)
        shape = None
    if shape is None:
        return UNKNOWN_MODEL_MEMORY_BYTES
    dtype = config.dtype if config.dtype in DTYPE_BYTES and DTYPE_BYTES[config.dtype] >= 2 else "float16"
    return weight_bytes(shape, dtype, None) + HOST_OVERHEAD_BYTES


def download_bytes(config: RunConfig) -> int | None:
    """Disk a hub model's download takes in the pod's cache (its weights as ``memory_request`` counts them,
    which is at least the checkpoint's size); None where nothing is downloaded (a model volume, synthetic
    weights)."""
    if local_model_dir(config) is not None or config.synthetic_weights:
        return None
    return memory_request(config)


def quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity, rounded up to whole GiB (a request a person reads)."""
    return f"{math.ceil(size / GiB)}Gi"


def job_name(matrix_id: str, run_id: str) -> str:
    """A DNS label (63 characters at most) that reads as the cell and is unique per matrix."""
    slug = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha1(f"{matrix_id}/{run_id}".encode()).hexdigest()[:8]
    return f"sumbench-{slug}-{digest}"


def data_configmap_name(matrix_id: str) -> str:
    return "sumbench-data-" + hashlib.sha1(matrix_id.encode()).hexdigest()[:10]


def label_value(text: str) -> str:
    """Text as a label value: 63 characters of [A-Za-z0-9._-], alphanumeric at both ends."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63].strip("-_.")


class K8sTarget(Target):
    name = "k8s"
    executor = "k8s"
    token_in_command = True  # --hf-token-secret

    def __init__(self, options: K8sOptions) -> None:
        self.options = options

    def drop_reason(self, cell: Any) -> str | None:
        gpu = catalog.get_gpu(cell.gpu)
        if not gpu.is_cpu and not self.options.label_values(gpu):
            return f"GPU {gpu.key} has no {self.options.label_key} node label value in the catalog"
        return None

    def check(self, request: Any, cells: list[Any], *, launching: bool) -> None:
        if not self.options.data_pvc:
            _configmap_size_check(Path(request.base.data).resolve())
        for cell in cells:
            self.model_path(cell.config)

    def hf_token_missing(self) -> str | None:
        """The pods read HF_TOKEN from a Secret; this machine's token never reaches them."""
        return None if self.options.hf_token_secret else "pass --hf-token-secret NAME (a Secret holding HF_TOKEN)"

    # --- rendering ---------------------------------------------------------------------------------

    def labels(self, matrix_id: str, run_id: str | None = None) -> dict[str, str]:
        labels = {
            "app.kubernetes.io/name": "sumbench",
            "app.kubernetes.io/component": "worker",
            "sumbench/matrix": label_value(matrix_id),
        }
        if run_id is not None:
            labels["sumbench/run"] = label_value(run_id)
        return labels

    def data_source(self, matrix: Any) -> tuple[str, dict[str, Any] | None]:
        """The dataset's path in the container, and the ConfigMap carrying it when no PVC does."""
        data = Path(matrix.request.base.data).resolve()
        if self.options.data_pvc:
            return f"{CONTAINER_DATA_DIR}/{data.name}", None
        _configmap_size_check(data)
        key = re.sub(r"[^-._a-zA-Z0-9]+", "-", data.name)
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": data_configmap_name(matrix.id),
                "namespace": self.options.namespace,
                "labels": self.labels(matrix.id),
            },
            "data": {key: data.read_text(encoding="utf-8")},
        }
        return f"{CONTAINER_DATA_DIR}/{key}", configmap

    def model_path(self, config: Any) -> str | None:
        model = local_model_dir(config)
        if model is None:
            return None
        if not self.options.model_pvc:
            raise UserError(
                f"--model {model} is a local folder: put it on a PersistentVolumeClaim and pass "
                "--k8s-model-pvc NAME (the folder at its own name in the volume), or use a hub id"
            )
        return f"{CONTAINER_MODEL_DIR}/{model.name}"

    def objects(self, matrix: Any, cell: Any, config_json: str) -> list[dict[str, Any]]:
        """The cell's ConfigMap and Job."""
        name = job_name(matrix.id, cell.run_id)
        labels = self.labels(matrix.id, cell.run_id)
        namespace = self.options.namespace
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "data": {"config.json": config_json},
        }
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": {"sumbench/matrix-id": matrix.id, "sumbench/run-id": cell.run_id},
            },
            "spec": {
                "backoffLimit": self.options.backoff_limit,
                "activeDeadlineSeconds": self.options.deadline_seconds,
                "ttlSecondsAfterFinished": self.options.ttl_seconds,
                "podFailurePolicy": {
                    "rules": [
                        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                        {
                            "action": "FailJob",
                            "onExitCodes": {
                                "containerName": "worker",
                                "operator": "In",
                                "values": WORKER_FAILURE_EXIT_CODES,
                            },
                        },
                    ]
                },
                "template": {"metadata": {"labels": labels}, "spec": self.pod_spec(matrix, cell, name)},
            },
        }
        return [configmap, job]

    def pod_spec(self, matrix: Any, cell: Any, name: str) -> dict[str, Any]:
        gpu = catalog.get_gpu(cell.entry.gpu)
        reference = image_reference(cell.entry.image, matrix.request.registry, matrix.request.tag)
        run_dir = f"{CONTAINER_RESULTS}/{matrix.id}/{cell.run_id}"
        hardened = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        mounts = [
            {"name": "config", "mountPath": str(Path(CONTAINER_CONFIG).parent), "readOnly": True},
            {"name": "data", "mountPath": CONTAINER_DATA_DIR, "readOnly": True},
            {"name": "results", "mountPath": CONTAINER_RESULTS},
            {"name": "cache", "mountPath": CONTAINER_CACHE},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ]
        download = download_bytes(cell.config)
        volumes: list[dict[str, Any]] = [
            {"name": "config", "configMap": {"name": name}},
            {
                "name": "data",
                **(
                    {"persistentVolumeClaim": {"claimName": self.options.data_pvc, "readOnly": True}}
                    if self.options.data_pvc
                    else {"configMap": {"name": data_configmap_name(matrix.id)}}
                ),
            },
            {
                "name": "results",
                **(
                    {"persistentVolumeClaim": {"claimName": self.options.results_pvc}}
                    if self.options.results_pvc
                    else {"emptyDir": {}}
                ),
            },
            {"name": "cache", "emptyDir": {"sizeLimit": quantity(download)} if download else {}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        ]
        if local_model_dir(cell.config) is not None:
            mounts.append({"name": "model", "mountPath": CONTAINER_MODEL_DIR, "readOnly": True})
            volumes.append(
                {"name": "model", "persistentVolumeClaim": {"claimName": self.options.model_pvc, "readOnly": True}}
            )
        env: list[dict[str, Any]] = [
            {"name": "HOME", "value": CONTAINER_CACHE},
            {"name": "HF_HOME", "value": f"{CONTAINER_CACHE}/huggingface"},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ]
        if self.options.hf_token_secret:
            secret, key = self.options.hf_token_secret_ref
            env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
        memory = self.options.memory_bytes or memory_request(cell.config)
        # Requests without limits: the scheduler finds a node with room to load the model, and the pod is
        # Burstable, not BestEffort (evicted first); it may still use more where the node has it.
        resources: dict[str, Any] = {"requests": {"cpu": f"{self.options.cpus:g}", "memory": quantity(memory)}}
        if download:  # a 13 GB download into an emptyDir without a request gets the pod evicted from a small disk
            resources["requests"]["ephemeral-storage"] = quantity(download)
        if not gpu.is_cpu:
            resources["limits"] = {"nvidia.com/gpu": 1}
        worker: dict[str, Any] = {
            "name": "worker",
            "image": reference,
            "imagePullPolicy": "IfNotPresent",
            "args": [run_dir],  # the image's ENTRYPOINT is `python -m runner.worker`
            "env": env,
            "resources": resources,
            "volumeMounts": mounts,
            "securityContext": hardened,
        }
        # Seed the run folder once: a retried pod finds config.json and docs.jsonl and resumes.
        seed = (
            "import os, shutil, sys; d = sys.argv[1]; os.makedirs(d, exist_ok=True); "
            "p = os.path.join(d, 'config.json'); os.path.exists(p) or shutil.copyfile(sys.argv[2], p)"
        )
        prepare = {
            "name": "prepare",
            "image": reference,
            "imagePullPolicy": "IfNotPresent",
            "command": ["python", "-c", seed, run_dir, CONTAINER_CONFIG],
            "volumeMounts": [m for m in mounts if m["name"] in ("config", "results")],
            "securityContext": hardened,
        }
        uid = self.options.run_as_user
        spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": uid,
                "runAsGroup": uid,
                "fsGroup": uid,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": [prepare],
            "containers": [worker],
            "volumes": volumes,
        }
        if not gpu.is_cpu:
            spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": self.gpu_nodes(gpu)}}
            spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        if self.options.image_pull_secret:
            spec["imagePullSecrets"] = [{"name": self.options.image_pull_secret}]
        return spec

    def gpu_nodes(self, gpu: catalog.Gpu) -> dict[str, Any]:
        """The nodes a cell of ``gpu`` may run on: its label key with any of the catalog's values for it."""
        expression = {"key": self.options.label_key, "operator": "In", "values": list(self.options.label_values(gpu))}
        return {"nodeSelectorTerms": [{"matchExpressions": [expression]}]}

    def submit_steps(self, manifest: Any, matrix_dir: Path, command: str) -> list[str]:
        """Where the manifests are, what the cluster must hold before they run, and the two ways to submit."""
        options, request = self.options, manifest.request
        namespace = options.namespace
        manifests = shlex.quote(str(matrix_dir / MANIFEST_DIR))
        lines = [f"dry run: nothing was submitted. Kubernetes manifests: {manifests}/*.yaml (namespace {namespace})"]
        needs = []
        if options.data_pvc:
            data = Path(request["data"]).name
            needs.append(f"PVC {options.data_pvc} (--k8s-data-pvc): the dataset file {data} at its root")
        model = Path(request["model"])
        if model.is_absolute() and model.is_dir():
            needs.append(
                f"PVC {options.model_pvc} (--k8s-model-pvc): the model folder {model.name}/ at its root "
                f"({model.name}/config.json and its weights)"
            )
        if options.results_pvc:
            needs.append(
                f"PVC {options.results_pvc} (--k8s-results-pvc): writable by uid {options.run_as_user} "
                f"(fsGroup {options.run_as_user}); run folders go to {manifest.matrix_id}/<run-id>/ in it"
            )
        if options.hf_token_secret:
            secret, key = options.hf_token_secret_ref
            needs.append(
                f"Secret {secret}: kubectl create secret generic {secret} -n {namespace} --from-literal={key}=hf_..."
            )
        if options.image_pull_secret:
            needs.append(f"Secret {options.image_pull_secret} (--image-pull-secret): the registry's credentials")
        if needs:
            lines.append(f"the cluster needs, in namespace {namespace}:")
            lines += [f"  {need}" for need in needs]
        folder = shlex.quote(str(matrix_dir))
        lines += [
            f"to submit and wait for the results (a kubeconfig here): {command}",
            f"or with kubectl: kubectl apply -f {manifests}/ then runner matrix --collect {folder}",
        ]
        return lines

    def render(self, matrix: Any) -> None:
        """Write RESULTS/<matrix-id>/k8s/*.yaml and each cell's container config.json."""
        out = matrix.dir / MANIFEST_DIR
        out.mkdir(exist_ok=True)
        data_path, data_configmap = self.data_source(matrix)
        if data_configmap is not None:
            (out / "00-data.yaml").write_text(to_yaml_documents([data_configmap]), encoding="utf-8")
        for cell in matrix.cells:
            cell.run_dir.mkdir(parents=True, exist_ok=True)
            config = container_config(
                cell.config,
                data_path=data_path,
                model_path=self.model_path(cell.config),
                reference=image_reference(cell.entry.image, matrix.request.registry, matrix.request.tag),
                executor="k8s",
            )
            rundir.write_config(cell.run_dir, config)
            objects = self.objects(matrix, cell, config.model_dump_json(indent=2))
            (out / f"{cell.run_id}.yaml").write_text(to_yaml_documents(objects), encoding="utf-8")
            name = job_name(matrix.id, cell.run_id)
            matrix.store.update(cell.run_id, where=f"k8s job {self.options.namespace}/{name}")

    # --- submitting and collecting -----------------------------------------------------------------

    def launch(self, matrix: Any, on_line: Callable[[str], None]) -> None:
        clients = _clients()
        out = matrix.dir / MANIFEST_DIR
        if clients is None:
            on_line(
                f"no kubeconfig found: submit the manifests with `kubectl apply -f {out}`, "
                f"then collect with `runner matrix --collect {matrix.dir}`"
            )
            return  # the cells stay planned: nothing was submitted
        core, batch = clients
        namespace = self.options.namespace
        for warning in self.missing_gpu_nodes(core, matrix.cells):
            on_line(f"warning: {warning}")
        for path in sorted(out.glob("*.yaml")):
            for obj in _load_documents(path):
                _create(core, batch, namespace, obj)
        for cell in matrix.cells:
            matrix.store.update(cell.run_id, status="launched")
            on_line(f"[{cell.run_id}] submitted job {namespace}/{job_name(matrix.id, cell.run_id)}")
        if self.options.wait:
            self.collect(matrix.dir, matrix.store, on_line)
        else:
            on_line(f"collect later with `runner matrix --collect {matrix.dir}`")

    def missing_gpu_nodes(self, core: Any, cells: list[Any]) -> list[str]:
        """GPU types of the matrix that no node of the cluster has now: their Jobs would wait, Pending, until
        a node joins or the deadline ends them, and a person should hear it before hours pass. Said, not
        refused: an autoscaler may add the node. Skipped where nodes cannot be listed (a namespaced role)."""
        try:
            nodes = core.list_node(label_selector=self.options.label_key).items
        except Exception:  # no permission to list nodes, or no such call: the check is a courtesy
            return []
        present = {(node.metadata.labels or {}).get(self.options.label_key) for node in nodes}
        out = []
        for gpu in dict.fromkeys(catalog.get_gpu(cell.entry.gpu) for cell in cells):
            values = self.options.label_values(gpu)
            if not gpu.is_cpu and not present.intersection(values):
                out.append(
                    f"no node has {self.options.label_key} in ({', '.join(values)}) now: the {gpu.key} Jobs stay "
                    f"Pending until one joins (an autoscaler) or --deadline ({self.options.deadline_seconds} s) "
                    "ends them"
                )
        return out

    def collect(self, matrix_dir: Path, store: Any, on_line: Callable[[str], None]) -> None:
        """Wait for each launched Job to finish, then recover its result from the pod logs."""
        clients = _clients()
        if clients is None:
            raise UserError("collecting from Kubernetes needs a kubeconfig (~/.kube/config or KUBECONFIG)")
        core, batch = clients
        # Planned cells count too: without a kubeconfig at launch, a person submitted them with kubectl.
        pending = {
            c.run_id: c.where.removeprefix("k8s job ")
            for c in store.manifest.cells
            if c.status in ("planned", "launched") and c.where and c.where.startswith("k8s job ")
        }
        while pending:
            for run_id, ref in list(pending.items()):
                namespace, name = ref.split("/", 1)
                try:
                    state = _job_state(batch, namespace, name)
                except Exception as exc:  # gone (deleted, or removed by ttlSecondsAfterFinished) or unreadable
                    del pending[run_id]
                    store.update(run_id, status="error", reason=f"job {namespace}/{name}: {type(exc).__name__}: {exc}")
                    on_line(f"[{run_id}] cannot read job {namespace}/{name}: {exc}")
                    continue
                if state is None:
                    continue
                del pending[run_id]
                run_dir = matrix_dir / run_id
                run_dir.mkdir(parents=True, exist_ok=True)
                result = collect_output(run_dir, _pod_logs(core, namespace, name), LOG_FILE)
                if result is None:
                    store.update(
                        run_id,
                        status="error",
                        reason=f"job {state.lower()} without a result line "
                        f"(see {LOG_FILE}; `kubectl describe job -n {namespace} {name}`)",
                    )
                    on_line(f"[{run_id}] job {state.lower()} without a result")
                else:
                    store.update(run_id, status="done", result_status=result.status, reason=None)
                    on_line(f"[{run_id}] {result.status}: {result.metrics.documents} documents")
            if pending:
                time.sleep(self.options.poll_seconds)


def _configmap_size_check(data: Path) -> None:
    size = data.stat().st_size
    if size > CONFIGMAP_DATA_LIMIT:
        raise UserError(
            f"dataset {data} is {size // 1024} KiB, too big for a ConfigMap: copy it onto a "
            "PersistentVolumeClaim and pass --k8s-data-pvc NAME"
        )


def _kubeconfig_exists() -> bool:
    paths = os.environ.get("KUBECONFIG", "").split(os.pathsep)
    return any(p and Path(p).expanduser().is_file() for p in paths) or Path("~/.kube/config").expanduser().is_file()


def _clients() -> tuple[Any, Any] | None:
    """CoreV1Api and BatchV1Api, or None when there is no cluster to talk to."""
    kubernetes = require("kubernetes", "k8s", "submitting to Kubernetes")
    if _kubeconfig_exists():
        kubernetes.config.load_kube_config()
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        kubernetes.config.load_incluster_config()
    else:
        return None
    return kubernetes.client.CoreV1Api(), kubernetes.client.BatchV1Api()


def _load_documents(path: Path) -> list[dict[str, Any]]:
    import yaml  # a dependency of the kubernetes client

    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _create(core: Any, batch: Any, namespace: str, obj: dict[str, Any]) -> None:
    """Create one object; a ConfigMap that exists is replaced, a Job that exists is an error."""
    from kubernetes.client.exceptions import ApiException

    name = obj["metadata"]["name"]
    try:
        if obj["kind"] == "ConfigMap":
            core.create_namespaced_config_map(namespace, obj)
        else:
            batch.create_namespaced_job(namespace, obj)
    except ApiException as exc:
        if exc.status != 409:
            raise UserError(f"Kubernetes refused {obj['kind']} {namespace}/{name}: {exc.reason} {exc.body}") from None
        if obj["kind"] == "ConfigMap":
            core.replace_namespaced_config_map(name, namespace, obj)
        else:
            raise UserError(
                f"job {namespace}/{name} already exists: `kubectl delete job -n {namespace} {name}` "
                "or use a new --matrix-id"
            ) from None


def _job_state(batch: Any, namespace: str, name: str) -> str | None:
    """Complete or Failed once the Job is over; None while it runs."""
    job = batch.read_namespaced_job_status(name, namespace)
    for condition in (job.status.conditions or []) if job.status else []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition.type
    return None


def _pod_logs(core: Any, namespace: str, name: str) -> list[str]:
    """The worker logs of every pod the Job made, oldest first (the last result line wins)."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    pods.sort(key=lambda pod: pod.metadata.creation_timestamp)
    logs = []
    for pod in pods:
        try:
            text = core.read_namespaced_pod_log(pod.metadata.name, namespace, container="worker")
        except Exception:
            continue  # a pod that never started its worker has no log
        logs.append(text if text.endswith("\n") else text + "\n")
    return logs
