"""Study files (runner/study.py, runner study): validated, planned with the rules' reasons, overridden from
the command line, run end to end on the CPU, recorded with the matrix, resumed and reported."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import one_line

from runner.matrix import expand
from runner.paths import REPO_ROOT

STUDIES = REPO_ROOT / "studies"


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_key_is_refused_by_name(tmp_path, capsys):
    path = write(tmp_path, 'model = "m"\nimages = ["cpu"]\nbatch_size = [1]\n')
    line = one_line(capsys, ["study", "plan", str(path)])
    assert "unknown key 'batch_size'" in line and "did you mean 'batch_sizes'" in line and str(path) in line


def test_wrong_type_is_refused_by_key(tmp_path, capsys):
    path = write(tmp_path, 'model = "m"\nimages = ["cpu"]\nlimit = "many"\n')
    line = one_line(capsys, ["study", "plan", str(path)])
    assert "key 'limit'" in line


def test_bad_value_gets_the_matrix_options_own_error(tmp_path, capsys):
    path = write(tmp_path, 'model = "m"\nimages = ["cpu"]\ngpus = ["t5"]\n')
    assert "t5" in one_line(capsys, ["study", "plan", str(path)])


def test_scenarios_beside_an_image_table_are_refused(tmp_path, capsys):
    path = write(tmp_path, 'model = "m"\nscenarios = ["fp32"]\n[images]\ncpu = ["fp32"]\n')
    assert "scenarios has no place beside it" in one_line(capsys, ["study", "plan", str(path)])


def test_original_study_plan_shows_dropped_cells_with_reasons(cli):
    proc = cli(["study", "plan", str(STUDIES / "original.toml")])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "210 cells: 140 to run, 70 dropped (target sky, matrix id original" in out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    flash_t4 = next(r for r in rows if r.startswith("| hf-flash | flash-attn | t4 |"))
    assert "| 1-10 | 10 | dropped | FlashAttention-2 needs an Ampere GPU" in flash_t4
    assert any(r.startswith("| hf-legacy | 8-bit | v100-16gb |") and "bitsandbytes 8-bit" in r for r in rows)
    assert any(r.startswith("| hf-legacy | default | v100-16gb | 1-10 | 10 | planned |") for r in rows)
    # vllm-awq runs the AWQ copy named in [scenario_models], so only the GPU rules drop its cells.
    assert "| vllm-awq | vllm-awq | t4 | 1-10 | 10 | planned |  |" in out
    # The image table runs only its pairs: no default cell on the flash image, no 4-bit on vLLM.
    assert not any(r.startswith(("| hf-flash | default", "| vllm | 4-bit")) for r in rows)


def test_command_line_overrides_the_file(cli):
    proc = cli(["study", "plan", str(STUDIES / "original.toml"), "--gpus", "a100-80gb", "--batch-sizes", "8"])
    assert proc.returncode == 0, proc.stderr
    assert "7 cells: 7 to run, 0 dropped" in proc.stdout
    assert "| hf-flash | flash-attn | a100-80gb | 8 | 1 | planned |" in proc.stdout


def test_every_shipped_study_parses():
    from runner import study

    for path in sorted(STUDIES.glob("*.toml")):
        loaded = study.load(path)
        assert loaded.values["model"] and loaded.name == path.stem, path


def test_image_table_and_repeats_expand_to_exactly_those_cells():
    cells = expand([], None, ["cpu"], [1, 2], pairs={"cpu": ["fp32", "bf16"]}, repeats=2)
    assert [c.run_id for c in cells][:4] == [
        "cpu-cpu-fp32-bs1-r1",
        "cpu-cpu-fp32-bs1-r2",
        "cpu-cpu-fp32-bs2-r1",
        "cpu-cpu-fp32-bs2-r2",
    ]
    assert len(cells) == 8 and {c.repeat for c in cells} == {1, 2} and {c.scenario for c in cells} == {"fp32", "bf16"}


@pytest.mark.slow
def test_cpu_demo_study_runs_end_to_end_resumes_and_reports(cli, tmp_path, tiny_model):
    # The demo names ../.cache/tiny-llama beside the file; a copy of the file next to the test's model
    # keeps the test independent of a built cache.
    (tmp_path / ".cache").mkdir()
    shutil.copytree(tiny_model, tmp_path / ".cache" / "tiny-llama")
    (tmp_path / "data").mkdir()
    shutil.copy(REPO_ROOT / "data" / "howto-sample.jsonl", tmp_path / "data")
    (tmp_path / "studies").mkdir()
    study = tmp_path / "studies" / "cpu-demo.toml"
    shutil.copy(STUDIES / "cpu-demo.toml", study)
    results = tmp_path / "results"

    first = cli(["study", "run", str(study), "--results", str(results)], timeout=900)
    assert first.returncode == 0, first.stdout + first.stderr
    matrix_dir = results / "cpu-demo"
    manifest = json.loads((matrix_dir / "matrix.json").read_text())
    text = study.read_text()
    assert manifest["request"]["study_file"] == "cpu-demo.toml"
    assert manifest["request"]["study_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert (matrix_dir / "study.toml").read_text() == text
    done = [c for c in manifest["cells"] if c["status"] == "done" and c["result_status"] == "completed"]
    assert len(done) == len(manifest["cells"]) == 4
    assert "to resume or finish it: the same command (runner study run" in " ".join(first.stderr.split())

    again = cli(["study", "run", str(study), "--results", str(results)], timeout=300)
    assert again.returncode == 0 and "started" not in again.stderr, again.stderr  # resumed: nothing to run

    report = cli(["report", str(matrix_dir)], timeout=300)
    assert report.returncode == 0 and "fp32" in report.stdout and "bf16" in report.stdout, report.stderr

    study.write_text(text.replace("limit = 8", "limit = 6"))
    changed = cli(["study", "run", str(study), "--results", str(results)])
    assert changed.returncode == 2 and "already holds a matrix with other settings" in changed.stderr


def test_a_scenario_model_replaces_the_model_of_that_scenarios_cells(tmp_path, tiny_model):
    from runner.launching import LaunchRequest
    from runner.matrix import MatrixRequest, plan

    other = tmp_path / "other-tiny"
    shutil.copytree(tiny_model, other)
    request = MatrixRequest(
        images=["cpu"],
        scenarios=["fp32", "bf16"],
        gpus=["cpu"],
        batch_sizes=[2],
        base=LaunchRequest(model=str(tiny_model), data=str(REPO_ROOT / "data" / "howto-sample.jsonl")),
        results=tmp_path / "results",
        matrix_id="m",
        scenario_models={"bf16": {"model": str(other), "base_model": "tiny-llama"}},
    )
    cells = {cell.entry.scenario: cell.config for cell in plan(request, dry_run=True).cells}
    assert cells["fp32"].model == str(tiny_model) and cells["fp32"].base_model is None
    assert cells["bf16"].model == str(other) and cells["bf16"].base_model == "tiny-llama"
    recorded = json.loads((tmp_path / "results" / "m" / "matrix.json").read_text())["request"]
    assert recorded["scenario_models"] == {"bf16": {"model": str(other), "base_model": "tiny-llama"}}


def test_a_misspelt_scenario_model_is_refused(tmp_path, capsys):
    path = write(tmp_path, 'model = "m"\nimages = ["cpu"]\n[scenario_models]\nvllm-aqw = { model = "x" }\n')
    assert "vllm-aqw" in one_line(capsys, ["study", "plan", str(path)])
