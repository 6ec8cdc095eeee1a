"""The original study's shape, defined once: what every command assumes unless told otherwise.

The hand-run study that sumbench grew out of summarized WikiLingua how-to articles with Llama-2-7B-chat:
prompts of about 515 tokens (chat template and instruction included) and at most 300 new tokens. The
launch and matrix options, the run config's defaults, the memory plan and the GPU check all read these,
so a run, its plan and the published numbers describe the same work. Shared with the worker (through
``runner.contract.schema``), so it imports nothing.
"""

from __future__ import annotations

MAX_NEW_TOKENS = 300
"""Most tokens generated per summary (the original study's setting)."""

PROMPT_TOKENS = 515
"""Mean prompt length, in tokens, of the original study's documents: what the memory plan and the GPU
check's documents are sized to."""
