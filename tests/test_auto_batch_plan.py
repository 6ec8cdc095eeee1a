"""`--batch-size auto` starts at the memory plan's batch for the run's longest prompt: the host hands the
worker the plan at a ladder of prompt lengths (it cannot count tokens), the worker counts them and picks
the rung that covers the first batch, whose prompts are the longest. Runs of the tiny model on a CPU with
a ladder written into the config, as the host writes one for a GPU."""

from __future__ import annotations

import pytest
from conftest import read_result

from runner.contract import rundir


@pytest.mark.parametrize(
    ("ladder", "start", "said"),
    [
        ([(10, 4), (100_000, 2)], 2, True),  # every prompt is over 10 tokens: the longer rung's batch
        ([(100_000, 3)], 3, True),  # below --max-batch-size: the plan's rung wins
        ([(100_000, 16)], 4, False),  # above it: --max-batch-size (or the plan at 515 tokens) stays the bound
        (None, 4, False),  # no ladder (a CPU, vLLM, an unknown model): as before
    ],
)
def test_auto_starts_at_the_rung_covering_the_longest_prompt(make_run_dir, run_worker, ladder, start, said):
    run_dir = make_run_dir(batch_size="auto", max_batch_size=4, limit=8, max_new_tokens=4)
    config = rundir.read_config(run_dir)
    rundir.write_config(run_dir, config.model_copy(update={"auto_batch_plan": ladder}))
    assert run_worker(run_dir) == 0
    result = read_result(run_dir)
    sizes = [b["size"] for b in result["metrics"]["batches"]]
    assert sizes[0] == start and sum(sizes) == 8 and result["batching"]["planned_max"] == start
    assert ("the memory plan's batch for prompts of up to" in (run_dir / "worker.log").read_text()) is said
