"""All of the doctor's checks, in order, as one ``Diagnosis``: the data behind the tables and ``--json``."""

from __future__ import annotations

from dataclasses import dataclass

from runner import __version__
from runner.contract import catalog
from runner.doctor.engine import EngineSurvey, survey_engine
from runner.doctor.gpus import GpuSurvey, survey_gpus
from runner.doctor.hf import HubSurvey, survey_hub
from runner.doctor.revision import checkout_revision
from runner.doctor.stack import PythonStack, survey_stack
from runner.doctor.verdict import ImageVerdict, judge


@dataclass(frozen=True)
class Diagnosis:
    sumbench: str
    revision: str | None
    """This checkout's commit, which images are compared with; None outside a git checkout."""
    gpus: GpuSurvey
    process: PythonStack
    docker: EngineSurvey
    hub: HubSurvey
    images: list[ImageVerdict]
    gpu_images_run: bool
    """Whether any GPU image can run here, with either executor: false is the state to notice."""
    summary: str


def diagnose(docker_host: str | None) -> Diagnosis:
    revision = checkout_revision()
    gpus = survey_gpus()
    stack = survey_stack()
    engine = survey_engine(docker_host, gpus, revision)
    hub = survey_hub()
    verdicts = [judge(image, gpus, stack, engine) for image in catalog.images().values()]
    gpu_images_run = any(v.runs for v in verdicts if v.device != "cpu")
    return Diagnosis(
        sumbench=__version__,
        revision=revision,
        gpus=gpus,
        process=stack,
        docker=engine,
        hub=hub,
        images=verdicts,
        gpu_images_run=gpu_images_run,
        summary=summarize(verdicts),
    )


def summarize(verdicts: list[ImageVerdict]) -> str:
    """One line: the GPU images that run here, or, when none does, why (the reason they share, if one)."""
    gpu = [v for v in verdicts if v.device != "cpu"]
    running = [v for v in gpu if v.runs]
    if running:
        return "GPU images that run here: " + "; ".join(
            f"{v.image} ({', '.join(v.where)} on {', '.join(v.gpus)})" for v in running
        )
    reasons = list(dict.fromkeys(v.missing for v in gpu if v.missing))
    line = "No GPU image can run here" + (f": {reasons[0]}" if len(reasons) == 1 else " (see each image's reason)")
    cpu = [v for v in verdicts if v.device == "cpu" and v.runs]
    if cpu:
        line += f". CPU runs only: --image {cpu[0].image} ({', '.join(cpu[0].where)})"
    return line + "."
