"""SkyPilot target: one SkyPilot task per cell, written as ``task.yaml`` in the cell's folder.

SkyPilot finds the GPU (``resources.accelerators`` = the catalog GPU's SkyPilot name, one of it), runs
the pushed image (``resources.image_id: docker:<reference>``), copies the inputs (``file_mounts``: the
dataset, a local model folder, the cell's ``config.json``), and tears the cluster down afterwards. The
task's ``run`` starts the worker on a run folder inside the container.

Results come back two ways. The worker prints its whole result as a ``::sumbench::`` line, so
following the job's log is enough to write ``result.json`` into the cell's folder here. With
``--bucket`` the whole run folder (``docs.jsonl``, ``worker.log``) also lands in the bucket:
``MOUNT`` copies it there when the worker ends, because a MOUNT bucket takes whole files and not
appends; ``MOUNT_CACHED`` puts the run folder in the bucket itself, so a spot job that is preempted and
recovered resumes from the documents it already finished. The default is ``MOUNT_CACHED`` for managed
jobs (``--spot``, ``--max-restarts``), whose restarts are what it is for, and ``MOUNT`` otherwise.

``--spot`` or ``--max-restarts`` make each cell a SkyPilot managed job (``sky jobs launch``): only
managed jobs recover from preemption and honour ``job_recovery``. The task exits 0 whenever the worker
wrote a result, failed runs included (a failure is a result, and retrying an out-of-memory cell would
only fail again); a worker killed without a result exits non-zero, which is what a restart is for.

At most ``--max-parallel`` cells (default 4; 0: all) run at once: each cell is a cluster of its own, and
a matrix of 18 cells would otherwise ask a cloud for 18 GPU machines at the same moment, past most
accounts' GPU quotas. The others wait, ``planned``, for a running cell to end.

With ``--spot`` (or ``--infra`` naming another cloud than a GPU's catalog price), a cell records no price
unless ``--price-per-hour`` gives one: the catalog's prices are one cloud's on-demand list prices.

SkyPilot is imported only to launch, never to render: ``--dry-run`` works without it.
"""

from __future__ import annotations

import hashlib
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.contract import catalog, rundir
from runner.contract.errors import UserError
from runner.model_names import local_hf_token
from runner.targets import (
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
    to_yaml,
)

TASK_FILE = "task.yaml"
LOG_FILE = "sky.log"
BUCKET_MODES = ("MOUNT", "MOUNT_CACHED")
MAX_PARALLEL = 4  # cells (clusters) at once by default: within a new cloud account's GPU quota


@dataclass
class SkyOptions:
    """How cells run on SkyPilot."""

    bucket: str | None = None  # s3://bucket/prefix, gs://..., mounted at /sumbench/results
    bucket_mode: str | None = None  # None: MOUNT_CACHED for managed jobs with a bucket, else MOUNT
    spot: bool = False
    max_restarts: int = 0
    infra: str | None = None  # SkyPilot infra: aws, gcp/us-central1, k8s, ...
    keep_clusters: bool = False
    hf_token: bool = False  # hand the local HF_TOKEN to each task as a SkyPilot secret at launch
    max_parallel: int = MAX_PARALLEL  # cells running at once; 0: every cell at once

    def __post_init__(self) -> None:
        if self.bucket_mode is None:
            # A restarted managed job resumes only from a run folder that lives in the bucket.
            self.bucket_mode = "MOUNT_CACHED" if self.managed and self.bucket else "MOUNT"
        if self.bucket_mode not in BUCKET_MODES:
            raise UserError(f"--bucket-mode {self.bucket_mode!r}: use one of {', '.join(BUCKET_MODES)}")
        if self.bucket is not None and "://" not in self.bucket:
            raise UserError(f"--bucket {self.bucket!r}: give a bucket URL such as s3://my-bucket/sumbench")
        if self.max_restarts < 0:
            raise UserError("--max-restarts must be 0 or more")
        if self.max_parallel < 0:
            raise UserError("--max-parallel must be 0 (every cell at once) or more")
        if self.keep_clusters and self.managed:
            raise UserError(
                "--keep-clusters does not apply to --spot / --max-restarts: managed jobs clean up "
                "their own clusters; use --bucket to keep the run folders"
            )

    @property
    def managed(self) -> bool:
        """Only SkyPilot managed jobs recover from preemption and restart on errors."""
        return self.spot or self.max_restarts > 0

    @property
    def infra_cloud(self) -> str | None:
        """The cloud ``--infra`` names (``aws`` of ``aws/us-east-1``); None when it names none (``*/...``)."""
        cloud = (self.infra or "").split("/")[0].strip().lower()
        return None if cloud in ("", "*") else cloud


def cluster_name(matrix_id: str, run_id: str) -> str:
    """Short and valid on every cloud (GCP allows 35 characters); stable, so a re-run reuses it."""
    return "sumbench-" + hashlib.sha1(f"{matrix_id}/{run_id}".encode()).hexdigest()[:10]


def run_script(matrix_id: str, run_id: str, options: SkyOptions) -> str:
    """The task's ``run``: seed the run folder with config.json once, run the worker, keep its output."""
    in_bucket = f"{CONTAINER_RESULTS}/{matrix_id}/{run_id}"
    direct = options.bucket is not None and options.bucket_mode == "MOUNT_CACHED"
    lines = [
        f'run_dir="{in_bucket}"' if direct else f'run_dir="$HOME/sumbench/{matrix_id}/{run_id}"',
        'mkdir -p "$run_dir"',
        f'[ -f "$run_dir/config.json" ] || cp {CONTAINER_CONFIG} "$run_dir/config.json"',
        'python -m runner.worker "$run_dir"',
        "status=$?",
    ]
    if options.bucket is not None and not direct:
        lines += [f'mkdir -p "{in_bucket}"', f'cp -r "$run_dir"/. "{in_bucket}"/']
    lines += ['if [ -f "$run_dir/result.json" ]; then exit 0; fi', 'exit "$status"']
    return "\n".join(lines) + "\n"


class SkyTarget(Target):
    name = "sky"
    executor = "sky"
    token_in_command = True  # --hf-token

    def __init__(self, options: SkyOptions) -> None:
        self.options = options

    def drop_reason(self, cell: Any) -> str | None:
        gpu = catalog.get_gpu(cell.gpu)
        if not gpu.is_cpu and not gpu.skypilot:
            return f"GPU {gpu.key} has no SkyPilot accelerator name in the catalog"
        return None

    def check(self, request: Any, cells: list[Any], *, launching: bool) -> None:
        """What launch needs and a dry run does not: HF_TOKEN set when --hf-token hands it on, and SkyPilot
        ready with a cloud enabled."""
        if not launching:
            return
        if self.options.hf_token and not local_hf_token():
            raise UserError("--hf-token passes the local HF_TOKEN to each task, but HF_TOKEN is not set")
        _check_ready(require("sky", "sky", "--target sky"))

    def hf_token_missing(self) -> str | None:
        """Tasks get this machine's HF_TOKEN only as a secret, with --hf-token (checked before launching)."""
        return None if self.options.hf_token else "pass --hf-token to hand each task your HF_TOKEN"

    def warnings(self, request: Any, cells: list[Any], *, launching: bool) -> list[str]:
        options, out = self.options, []
        why = "--spot" if options.spot else f"--max-restarts {options.max_restarts}"
        if options.managed and options.bucket is None:
            out.append(
                f"{why} without --bucket: a restarted cell starts over, and its docs.jsonl stays on the VM; "
                "add --bucket URL (MOUNT_CACHED) to resume it"
            )
        elif options.managed and options.bucket_mode == "MOUNT":
            out.append(
                f"{why} with --bucket-mode MOUNT: a restarted cell starts over, because MOUNT copies the run folder "
                "to the bucket only when the worker ends; MOUNT_CACHED (the default for managed jobs) resumes it"
            )
        if options.hf_token and not launching and not local_hf_token():
            out.append("--hf-token hands on this machine's HF_TOKEN, which is not set: set it before the real run")
        return out

    def catalog_price_problem(self, gpu: catalog.Gpu) -> str | None:
        if gpu.is_cpu:
            return None  # no catalog price to doubt
        if self.options.spot:
            return (
                "--spot bills at a spot price, which moves and is below the catalog's on-demand one; "
                "pass --price-per-hour GPU=USD to record it"
            )
        cloud = self.options.infra_cloud
        if cloud is not None and cloud != gpu.price_cloud:
            return (
                f"--infra {self.options.infra}: the catalog's {gpu.key} price is {gpu.price_cloud or 'no'} cloud's "
                f"({gpu.price_source}); pass --price-per-hour GPU=USD to record the price there"
            )
        return None

    def submit_steps(self, manifest: Any, matrix_dir: Path, command: str) -> list[str]:
        """Where the tasks are, and the command that launches them (in the SkyPilot environment)."""
        tasks = shlex.quote(str(matrix_dir)) + "/*/" + TASK_FILE
        return [
            f"dry run: nothing was launched. SkyPilot tasks: {tasks}",
            f"to launch them (SkyPilot installed, a cloud enabled: `sky check`): {command}",
        ]

    # --- rendering ---------------------------------------------------------------------------------

    def task(self, matrix: Any, cell: Any) -> dict[str, Any]:
        """The SkyPilot task for one cell, as the YAML mapping ``sky launch`` reads."""
        gpu = catalog.get_gpu(cell.entry.gpu)
        reference = image_reference(cell.entry.image, matrix.request.registry, matrix.request.tag)
        resources: dict[str, Any] = {}
        if self.options.infra:
            resources["infra"] = self.options.infra
        if gpu.is_cpu:
            resources["cpus"] = "4+"
        else:
            resources["accelerators"] = f"{gpu.skypilot}:1"
        resources["image_id"] = f"docker:{reference}"
        if self.options.spot:
            resources["use_spot"] = True
        if self.options.managed:
            resources["job_recovery"] = {"max_restarts_on_errors": self.options.max_restarts}
        data = Path(cell.config.data)
        mounts: dict[str, Any] = {
            CONTAINER_CONFIG: str((cell.run_dir / rundir.CONFIG).resolve()),
            f"{CONTAINER_DATA_DIR}/{data.name}": str(data),
        }
        if (model := local_model_dir(cell.config)) is not None:
            mounts[f"{CONTAINER_MODEL_DIR}/{model.name}"] = str(model)
        if self.options.bucket:
            mounts[CONTAINER_RESULTS] = {"source": self.options.bucket, "mode": self.options.bucket_mode}
        return {
            "name": f"sumbench-{cell.run_id}",
            "resources": resources,
            # SkyPilot installs its runtime (ssh, rsync, fuse) into the container with apt-get, which
            # needs root; the images drop to the user sumbench, so the container starts as root here.
            "config": {"docker": {"run_options": ["--user=root"]}},
            "envs": {"SUMBENCH_MATRIX_ID": matrix.id, "SUMBENCH_RUN_ID": cell.run_id},
            "file_mounts": mounts,
            "run": run_script(matrix.id, cell.run_id, self.options),
        }

    def render(self, matrix: Any) -> None:
        """Write each cell's container config.json and task.yaml (the task mounts that config.json)."""
        for cell in matrix.cells:
            cell.run_dir.mkdir(parents=True, exist_ok=True)
            task = self.task(matrix, cell)  # from the host config: it names the local files to mount
            model = local_model_dir(cell.config)
            config = container_config(
                cell.config,
                data_path=f"{CONTAINER_DATA_DIR}/{Path(cell.config.data).name}",
                model_path=f"{CONTAINER_MODEL_DIR}/{model.name}" if model else None,
                reference=task["resources"]["image_id"].removeprefix("docker:"),
                executor="sky",
            )
            rundir.write_config(cell.run_dir, config)
            (cell.run_dir / TASK_FILE).write_text(to_yaml(task), encoding="utf-8")
            kind = "sky managed job" if self.options.managed else "sky cluster"
            matrix.store.update(cell.run_id, where=f"{kind} {cluster_name(matrix.id, cell.run_id)}")

    # --- launching ---------------------------------------------------------------------------------

    def launch(self, matrix: Any, on_line: Callable[[str], None]) -> None:
        sky = require("sky", "sky", "--target sky")  # check() found it ready before the folder was made
        # Each cell is its own cluster or managed job; SkyPilot provisions them. A thread follows one
        # cell's log until its job ends, then takes the next cell: --max-parallel threads in all.
        waiting = list(reversed(matrix.cells))
        lock, stop = threading.Lock(), threading.Event()
        slots = min(self.options.max_parallel or len(waiting), len(waiting))
        if slots < len(waiting):
            on_line(f"{len(waiting)} cells, {slots} at a time (--max-parallel {self.options.max_parallel})")

        def take_cells() -> None:
            while not stop.is_set():
                with lock:
                    if not waiting:
                        return
                    cell = waiting.pop()
                self._run_cell(sky, matrix, cell, on_line)

        threads = [threading.Thread(target=take_cells, daemon=True) for _ in range(slots)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)
        except KeyboardInterrupt:
            stop.set()  # cells not yet taken stay planned; the same command launches them
            raise
        if self.options.keep_clusters:
            on_line(
                "clusters kept: copy a run folder with `rsync -Pavz "
                "CLUSTER:sumbench/MATRIX-ID/RUN-ID/ RESULTS/MATRIX-ID/RUN-ID/`, then `sky down CLUSTER`"
            )

    def _run_cell(self, sky: Any, matrix: Any, cell: Any, on_line: Callable[[str], None]) -> None:
        store, run_id = matrix.store, cell.run_id
        name = cluster_name(matrix.id, run_id)
        try:
            task = sky.Task.from_yaml(str(cell.run_dir / TASK_FILE))
            if self.options.hf_token:
                task.update_secrets({"HF_TOKEN": local_hf_token()})  # in memory only, never in task.yaml
            if self.options.managed:
                job_ids, _ = sky.get(sky.jobs.launch(task, name=name))
                store.update(run_id, status="launched", where=f"sky managed job {name} (id {job_ids[0]})")
                on_line(f"[{run_id}] launched as managed job {job_ids[0]}")
                chunks = sky.jobs.tail_logs(job_id=job_ids[0], follow=True, preload_content=False)
            else:
                store.update(run_id, status="launched", where=f"sky cluster {name}")
                on_line(f"[{run_id}] launching cluster {name}")
                job_id, _ = sky.get(sky.launch(task, cluster_name=name, down=not self.options.keep_clusters))
                chunks = sky.tail_logs(name, job_id, follow=True, preload_content=False)
            result = collect_output(cell.run_dir, chunks, LOG_FILE)
        except Exception as exc:  # one cell's failure must not stop the others
            store.update(run_id, status="error", reason=f"{type(exc).__name__}: {exc}")
            on_line(f"[{run_id}] error: {type(exc).__name__}: {exc}")
            return
        if result is None:
            store.update(run_id, status="error", reason=f"the job ended without a result line (see {LOG_FILE})")
            on_line(f"[{run_id}] ended without a result; see {cell.run_dir / LOG_FILE}")
        else:
            store.update(run_id, status="done", result_status=result.status, reason=None)
            on_line(f"[{run_id}] {result.status}: {result.metrics.documents} documents")


def _check_ready(sky: Any) -> None:
    """Fail once, clearly, before launching anything, when SkyPilot has no cloud to launch on."""
    try:
        from sky.client import sdk  # enabled_clouds is not re-exported at the top of the package

        clouds = sky.get(sdk.enabled_clouds())
    except Exception as exc:
        raise UserError(
            f"SkyPilot is not ready ({type(exc).__name__}: {exc}); run `sky api info` and `sky check`"
        ) from None
    if not clouds:
        raise UserError("SkyPilot has no cloud or Kubernetes context enabled: set up credentials and run `sky check`")
