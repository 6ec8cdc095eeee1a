"""Secrets never reach results, logs or the console.

The end-to-end test runs a real launch with a random HF_TOKEN and another secret in the environment, and
makes the run fail with an error whose text quotes the token (as a download library's exception can
quote the request it sent). Then it reads every file the run left and everything printed, and finds
neither secret, while the masked message is still there to read.
"""

from __future__ import annotations

import logging
import secrets
import string
import sys
from pathlib import Path

from conftest import read_docs, read_result, run_cli

from runner.contract.secrets import MASK, RedactingFormatter, redact


def random_token(prefix: str = "hf_", n: int = 30) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


def test_secret_environment_values_are_masked(monkeypatch):
    token, key = random_token(), random_token("sk-", 24)
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("DB_PASSWORD", "correct horse battery")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # a TOKEN name with a short, ordinary value
    text = f"token={token} key={key} pw=correct horse battery parallel=false"
    assert redact(text) == f"token={MASK} key={MASK} pw={MASK} parallel=false"


def test_token_shapes_are_masked_without_the_environment(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    leaked = random_token()
    assert redact(f"401 for {leaked}") == f"401 for {MASK}"
    assert redact("Authorization: Bearer abc.def-123456") == f"Authorization: Bearer {MASK}"
    assert redact("the token limit is 4096") == "the token limit is 4096", "ordinary words stay"


def test_log_records_and_their_tracebacks_are_masked(monkeypatch):
    token = random_token()
    monkeypatch.setenv("HF_TOKEN", token)
    formatter = RedactingFormatter("%(message)s")
    try:
        raise RuntimeError(f"download failed with {token}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "using %s", (token,), exc_info=True)
        record.exc_info = sys.exc_info()
    out = formatter.format(record)
    assert token not in out and out.count(MASK) == 2 and "Traceback" in out


def every_text(folder: Path) -> dict[str, str]:
    return {str(p): p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()}


def test_a_failing_launch_leaks_no_secret(tiny_model, small_dataset, tmp_path):
    """A run that records a batch, then fails with the token in its exception: the records, the result,
    worker.log, error.log's traceback, config.json and the console (every worker line, --verbose)."""
    token, other = random_token(), random_token("s3cr3t-", 20)
    quoted = f"GET https://huggingface.co/api/models failed: Authorization: Bearer {token} (env {other})"
    proc = run_cli(
        ["launch", "--model", str(tiny_model), "--data", str(small_dataset), "--batch-size", "4",
         "--max-new-tokens", "8", "--results", str(tmp_path / "results"), "--run-id", "secret", "--verbose"],
        env={"HF_TOKEN": token, "MY_SERVICE_SECRET": other, "SUMBENCH_INJECT_ERROR": f"RuntimeError@1:{quoted}"},
    )  # fmt: skip
    run_dir = tmp_path / "results" / "secret"
    result = read_result(run_dir)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert result["error"]["error_class"] == "RuntimeError"
    assert "GET https://huggingface.co/api/models failed: Authorization: Bearer ***" in result["error"]["message"]
    texts = every_text(run_dir)
    assert {"config.json", "result.json", "worker.log", "error.log"} <= {Path(p).name for p in texts}
    assert len(read_docs(run_dir)) == 4, "the first batch is recorded before the failure"
    for secret in (token, other):
        for path, text in texts.items():
            assert secret not in text, f"secret in {path}"
        assert secret not in proc.stdout and secret not in proc.stderr, "secret on the console"
    assert MASK in texts[str(run_dir / "error.log")] and MASK in proc.stdout + proc.stderr
