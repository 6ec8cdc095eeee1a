"""``runner matrix``: many cells (image x scenario x GPU x batch size) on one target, into one results tree."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from runner import __version__
from runner.cli.options import cell_options
from runner.cli.types import BATCH_SIZES, BYTE_SIZE
from runner.contract.errors import INTERRUPTED_EXIT_CODE, UserError

# Options that only one target reads, with their defaults: naming one for another target is a mistake.
TARGET_OPTIONS: dict[str, tuple[str, Any]] = {
    "docker_host": ("docker", ()),
    "bucket": ("sky", None),
    "bucket_mode": ("sky", None),
    "spot": ("sky", False),
    "max_restarts": ("sky", 0),
    "infra": ("sky", None),
    "keep_clusters": ("sky", False),
    "hf_token": ("sky", False),
    "max_parallel": ("sky", 4),
    "namespace": ("k8s", "default"),
    "k8s_gpu_label": ("k8s", "nvidia"),
    "k8s_data_pvc": ("k8s", None),
    "k8s_model_pvc": ("k8s", None),
    "k8s_results_pvc": ("k8s", None),
    "hf_token_secret": ("k8s", None),
    "deadline": ("k8s", 6 * 3600),
    "backoff_limit": ("k8s", 2),
    "ttl_after_finished": ("k8s", 7 * 24 * 3600),
    "image_pull_secret": ("k8s", None),
    "no_wait": ("k8s", False),
    "k8s_cpus": ("k8s", 4.0),
    "k8s_memory": ("k8s", None),
}


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",")]
    if not all(names):
        raise UserError(f"{value!r} has an empty item: give names, comma-separated")
    return names


@click.command()
@click.option("--images", help="Comma-separated images from the catalog, e.g. hf,hf-flash,vllm-awq.")
@click.option(
    "--scenarios", help="Comma-separated scenarios; each is tried on every image (default: each image's own)."
)
@click.option("--gpus", default="cpu", show_default=True, help="Comma-separated catalog GPUs, e.g. t4,a100-80gb,h100.")
@click.option(
    "--batch-sizes", type=BATCH_SIZES, default="1", show_default=True, help="Comma-separated: numbers, auto, dynamic."
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Run every cell this many times (run ids end in -r1..-rN); the report folds them into mean ± stdev.",
)
@cell_options
@click.option(
    "--target",
    type=click.Choice(["local", "docker", "sky", "k8s"]),
    default="local",
    show_default=True,
    help="local: this machine's Python; docker: Docker engines; sky: SkyPilot; k8s: Kubernetes Jobs.",
)
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Results tree; the matrix gets RESULTS/MATRIX-ID/RUN-ID/.",
)
@click.option(
    "--matrix-id",
    help="Name of the matrix folder (default: timestamp-matrix); repeat the same command with it to resume.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Plan and render (matrix.json, SkyPilot tasks, Kubernetes manifests); launch nothing.",
)
@click.option(
    "--collect",
    "collect_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Collect the results of a matrix launched with --no-wait (Kubernetes), then exit.",
)
@click.option(
    "--registry",
    envvar="SUMBENCH_REGISTRY",
    default="",
    show_envvar=True,
    help="Registry the images were pushed to (docker buildx bake --push), e.g. registry.example.com/you.",
)
@click.option(
    "--tag",
    envvar="SUMBENCH_TAG",
    default=__version__,
    show_default=True,
    show_envvar=True,
    help="Image tag that was pushed.",
)
@click.option(
    "--allow-local-images",
    is_flag=True,
    help="sky, k8s: use image names without a registry (sumbench/IMAGE:TAG) as they are, for a cluster whose "
    "nodes were given those images by hand; without it such a name is refused (Docker Hub would be asked).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1),
    help="local/docker: stop a cell's worker after this many seconds from its start (model load included).",
)
@click.option(
    "--price-per-hour",
    multiple=True,
    metavar="[GPU=]USD",
    help="USD per GPU-hour for $/1k docs, e.g. t4=0.2 (repeat); a bare USD prices every GPU without its own "
    "(default: the catalog's on-demand price; none for sky --spot or an --infra on another cloud).",
)
@click.option(
    "--docker-host",
    multiple=True,
    metavar="[GPU=]URL",
    help="docker: the engine for a GPU type, e.g. t4=ssh://me@t4-vm (repeat); a bare URL serves every GPU.",
)
@click.option("--bucket", help="sky: bucket for the run folders, e.g. s3://my-bucket/sumbench (mounted in each task).")
@click.option(
    "--bucket-mode",
    type=click.Choice(["MOUNT", "MOUNT_CACHED"]),
    help="sky: MOUNT copies a run folder when it ends; MOUNT_CACHED writes it there as it runs, so a restarted "
    "cell resumes (default: MOUNT_CACHED with --spot or --max-restarts, else MOUNT).",
)
@click.option("--spot", is_flag=True, help="sky: spot instances, as managed jobs that recover from preemption.")
@click.option(
    "--max-restarts",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="sky: restarts of a managed job whose worker died without a result (job_recovery).",
)
@click.option(
    "--infra", help="sky: where to look for GPUs, e.g. aws, gcp/us-central1, k8s (default: every enabled cloud)."
)
@click.option("--keep-clusters", is_flag=True, help="sky: leave clusters up after their cell (to rsync run folders).")
@click.option("--hf-token", is_flag=True, help="sky: hand the local HF_TOKEN to each task as a SkyPilot secret.")
@click.option(
    "--max-parallel",
    type=click.IntRange(0),
    default=4,
    show_default=True,
    help="sky: cells (each its own cluster or managed job) running at once; 0: every cell at once.",
)
@click.option("--namespace", default="default", show_default=True, help="k8s: namespace for the Jobs.")
@click.option(
    "--k8s-gpu-label",
    default="nvidia",
    show_default=True,
    help="k8s: node label that names the GPU: nvidia (nvidia.com/gpu.product), gke "
    "(cloud.google.com/gke-accelerator), or a label KEY valued with the GPU product.",
)
@click.option("--k8s-data-pvc", help="k8s: PVC holding the dataset at its file name (default: a ConfigMap, < 900 KiB).")
@click.option("--k8s-model-pvc", help="k8s: PVC holding a local --model folder at its folder name.")
@click.option("--k8s-results-pvc", help="k8s: PVC for the run folders (default: emptyDir; results come from pod logs).")
@click.option("--hf-token-secret", metavar="NAME[:KEY]", help="k8s: Secret holding HF_TOKEN (key default HF_TOKEN).")
@click.option(
    "--deadline",
    type=click.IntRange(1),
    default=6 * 3600,
    show_default=True,
    help="k8s: activeDeadlineSeconds of each Job.",
)
@click.option(
    "--backoff-limit",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="k8s: retries of a pod that died without a result.",
)
@click.option(
    "--ttl-after-finished",
    type=click.IntRange(0),
    default=7 * 24 * 3600,
    show_default=True,
    help="k8s: seconds a finished Job (and its pod logs) is kept.",
)
@click.option("--image-pull-secret", help="k8s: Secret for pulling from a private registry.")
@click.option(
    "--k8s-cpus",
    type=click.FloatRange(0, min_open=True),
    default=4.0,
    show_default=True,
    help="k8s: CPUs the worker container requests.",
)
@click.option(
    "--k8s-memory",
    type=BYTE_SIZE,
    help="k8s: memory the worker container requests, e.g. 32GiB (default: the model's 16-bit weights + 4 GiB; "
    "18 GiB when its shape is unknown here).",
)
@click.option("--no-wait", is_flag=True, help="k8s: submit and return; collect later with --collect.")
@click.option("-v", "--verbose", is_flag=True, help="Show every worker log line (local and docker).")
def matrix(**opts: Any) -> None:
    """Run a matrix of cells: every image x scenario x GPU x batch size.

    Incompatible cells (FlashAttention-2 on a T4, a scenario an image does not ship, ...) are dropped
    with their reason. RESULTS/MATRIX-ID/matrix.json lists every cell and its status; each cell's run
    folder is RESULTS/MATRIX-ID/RUN-ID/, so `runner report RESULTS/MATRIX-ID` reads the whole matrix.

    \b
    Examples:
      runner matrix --images cpu --scenarios fp32,bf16 --batch-sizes 1,2 --model .cache/tiny-llama
      runner matrix --target docker --images hf,hf-bnb --scenarios default,4-bit --gpus t4,a100-80gb \\
        --docker-host t4=ssh://me@t4-vm --docker-host a100-80gb=ssh://me@a100-vm --model M --data D
      runner matrix --target sky --registry registry.example.com/you --bucket s3://my-bucket/sumbench --spot ...
      runner matrix --target k8s --registry registry.example.com/you --k8s-results-pvc sumbench-results --dry-run ...
    """
    from runner.console import console
    from runner.matrix import MatrixInterrupted, collect, run, submit_steps

    def on_line(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    if opts["collect_dir"] is not None:
        manifest = collect(opts["collect_dir"], on_line)
        print_summary(manifest, opts["collect_dir"])
        sys.exit(exit_code(manifest))
    request = build_request(opts)
    try:
        manifest = run(request, on_line, dry_run=opts["dry_run"])
    except MatrixInterrupted as stopped:
        print_summary(stopped.manifest, stopped.matrix_dir)  # what ran, and the command that finishes it
        sys.exit(INTERRUPTED_EXIT_CODE)
    matrix_dir = request.results / manifest.matrix_id
    print_summary(manifest, matrix_dir, resume=not opts["dry_run"])
    if opts["dry_run"]:
        for line in submit_steps(manifest, matrix_dir, _real_run(click.get_current_context(), manifest.matrix_id)):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    sys.exit(0 if opts["dry_run"] else exit_code(manifest))


def _real_run(ctx: click.Context, matrix_id: str) -> str:
    """This command as typed, without --dry-run and with the matrix id: what runs the planned matrix.

    Rebuilt from the options the user set (on the command line or through their environment variable),
    so it holds nothing the user did not ask for, and the id makes the real run continue the manifest
    that the dry run wrote rather than plan a second matrix.
    """
    words = ["runner", "matrix"]
    for param in ctx.command.params:
        name = param.name or ""
        if not isinstance(param, click.Option) or name in ("dry_run", "matrix_id", "collect_dir"):
            continue
        if ctx.get_parameter_source(name) not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        flag, value = max(param.opts, key=len), ctx.params[name]
        if param.is_flag:
            words += [flag] if value else []
        else:
            words += [word for item in (value if param.multiple else [value]) for word in (flag, _word(item))]
    return shlex.join([*words, "--matrix-id", matrix_id])


def _word(value: Any) -> str:
    """An option's value as the user could have typed it."""
    if isinstance(value, list):  # --batch-sizes
        return ",".join(str(item) for item in value)
    return getattr(value, "text", None) or str(value)  # a ByteSize keeps the words typed


REMOTE_TARGETS = ("sky", "k8s")
"""Targets whose machines pull every image: they never saw the images this machine's engine built."""


def _check_remote_references(target: str, images: list[str], registry: str, tag: str, opts: dict[str, Any]) -> None:
    """Refuse, for a cluster, an image reference only a local engine can hold: a node would ask Docker Hub
    for ``sumbench/hf:TAG`` (not ours) after the GPUs are paid for. ``--allow-local-images`` says the nodes
    have them."""
    from runner.contract import catalog
    from runner.executors.docker.engine import bake_command, names_registry

    allowed = opts.get("allow_local_images", False)
    if allowed and target not in REMOTE_TARGETS:
        raise UserError(f"--allow-local-images applies to --target sky and k8s, not {target}")
    if target not in REMOTE_TARGETS or allowed:
        return
    for name in images:
        image = catalog.get_image(name)
        ref = image.reference(registry, tag)
        if not names_registry(ref, registry):
            raise UserError(
                f"--target {target} pulls {ref} on machines that never saw this one's images, and that name has "
                f"no registry (Docker Hub would be asked for it): push it "
                f"(`{bake_command(image, 'REG', tag, push=True)}`) and pass --registry REG, or "
                "--allow-local-images if the nodes hold it already"
            )


def build_request(opts: dict[str, Any]):
    from runner.launching import LaunchRequest
    from runner.matrix import MatrixRequest, parse_prices

    target = opts["target"]
    for name, (owner, default) in TARGET_OPTIONS.items():
        if owner != target and opts[name] != default:
            raise UserError(f"--{name.replace('_', '-')} applies to --target {owner}, not {target}")
    if not opts["images"] or not opts["model"]:
        raise UserError("runner matrix needs --images and --model (or --collect MATRIX-DIR)")
    _check_remote_references(target, _names(opts["images"]) or [], opts["registry"], opts["tag"], opts)
    base = LaunchRequest(
        model=opts["model"],
        data=opts["data"],
        limit=opts["limit"],
        max_new_tokens=opts["max_new_tokens"],
        max_input_tokens=opts["max_input_tokens"],
        max_skipped_fraction=opts["max_skipped_fraction"],
        synthetic_weights=opts["synthetic_weights"],
        text_field=opts["text_field"],
        summary_field=opts["summary_field"],
        id_field=opts["id_field"],
        prompt_template=opts["prompt_template"],
        base_model=opts["base_model"],
        max_batch_size=opts["max_batch_size"],
        gpu_memory_limit=opts["gpu_memory_limit"],
        kv_cache_memory=opts["kv_cache_memory"],
        gpu_memory_utilization=opts["gpu_memory_utilization"],
        vllm_enforce_eager=opts["vllm_enforce_eager"],
        warmup=opts["warmup"],
        timeout=opts["timeout"],
    )
    return MatrixRequest(
        images=_names(opts["images"]) or [],
        scenarios=_names(opts["scenarios"]),
        gpus=_names(opts["gpus"]) or [],
        batch_sizes=opts["batch_sizes"],
        base=base,
        target=target,
        results=opts["results"],
        matrix_id=opts["matrix_id"],
        registry=opts["registry"],
        tag=opts["tag"],
        options=_target_options(opts),
        prices=parse_prices(opts["price_per_hour"]),
        repeats=opts["repeats"],
    )


def _target_options(opts: dict[str, Any]) -> Any:
    target = opts["target"]
    if target in ("local", "docker"):
        from runner.targets.docker import DockerOptions, parse_hosts

        return DockerOptions(hosts=parse_hosts(opts["docker_host"]), verbose=opts["verbose"])
    if target == "sky":
        from runner.targets.sky import SkyOptions

        return SkyOptions(
            bucket=opts["bucket"],
            bucket_mode=opts["bucket_mode"],
            spot=opts["spot"],
            max_restarts=opts["max_restarts"],
            infra=opts["infra"],
            keep_clusters=opts["keep_clusters"],
            hf_token=opts["hf_token"],
            max_parallel=opts["max_parallel"],
        )
    from runner.targets.k8s import K8sOptions

    return K8sOptions(
        namespace=opts["namespace"],
        gpu_label=opts["k8s_gpu_label"],
        data_pvc=opts["k8s_data_pvc"],
        model_pvc=opts["k8s_model_pvc"],
        results_pvc=opts["k8s_results_pvc"],
        hf_token_secret=opts["hf_token_secret"],
        deadline_seconds=opts["deadline"],
        backoff_limit=opts["backoff_limit"],
        ttl_seconds=opts["ttl_after_finished"],
        image_pull_secret=opts["image_pull_secret"],
        wait=not opts["no_wait"],
        cpus=opts["k8s_cpus"],
        memory_bytes=opts["k8s_memory"],
    )


def exit_code(manifest) -> int:
    """0 when every cell that was to run completed; 1 otherwise. Dropped cells are not failures."""
    kept = [c for c in manifest.cells if c.status != "dropped"]
    return 0 if all(c.status == "done" and c.result_status == "completed" for c in kept) else 1


def print_summary(manifest, matrix_dir: Path, resume: bool = True, again: str | None = None) -> None:
    """The cells as they stand, and where to go next; ``resume``: say how to continue the matrix (a dry
    run prints how to run it instead), with ``again`` when the same command continues it as it is."""
    from rich.table import Table

    from runner.console import console

    table = Table(title=f"matrix {manifest.matrix_id} ({manifest.target})", title_justify="left")
    for column in ("cell", "status", "result / reason", "docs/s"):
        table.add_column(column, overflow="fold", justify="right" if column == "docs/s" else "left")
    for cell in manifest.cells:
        detail = cell.result_status if cell.status == "done" else (cell.reason or cell.where or "")
        table.add_row(cell.run_id, cell.status, detail or "", _docs_per_second(matrix_dir / cell.run_id))
    console.print(table)
    console.print(f"matrix folder: {matrix_dir}  (matrix.json lists every cell)", markup=False, highlight=False)
    if any(cell.status == "done" for cell in manifest.cells):
        console.print(f"tables, failures and plots: runner report {matrix_dir}", markup=False, highlight=False)
    if resume:
        console.print(
            f"to resume or finish it: {again or f'the same command with --matrix-id {manifest.matrix_id}'}",
            markup=False,
            highlight=False,
        )


def _docs_per_second(run_dir: Path) -> str:
    """A finished cell's docs/s where its folder is here (a bucket or volume target's may not be)."""
    from runner.contract import rundir

    try:
        value = rundir.read_result(run_dir).metrics.docs_per_second
    except Exception:  # no folder here, no result yet, or not readable: nothing to show, not an error
        return "-"
    return "-" if value is None else f"{value:.3f}"
