"""``--model`` names: a built-in architecture is something to plan, and to launch only with synthetic weights."""

from __future__ import annotations

import pytest

from runner.contract.errors import UserError
from runner.model_names import check_model


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("llama-2-7b", "or pass the hub id meta-llama/Llama-2-7b-chat-hf for the real weights"),
        ("tiny-llama", "or build a local tiny checkpoint with `runner model tiny DIR`"),
    ],
)
def test_a_built_in_name_without_synthetic_weights_says_how_to_run_it(name, fix, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder of that name here
    with pytest.raises(UserError) as err:
        check_model(name, synthetic=False)
    message = str(err.value)
    assert message.startswith(f"{name} is a built-in architecture, not a checkpoint: add --synthetic-weights")
    assert message.endswith(fix)
    check_model(name, synthetic=True)  # the same name with synthetic weights is fine


def test_a_folder_of_that_name_is_a_checkpoint(tiny_model, tmp_path, monkeypatch):
    (tmp_path / "tiny-llama").symlink_to(tiny_model, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    check_model("tiny-llama", synthetic=False)
