"""What `runner launch` says first about a hub model it cannot download: the fix that would work."""

from __future__ import annotations

from conftest import closed_port_endpoint, run_cli


def test_an_unreachable_hub_is_said_before_a_missing_token(tmp_path):
    """A gated model without HF_TOKEN on a machine that cannot reach the hub: asking for a token first
    would send the user off to get one, only to learn the download cannot happen anyway."""
    env = {"HF_ENDPOINT": closed_port_endpoint(), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}
    env |= {"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": ""}
    proc = run_cli(["launch", "--model", "meta-llama/Llama-2-7b-chat-hf", "--results", str(tmp_path / "r")], env=env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot reach the Hugging Face hub to download meta-llama/Llama-2-7b-chat-hf")
    assert "HF_TOKEN" not in proc.stderr
