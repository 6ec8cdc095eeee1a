"""What a first use ran into: run files others cannot read, a revision that hides edited code, model and
GPU names answered with the wrong fix, --help without examples, a bar from a library, a list with a hole,
and a results folder left behind by a launch that never started.

Each case goes through the real entry point (``runner.cli.main`` or a subprocess), real files and a real
git repository.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import closed_port_endpoint, one_line, run_cli

from runner.cli import main
from runner.contract import rundir
from runner.model_names import check_model, is_hub_id
from runner.paths import REPO_ROOT
from runner.worker.environment import git_revision

# --- 1. result.json and config.json can be read by whoever can read docs.jsonl ----------------------------


@pytest.fixture
def umask():
    """Set the process umask for the test, and put the old one back."""
    old = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_json_files_get_the_mode_a_plain_write_gives(tmp_path, umask, mask):
    umask(mask)
    rundir.write_json_atomic(tmp_path / "result.json", {"status": "completed"})
    (tmp_path / "docs.jsonl").write_text("{}\n")  # as open() makes it
    assert mode(tmp_path / "result.json") == mode(tmp_path / "docs.jsonl") == 0o666 & ~mask
    assert json.loads((tmp_path / "result.json").read_text()) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_umask_without_proc_is_read_by_a_round_trip(tmp_path, umask, monkeypatch):
    """Where /proc says nothing (macOS, a restricted container), the umask is still honoured."""
    umask(0o007)
    monkeypatch.setattr(rundir, "_PROC_STATUS", tmp_path / "no-such-status")
    rundir.write_json_atomic(tmp_path / "config.json", "{}")
    assert mode(tmp_path / "config.json") == 0o660
    assert os.umask(0o007) == 0o007, "the round trip put the umask back"


# --- 2. a run of edited code records that it was edited ----------------------------------------------------


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """A real git repository with one commit: a tracked module and a .gitignore for results/, as sumbench's."""
    monkeypatch.delenv("SUMBENCH_REVISION", raising=False)
    repo = tmp_path / "checkout"
    (repo / "runner").mkdir(parents=True)
    (repo / "runner" / "run.py").write_text("print('v1')\n")
    (repo / ".gitignore").write_text("/results/*\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    return repo


def test_revision_of_a_clean_checkout_is_the_commit(checkout):
    sha = git(checkout, "rev-parse", "HEAD")
    assert git_revision(checkout / "runner") == sha
    # Results, datasets and notes are not code that ran: they leave the checkout clean.
    (checkout / "results" / "run-1").mkdir(parents=True)
    (checkout / "results" / "run-1" / "result.json").write_text("{}")
    (checkout / "notes.txt").write_text("untracked\n")
    assert git_revision(checkout / "runner") == sha


def test_revision_of_edited_code_is_marked_dirty(checkout):
    sha = git(checkout, "rev-parse", "HEAD")
    (checkout / "runner" / "run.py").write_text("print('v2')\n")
    assert git_revision(checkout / "runner") == f"{sha}-dirty"
    git(checkout, "add", "runner/run.py")  # staged, not committed: still not the commit
    assert git_revision(checkout / "runner") == f"{sha}-dirty"


def test_revision_set_by_the_image_build_wins(checkout, monkeypatch):
    monkeypatch.setenv("SUMBENCH_REVISION", "abc123")
    assert git_revision(checkout / "runner") == "abc123"


@pytest.mark.parametrize("unset", ["unknown", ""])
def test_an_image_built_without_revision_records_none(checkout, tmp_path, monkeypatch, unset):
    """Images set SUMBENCH_REVISION from REVISION, whose bake default is "unknown": not a revision."""
    monkeypatch.setenv("SUMBENCH_REVISION", unset)
    outside = tmp_path / "installed" / "runner"  # as in an image: the package is in no checkout
    outside.mkdir(parents=True)
    assert git_revision(outside) is None
    assert git_revision(checkout / "runner") == git(checkout, "rev-parse", "HEAD")


# --- 3. --model: the fix that fits what was typed -----------------------------------------------------------


def launch_error(capsys, model: str, results: Path, *extra: str) -> str:
    line = one_line(capsys, ["launch", "--model", model, "--results", str(results), *extra])
    assert not results.exists(), "a refused launch makes no folder"
    return line


def test_missing_absolute_model_path_says_the_folder_does_not_exist(capsys, tmp_path):
    model = str(tmp_path / "models" / "llama-2-7b-chat-awq")
    line = launch_error(capsys, model, tmp_path / "results")
    assert f"model folder {model} does not exist" in line
    assert "neither a folder nor a hub id" not in line and "runner model tiny DIR" in line


def test_missing_folder_at_the_root_names_no_parent(capsys, tmp_path):
    line = launch_error(capsys, "/nonexistent-sumbench", tmp_path / "results")
    assert line == (
        "error: model folder /nonexistent-sumbench does not exist: correct the path, or build a model there "
        "with `runner model tiny DIR`"
    )


def test_mistyped_model_path_suggests_the_folder_that_exists(capsys, tmp_path, monkeypatch):
    (tmp_path / "models" / "tiny-llama").mkdir(parents=True)
    (tmp_path / "models" / "tiny-llama" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    line = launch_error(capsys, "./models/tiny-lama", tmp_path / "results")
    assert "model folder ./models/tiny-lama does not exist (though models/ does; did you mean models/tiny-llama?)" in (
        line
    )


@pytest.mark.parametrize("model", ["gpt2", "t5-small"])
def test_hub_ids_without_an_org_are_hub_ids(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no local folder of that name
    assert is_hub_id(model)
    check_model(model, synthetic=False)


def test_a_bare_hub_id_meets_the_hub_check(capsys, tmp_path, monkeypatch):
    """`--model gpt2` is a download, refused here only because the hub cannot be reached."""
    from huggingface_hub import constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    line = launch_error(capsys, "gpt2", tmp_path / "results")
    assert "gpt2 is not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in line


def test_a_name_that_is_no_hub_id_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = launch_error(capsys, "my model", tmp_path / "results")
    assert "model 'my model' is neither a folder nor a hub id (name or org/name" in line


@pytest.mark.parametrize("scenario", [[], ["--scenario", "fp32"], ["--scenario", "bf16"]])
def test_a_built_in_name_is_answered_before_the_memory_check(capsys, tmp_path, monkeypatch, scenario):
    """llama-2-13b does not fit most machines' memory on a CPU; the answer is still that it has no weights."""
    monkeypatch.chdir(tmp_path)
    line = launch_error(capsys, "llama-2-13b", tmp_path / "results", *scenario)
    assert line.startswith("error: llama-2-13b is a built-in architecture, not a checkpoint: add --synthetic-weights")
    assert "--force" not in line


# --- 4. GPU names: case and prefixes --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["launch", "matrix"])
@pytest.mark.parametrize("typed", ["A100", "a100"])
def test_gpu_suggestions_start_with_the_cards_the_name_begins(capsys, tmp_path, command, typed):
    gpu = ["--gpu", typed] if command == "launch" else ["--images", "cpu", "--gpus", typed]
    line = one_line(
        capsys,
        [command, *gpu, "--model", "llama-2-7b", "--synthetic-weights", "--results", str(tmp_path / "r")],
    )
    assert f"unknown GPU '{typed}': did you mean a100-40gb, a100-80gb" in line


def test_a_name_in_other_letters_suggests_only_itself(capsys, tmp_path):
    args = ["launch", "--image", "HF-FLASH", "--model", "llama-2-7b", "--synthetic-weights"]
    line = one_line(capsys, [*args, "--results", str(tmp_path / "r")])
    assert "unknown image 'HF-FLASH': did you mean hf-flash? valid:" in line


# --- 5. --help: examples, every option explained, what a dataset name means ----------------------------------


def help_text(capsys, args: list[str]) -> str:
    """``runner ARGS --help``, its whitespace collapsed, so that wrapped phrases read whole."""
    try:
        main([*args, "--help"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("command", "example"),
    [
        (["plan"], "runner plan --model llama-2-7b --gpu t4"),
        (["data", "fetch"], "runner data fetch wikilingua --n 100 --source test-00000-of-00001.parquet"),
        (["data", "inspect"], "runner data inspect data/howto-sample.jsonl"),
        (["model", "tiny"], "runner model tiny .cache/tiny-llama"),
        (["schema"], "runner schema --out /tmp/result.schema.json"),
    ],
)
def test_help_shows_examples(capsys, command, example):
    text = help_text(capsys, command)
    assert "Examples:" in text and example in text


@pytest.mark.parametrize(
    ("command", "example"),
    [
        (["plan"], "runner plan --model llama-2-7b --gpu t4"),
        (["data", "inspect"], "runner data inspect data/howto-sample.jsonl"),
    ],
)
def test_help_examples_run_as_written(capsys, monkeypatch, command, example):
    """The examples that need nothing downloaded, built or written work as typed, from the repository."""
    assert example in help_text(capsys, command)
    monkeypatch.chdir(REPO_ROOT)
    try:
        main(example.split()[1:])
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr()


@pytest.mark.parametrize("option", ["--vocab-size", "--seed"])
def test_model_tiny_options_have_help(option):
    from runner.cli.model import tiny

    param = next(p for p in tiny.params if option in p.opts)
    assert param.help, f"runner model tiny {option} has no help"


def test_data_fetch_help_says_what_each_name_reads(capsys):
    text = help_text(capsys, ["data", "fetch"])
    assert "wikilingua GEM/wiki_lingua (config en): text source, summary target, id gem_id" in text
    assert "A --source file is one split of that dataset with those columns" in text


def test_offline_fetch_names_the_config_to_download(capsys, tmp_path, monkeypatch):
    import datasets
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", closed_port_endpoint())
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    line = one_line(capsys, ["data", "fetch", "wikilingua", "--out", str(tmp_path / "data")])
    assert "download the test split of GEM/wiki_lingua, config en (a parquet file)" in line
    assert "--source FILE" in line


def test_data_fetch_prints_one_line_and_no_library_bar(tmp_path):
    n = 12
    source = tmp_path / "test.parquet"
    pq.write_table(
        pa.table(
            {
                "gem_id": [f"g-{i}" for i in range(n)],
                "source": [f"Step {i}. Do it." for i in range(n)],
                "target": [f"Do {i}." for i in range(n)],
            }
        ),
        source,
    )
    out = tmp_path / "data"
    env = {"HF_DATASETS_CACHE": str(tmp_path / "cache")}  # a fresh cache: the library builds the split here
    proc = run_cli(["data", "fetch", "wikilingua", "--n", "5", "--source", str(source), "--out", str(out)], env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {out}/wikilingua-test-n5-s0.jsonl and wikilingua-test-n5-s0.manifest.json\n"
    assert "Generating" not in proc.stderr and "examples/s" not in proc.stderr, proc.stderr


# --- 6. a list with a hole; a refused launch leaves nothing ---------------------------------------------------


@pytest.mark.parametrize("sizes", ["1,,2", "1,2,", ",1"])
def test_batch_sizes_with_an_empty_item_are_refused(capsys, tmp_path, sizes):
    line = one_line(
        capsys,
        # A model that is refused later: were the list taken, nothing would run
        ["matrix", "--images", "cpu", "--model", str(tmp_path / "no-model"), "--batch-sizes", sizes,
         "--results", str(tmp_path / "m")],
    )  # fmt: skip
    assert line == (
        f"error: --batch-sizes: {sizes!r} has an empty item: give numbers, auto or dynamic, comma-separated "
        "(e.g. 1,2,auto) (see runner matrix --help)"
    )


@pytest.mark.parametrize(("option", "names"), [("--images", "cpu,,cpu"), ("--gpus", "cpu,"), ("--scenarios", ",fp32")])
def test_matrix_name_lists_with_an_empty_item_are_refused(capsys, tmp_path, option, names):
    args = ["matrix", "--images", "cpu", "--model", str(tmp_path / "no-model"), "--results", str(tmp_path / "m")]
    line = one_line(capsys, [*args, option, names])
    assert line == f"error: {names!r} has an empty item: give names, comma-separated"
    assert not (tmp_path / "m").exists()


def test_launch_refused_by_its_executor_creates_no_results_folder(capsys, tmp_path, monkeypatch):
    """A Docker engine that does not answer refuses the launch before anything runs: no --results folder
    (not even an empty one) is left to wonder about."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    results = tmp_path / "results"
    line = launch_error(capsys, str(model), results, "--executor", "docker")
    assert "start Docker, or point DOCKER_HOST or --docker-host at a running engine" in line
