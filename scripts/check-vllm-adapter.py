"""Run inside a built vllm image (no GPU needed): the adapter against the real vLLM classes it uses.

    docker run --rm --network none --entrypoint python sumbench/vllm:0.1.0 - < scripts/check-vllm-adapter.py

It checks what a machine without a GPU can: the pinned vllm imports, SamplingParams accepts the
adapter's greedy settings, the adapter reads vLLM's real RequestOutput/CompletionOutput objects, and the
prompt-as-token-ids type exists. Loading a model and generating need a GPU and are not exercised.
"""

import inspect
import json
from importlib import metadata

import vllm
from vllm import SamplingParams
from vllm.inputs import TokensPrompt
from vllm.outputs import CompletionOutput, RequestOutput

from runner.worker.backends import vllm as adapter

checks = {"vllm": metadata.version("vllm")}
params = SamplingParams(**adapter.sampling_kwargs(300, forced=True))
assert (params.temperature, params.max_tokens, params.min_tokens, params.ignore_eos) == (0.0, 300, 300, True)
checks["sampling_params"] = "greedy, forced 300 tokens: accepted"
TokensPrompt(prompt_token_ids=[1, 2, 3])
checks["tokens_prompt"] = "ok"


def request_output(token_ids, finish):
    completion = CompletionOutput(
        index=0,
        text="a summary" if token_ids else "",
        token_ids=token_ids,
        cumulative_logprob=None,
        logprobs=None,
        finish_reason=finish,
    )
    fields = inspect.signature(RequestOutput).parameters
    kwargs = {
        "request_id": "0",
        "prompt": None,
        "prompt_token_ids": [1, 2],
        "prompt_logprobs": None,
        "outputs": [completion],
        "finished": True,
    }
    return RequestOutput(**{k: v for k, v in kwargs.items() if k in fields})


done = adapter.to_generation(request_output([5, 6, 7], "stop"))
assert (done.text, done.output_tokens, done.skipped) == ("a summary", 3, False)
refused = adapter.to_generation(request_output([], "length"))
assert refused.skipped and refused.output_tokens == 0
checks["request_output"] = "generated and refused outputs read correctly"
assert hasattr(vllm, "LLM") and "max_model_len" in inspect.signature(vllm.EngineArgs).parameters
checks["engine_args"] = "LLM present; EngineArgs takes max_model_len"
print(json.dumps(checks, indent=1))
