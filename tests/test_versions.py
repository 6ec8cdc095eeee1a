"""Host and worker of different versions: a newer config is refused by an older worker with what to rebuild,
a newer result is read by an older sumbench (additive fields dropped) or refused with what to upgrade."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import read_result

from runner.contract import rundir, versions
from runner.contract.errors import UserError
from runner.contract.schema import RunConfig, RunResult


def test_the_current_versions_are_written_and_the_history_names_them(make_run_dir, run_worker):
    run_dir = make_run_dir(limit=2)
    assert json.loads((run_dir / "config.json").read_text())["protocol"] == versions.PROTOCOL
    assert run_worker(run_dir) == 0
    result = read_result(run_dir)
    assert (result["schema_version"], result["schema_minor"]) == (versions.SCHEMA_VERSION, versions.SCHEMA_MINOR)
    newest = versions.HISTORY[-1][0]
    assert newest == f"schema {versions.SCHEMA_VERSION}.{versions.SCHEMA_MINOR}, protocol {versions.PROTOCOL}"


def test_a_worker_refuses_a_config_from_a_newer_host(make_run_dir):
    run_dir = make_run_dir(limit=2)
    data = json.loads((run_dir / "config.json").read_text())
    data["protocol"] = versions.PROTOCOL + 1
    data["an_option_from_the_future"] = True
    (run_dir / "config.json").write_text(json.dumps(data))
    proc = subprocess.run([sys.executable, "-m", "runner.worker", str(run_dir)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "written by a newer sumbench host" in lines[0]
    assert "rebuild image 'cpu'" in lines[0] and "docker buildx bake cpu" in lines[0]
    assert not (run_dir / "result.json").exists()  # nothing in the folder touched
    with pytest.raises(UserError, match="upgrade sumbench to resume or read it"):
        rundir.read_config(run_dir)  # the host, not a worker


def test_a_config_without_a_protocol_is_protocol_1(make_run_dir):
    run_dir = make_run_dir(limit=2)
    data = json.loads((run_dir / "config.json").read_text())
    del data["protocol"], data["warmup"]
    (run_dir / "config.json").write_text(json.dumps(data))
    assert versions.config_protocol(data) == 1
    assert rundir.read_config(run_dir, worker=True).warmup == "full"


@pytest.fixture
def finished(make_run_dir, run_worker):
    run_dir = make_run_dir(limit=2)
    assert run_worker(run_dir) == 0
    return run_dir


def _rewrite(run_dir, edit) -> None:
    data = json.loads((run_dir / "result.json").read_text())
    edit(data)
    (run_dir / "result.json").write_text(json.dumps(data))


def test_a_result_with_a_newer_minor_is_read_without_the_fields_it_adds(finished):
    def newer_minor(data: dict) -> None:
        data["schema_minor"] = versions.SCHEMA_MINOR + 1
        data["a_field_from_the_future"] = {"x": 1}
        data["metrics"]["a_metric_from_the_future"] = 3.0

    _rewrite(finished, newer_minor)
    result = rundir.read_result(finished)
    assert isinstance(result, RunResult) and result.metrics.documents == 2
    assert "a_field_from_the_future" not in result.model_dump()


def test_unknown_fields_in_a_result_of_this_version_are_still_an_error(finished):
    _rewrite(finished, lambda data: data.update(a_typo=1))
    with pytest.raises(UserError, match=r"not a valid sumbench result .*a_typo"):
        rundir.read_result(finished)


def test_a_result_with_a_newer_major_is_refused_with_what_to_upgrade(finished):
    _rewrite(finished, lambda data: data.update(schema_version=versions.SCHEMA_VERSION + 1, schema_minor=0))
    with pytest.raises(UserError) as err:
        rundir.read_result(finished)
    assert str(err.value) == (
        f"{finished / 'result.json'} was written by a newer sumbench (result schema {versions.SCHEMA_VERSION + 1}.0; "
        f"this one reads {versions.SCHEMA_VERSION}.x): upgrade sumbench to read it"
    )


def test_config_protocol_defaults():
    assert RunConfig(run_id="x", model="m", data="d").protocol == versions.PROTOCOL
    assert versions.config_protocol({"protocol": "2"}) == 1 and versions.config_protocol([]) == 1
