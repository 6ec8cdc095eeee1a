"""Models without downloads: tiny random Llamas with a locally trained tokenizer, and synthetic weights.

``build_tiny`` saves with ``save_pretrained`` so the benchmark loads it through the same
``from_pretrained`` path as a real checkpoint. ``synthetic_config`` gives real architectures' shapes
for throughput work where no checkpoint can be downloaded; their outputs are noise, so runs with them
force the output length and mark quality as not meaningful.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from runner.contract.architectures import BUILTIN_CONFIGS
from runner.contract.weights import RANDOM_WEIGHTS_KEY

LLAMA2_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'].strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]


def synthetic_config(model: str):
    """A transformers config for ``model``: a built-in name or a folder holding config.json."""
    from transformers import AutoConfig, LlamaConfig

    if model in BUILTIN_CONFIGS:
        return LlamaConfig(bos_token_id=1, eos_token_id=2, **BUILTIN_CONFIGS[model])
    return AutoConfig.from_pretrained(model)  # a folder with config.json, checked by the host


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts``, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>"
    )
    fast.chat_template = LLAMA2_CHAT_TEMPLATE
    return fast


def load_tokenizer(model: str, synthetic: bool, texts: Iterable[str] = ()):
    """The tokenizer for a checkpoint. Synthetic weights use one saved beside config.json if there is
    one, else a byte-level BPE trained on the run's own documents: only token ids matter there."""
    from transformers import AutoTokenizer

    if not synthetic or (Path(model) / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(model)
    return train_tokenizer(texts, vocab_size=4096)


def build_tiny(out_dir: Path, texts: Iterable[str], *, vocab_size: int = 4096, seed: int = 0) -> Path:
    """Train a tokenizer on ``texts``, build a random-weight tiny Llama, save both to ``out_dir``.

    Its config.json says the weights are random (``runner.contract.weights.RANDOM_WEIGHTS_KEY``): a run of it
    loads like a trained checkpoint, and only that key lets its result mark ROUGE as not meaningful."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(texts, vocab_size)
    shape = dict(BUILTIN_CONFIGS["tiny-llama"], vocab_size=len(tokenizer))
    config = LlamaConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **{RANDOM_WEIGHTS_KEY: True},
        **shape,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Turn off the tqdm bars transformers and huggingface_hub draw on stderr ("Writing model shards",
    "Loading weights") for the block, then restore them: `runner model tiny` answers with one line, and
    a bar for a one-shard model written in a millisecond is noise there. Elsewhere (the worker) they stay."""
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging

    transformers_on = logging.is_progress_bar_enabled()
    hub_off = hub_utils.are_progress_bars_disabled()
    logging.disable_progress_bar()  # both libraries' bars
    try:
        yield
    finally:
        if transformers_on:
            logging.enable_progress_bar()  # enables the hub's too: put back what it had
        if hub_off:
            hub_utils.disable_progress_bars()
