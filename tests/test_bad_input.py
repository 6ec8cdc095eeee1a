"""Bad input is answered with one line: ``error: ...`` on stderr naming the input and the fix, exit code 2,
no traceback, and nothing that was already in the results folder touched.

The matrix calls the real entry point (``runner.cli.main``, what the ``runner`` script runs) in the test
process, which is quick; a few cases also go through ``python -m runner`` in a subprocess, to show the
whole program prints just that one line.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest
from conftest import one_line, run_cli, short_records, write_jsonl

from runner.cli import main
from runner.contract.datasets import load_dataset
from runner.paths import SAMPLE_DATASET


def dataset(tmp_path: Path, lines: list[str | dict] | bytes) -> Path:
    path = tmp_path / "bad.jsonl"
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines))
    return path


GOOD = {"id": "a", "document": "Some text.", "summary": "A summary."}

# (case id, lines of the dataset, what the one error line must contain)
DATASETS = [
    ("malformed-json", [GOOD, {**GOOD, "id": "b"}, '{"id": "c", "document": "x",'], [":3: malformed JSON"]),
    ("missing-text", [GOOD, {"id": "b", "summary": "s"}], [":2: missing or non-string 'document'"]),
    ("non-string-text", [GOOD, {"id": "b", "document": 7, "summary": "s"}], [":2: missing or non-string"]),
    ("empty-text", [GOOD, {"id": "b", "document": "   ", "summary": "s"}], [":2: empty 'document'"]),
    ("missing-summary", [GOOD, {"id": "b", "document": "x"}], [":2: missing 'summary'"]),
    ("empty-summary", [GOOD, {"id": "b", "document": "x", "summary": ""}], [":2: empty 'summary'"]),
    ("summary-not-text", [GOOD, {"id": "b", "document": "x", "summary": {"a": 1}}], ["must be a string or a list"]),
    ("no-summary-field", [{"id": "a", "document": "x"}], ["no reference summary field", "--summary-field"]),
    ("no-text-field", [{"id": "a", "body": "x", "summary": "s"}], ["no text field found among", "--text-field"]),
    ("duplicate-id", [GOOD, {**GOOD, "id": "b"}, GOOD], [":3: duplicate id 'a' (first on line 1)"]),
    ("null-id", [GOOD, {**GOOD, "id": None}], [":2: missing or empty 'id'"]),
    ("object-id", [GOOD, {**GOOD, "id": {"x": 1}}], [":2: 'id' must be a string or an integer"]),
    ("array-line", [GOOD, "[1, 2]"], [":2: expected a JSON object per line, got an array"]),
    ("string-line", [GOOD, '"just text"'], [":2: expected a JSON object per line, got a string"]),
    ("lone-surrogate", [GOOD, '{"id": "b", "document": "x\\ud800", "summary": "s"}'], [":2:", "surrogate"]),
    ("deep-nesting", [GOOD, "[" * 100_000], [":2: malformed JSON"]),
    ("empty-file", [], ["no records (empty file)"]),
    ("blank-lines-only", ["", "  "], ["no records (empty file)"]),
]


@pytest.fixture
def earlier_run(tmp_path) -> Path:
    """A results folder that already holds a run: a refused launch must leave it exactly as it was."""
    results = tmp_path / "results"
    run = results / "earlier"
    run.mkdir(parents=True)
    (run / "docs.jsonl").write_text('{"id": "x"}\n')
    (run / "result.json").write_text("{}\n")
    return results


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def launch(model: Path, results: Path, *options: str) -> list[str]:
    return ["launch", "--model", str(model), "--results", str(results), "--max-new-tokens", "8", *options]


@pytest.mark.parametrize(("lines", "expected"), [case[1:] for case in DATASETS], ids=[case[0] for case in DATASETS])
def test_bad_dataset_is_one_line_naming_file_and_line(tiny_model, tmp_path, earlier_run, capsys, lines, expected):
    path = dataset(tmp_path, lines)
    before = snapshot(earlier_run)

    line = one_line(capsys, launch(tiny_model, earlier_run, "--data", str(path)))

    assert str(path) in line
    for part in expected:
        assert part in line
    assert snapshot(earlier_run) == before, "nothing written, nothing lost"
    # `runner data inspect` reads the file the same way and says the same thing.
    assert one_line(capsys, ["data", "inspect", str(path)]) == line


def test_non_utf8_dataset(tiny_model, tmp_path, earlier_run, capsys):
    path = dataset(tmp_path, json.dumps(GOOD).encode() + b'\n{"id": "b", "document": "caf\xe9", "summary": "s"}\n')
    line = one_line(capsys, launch(tiny_model, earlier_run, "--data", str(path)))
    assert f"{path}:2: not UTF-8" in line and "re-encode the file as UTF-8" in line


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    """Some editors start a UTF-8 file with a byte-order mark; that is not an error."""
    path = dataset(tmp_path, b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    assert load_dataset(path).documents[0].id == "a"


def test_missing_dataset_and_unknown_field(tiny_model, tmp_path, earlier_run, capsys):
    line = one_line(capsys, launch(tiny_model, earlier_run, "--data", str(tmp_path / "nope.jsonl")))
    assert f"dataset not found: {tmp_path / 'nope.jsonl'}" in line
    assert "give a JSONL file, or fetch one with `runner data fetch NAME`" in line, "the fix, not only the problem"
    good = write_jsonl(tmp_path / "good.jsonl", short_records(2))
    line = one_line(capsys, launch(tiny_model, earlier_run, "--data", str(good), "--text-field", "body"))
    assert "text field 'body' not in the first record (fields: document, id, summary)" in line


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--image", "hf-flsh", ["unknown image 'hf-flsh'", "did you mean hf-flash"]),
        ("--gpu", "a100", ["unknown GPU 'a100'", "did you mean", "a100-40gb", "a100-80gb"]),
        ("--scenario", "4bit", ["unknown scenario '4bit'", "did you mean 4-bit"]),
    ],
)
def test_unknown_names_suggest_the_closest(tiny_model, earlier_run, capsys, option, value, expected):
    line = one_line(capsys, launch(tiny_model, earlier_run, option, value))
    for part in expected:
        assert part in line


def test_incompatible_cell_without_force(tiny_model, earlier_run, capsys):
    line = one_line(capsys, launch(tiny_model, earlier_run, "--scenario", "flash-attn"))
    assert "cpu/flash-attn cannot run on cpu" in line and "needs a CUDA GPU" in line and "--force" in line


@pytest.mark.parametrize("model", ["/nonexistent/tiny-llama", "./models/missing"])
def test_missing_model_path(earlier_run, capsys, model):
    before = snapshot(earlier_run)
    line = one_line(capsys, ["launch", "--model", model, "--results", str(earlier_run)])
    assert f"model folder {model} does not exist:" in line and "runner model tiny" in line
    assert snapshot(earlier_run) == before


def test_mistyped_model_path_is_not_taken_for_a_hub_id(tmp_path, earlier_run, capsys, monkeypatch):
    """`models/tiny-lama` looks like a hub id (org/name); next to a local models/ folder it is a typo,
    and treating it as a hub id would fail only after the worker's download retries."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    line = one_line(capsys, ["launch", "--model", "models/tiny-lama", "--results", str(earlier_run)])
    assert "model folder models/tiny-lama does not exist (though models/ does)" in line


def test_model_folder_without_config(tmp_path, earlier_run, capsys):
    (tmp_path / "not-a-model").mkdir()
    line = one_line(capsys, launch(tmp_path / "not-a-model", earlier_run))
    assert "has no config.json" in line


def test_gated_model_without_token(earlier_run, capsys, monkeypatch, reachable_hub):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    line = one_line(capsys, ["launch", "--model", "meta-llama/Llama-2-7b-chat-hf", "--results", str(earlier_run)])
    assert "meta-llama/Llama-2-7b-chat-hf is gated" in line and "HF_TOKEN" in line


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Summarize: {doc}", "uses {doc}: only {document} and {instruction}"),
        ("Summarize this.", "has no {document}"),
        ("Summarize: {document", "is not a valid template"),
    ],
)
def test_prompt_template_is_checked_before_the_model_loads(tiny_model, earlier_run, capsys, template, expected):
    line = one_line(capsys, launch(tiny_model, earlier_run, "--prompt-template", template))
    assert expected in line and "--prompt-template" in line


def test_results_folder_that_cannot_be_created(tiny_model, tmp_path, capsys):
    """Tests run as root in CI, where a read-only folder stops nothing: a path under a regular file does."""
    blocker = tmp_path / "somefile"
    blocker.write_text("keep me\n")
    line = one_line(capsys, launch(tiny_model, blocker / "sub"))
    assert f"results folder {blocker / 'sub'} is not writable ({blocker} is a file, not a folder)" in line
    assert "--results" in line
    assert blocker.read_text() == "keep me\n"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_results_folder_that_takes_no_files(tiny_model, capsys):
    """/proc/self exists, yet making a folder in it fails with "No such file or directory": the line says
    the folder exists and what could not be created there, rather than only the OS's misleading words."""
    line = one_line(capsys, launch(tiny_model, Path("/proc/self")))
    assert line.startswith("error: results folder /proc/self is not writable (it exists, but creating /proc/self/")
    assert line.endswith("in it fails: No such file or directory): pass --results DIR")


# --- the whole program, in a subprocess ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--gpu", "a10o"], "unknown GPU 'a10o'"),
        (["--data", "MISSING"], "dataset not found"),
        (["--prompt-template", "{doc}"], "--prompt-template uses {doc}"),
    ],
)
def test_the_program_prints_one_line(tiny_model, tmp_path, args, expected):
    args = [str(tmp_path / "missing.jsonl") if a == "MISSING" else a for a in args]
    proc = run_cli(launch(tiny_model, tmp_path / "results", *args))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith("error: ")
    assert expected in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "results").exists(), "a refused launch creates nothing"


# --- options that cannot mean what they say ------------------------------------------------------------------


def test_max_batch_size_with_a_fixed_batch_size_is_refused(tiny_model, earlier_run, capsys):
    """--max-batch-size bounds --batch-size auto; beside a fixed batch size it would be silently ignored."""
    before = snapshot(earlier_run)
    line = one_line(capsys, launch(tiny_model, earlier_run, "--batch-size", "4", "--max-batch-size", "2"))
    assert "--max-batch-size bounds only --batch-size auto" in line and "--batch-size 4 is fixed" in line
    line = one_line(capsys, launch(tiny_model, earlier_run, "--batch-size", "dynamic", "--max-batch-size", "2"))
    assert "--max-batch-size" in line and "leaves batching to vLLM" in line
    assert snapshot(earlier_run) == before


@pytest.mark.parametrize(
    "command",
    [["plan", "--model", "llama-2-7b", "--gpu", "t4"], ["launch", "--model", "x", "--gpu", "t4", "--image", "hf"]],
)
def test_gpu_memory_limit_without_a_unit_is_refused(capsys, command):
    """A bare 16 means 16 GiB to whoever types it; read as 16 bytes, every cell would "not fit"."""
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--gpu-memory-limit", "16"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "16: give a unit, e.g. 16GiB" in err and "Traceback" not in err


def test_sizes_with_a_unit_are_read():
    from runner.cli.types import BYTE_SIZE

    assert BYTE_SIZE.convert("16GiB", None, None) == 16 * 2**30
    assert BYTE_SIZE.convert("15.5 GB", None, None) == 15_500_000_000
    assert BYTE_SIZE.convert("17179869184B", None, None) == 17179869184


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--gpu-memory-limit", "1GiB"], ["--gpu-memory-limit 1GiB:", "--gpu cpu has no GPU memory to cap"]),
        (["--gpu-memory-limit", "16GB"], ["--gpu-memory-limit 16GB (14.9 GiB):", "no GPU memory to cap"]),
        (
            ["--gpu", "t4", "--image", "hf", "--gpu-memory-limit", "100GiB"],
            ["--gpu-memory-limit 100GiB is more than a t4 has (15 GiB)", "cap nothing"],
        ),
    ],
    ids=["on-a-cpu", "decimal-units-echoed", "above-the-card"],
)
def test_gpu_memory_limit_that_caps_nothing_is_refused(tiny_model, earlier_run, capsys, options, expected):
    before = snapshot(earlier_run)
    line = one_line(capsys, launch(tiny_model, earlier_run, *options))
    for part in expected:
        assert part in line
    assert snapshot(earlier_run) == before, "no run folder, no config.json claiming a limit"


@pytest.mark.parametrize("run_id", ["../escape", "sub/dir", "..", ".", "/tmp/abs"])
def test_run_id_must_name_a_folder_inside_results(tiny_model, tmp_path, earlier_run, capsys, run_id):
    before = snapshot(earlier_run)
    line = one_line(capsys, launch(tiny_model, earlier_run, "--run-id", run_id))
    assert f"--run-id {run_id!r}" in line and "letters, digits" in line
    assert snapshot(earlier_run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"], "nothing created beside the results folder"


@pytest.mark.parametrize(
    "fields",
    [["--text-field", "document", "--summary-field", "document"], ["--text-field", "summary"]],
    ids=["both-named", "summary-detected"],
)
def test_text_field_as_summary_field_is_refused(tiny_model, tmp_path, earlier_run, capsys, fields):
    """ROUGE against the document itself would score nonsense as a result; every command refuses it."""
    path = write_jsonl(tmp_path / "good.jsonl", short_records(2))
    line = one_line(capsys, ["data", "inspect", str(path), *fields])
    assert f"{path}:1: the text field and the summary field are both" in line
    assert "--summary-field" in line
    assert one_line(capsys, launch(tiny_model, earlier_run, "--data", str(path), *fields)) == line


def test_plan_refuses_a_gpu_memory_limit_above_the_card(capsys):
    line = one_line(capsys, ["plan", "--model", "llama-2-7b", "--gpu", "t4", "--gpu-memory-limit", "100GiB"])
    assert "--gpu-memory-limit 100GiB" in line and "t4" in line and "cap nothing" in line


# --- a hub model this machine cannot download ----------------------------------------------------------


def closed_port_endpoint() -> str:
    with socket.socket() as s:  # a port nothing listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"HF_HUB_OFFLINE": "0"}, "cannot reach the Hugging Face hub"),
        ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
    ],
    ids=["unreachable", "offline"],
)
def test_a_hub_model_that_cannot_be_downloaded_is_refused_at_once(tmp_path, env, says):
    """Offline, the worker's download would retry for half a minute and leave a failed run behind; the
    host asks the hub once and refuses in a line, creating nothing."""
    results = tmp_path / "results"
    env = {**env, "HF_ENDPOINT": closed_port_endpoint(), "HF_HOME": str(tmp_path / "hf")}
    t0 = time.monotonic()
    proc = run_cli(["launch", "--model", "some-org/some-model", "--results", str(results)], env=env)
    assert time.monotonic() - t0 < 20, "no download retries"
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], proc.stderr
    assert "some-org/some-model" in lines[0] and "local checkpoint folder" in lines[0]
    assert not results.exists()


@pytest.mark.slow
def test_a_hub_model_in_the_local_cache_runs_offline(tiny_model, small_dataset, tmp_path):
    """A model the Hugging Face cache already holds needs no hub: the check lets it through and the
    worker loads it from the cache (laid out as huggingface_hub lays out a download)."""
    hf_home = tmp_path / "hf"
    repo = hf_home / "hub" / "models--some-org--tiny"
    revision = "0" * 40
    shutil.copytree(tiny_model, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    env = {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": closed_port_endpoint()}
    proc = run_cli(
        ["launch", "--model", "some-org/tiny", "--data", str(small_dataset), "--max-new-tokens", "4",
         "--results", str(tmp_path / "results"), "--run-id", "cached"],
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "results" / "cached" / "result.json").read_text())["status"] == "completed"


def test_vllm_engine_options_with_an_hf_scenario_are_refused(tiny_model, earlier_run, capsys):
    before = snapshot(earlier_run)
    line = one_line(capsys, launch(tiny_model, earlier_run, "--kv-cache-memory", "1GiB", "--vllm-enforce-eager"))
    assert "--kv-cache-memory, --vllm-enforce-eager configure vLLM's engine" in line
    assert "scenario fp32 runs the hf backend" in line and "--image vllm-cpu" in line
    assert snapshot(earlier_run) == before


def test_vllm_engine_options_reach_the_run_config(tiny_model):
    from runner.cli.types import BYTE_SIZE
    from runner.launching import LaunchRequest, build_config, check_launch_options

    req = LaunchRequest(
        model=str(tiny_model),
        data=str(SAMPLE_DATASET),
        image="vllm-cpu",
        kv_cache_memory=BYTE_SIZE.convert("512MiB", None, None),
        gpu_memory_utilization=0.5,
        vllm_enforce_eager=True,
    )
    check_launch_options(req)
    config, _ = build_config(req)
    assert (config.backend, config.scenario, config.forced) == ("vllm", "vllm", False)
    assert config.vllm_kv_cache_memory_bytes == 512 * 2**20
    assert config.vllm_gpu_memory_utilization == 0.5 and config.vllm_enforce_eager
