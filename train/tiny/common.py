"""Shared parts of the embedded tiny models: the synthetic corpus, the byte-level BPE tokenizer, and writing a
model + processor as a plain Hugging Face directory that ``from_pretrained`` loads like any hub checkpoint.

A builder module (one per family, ``train/tiny/<family>.py``) sets ``NAME`` and ``VERSION`` and defines
``build(seed) -> (model, processor)``; :func:`build_vl_model` does the config-from-token-ids part they share.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import tempfile
from pathlib import Path

VOCAB_SIZE = 1024


def _corpus(n: int = 4000, seed: int = 0) -> list[str]:
    """Synthetic sentences in the vocabulary of the engine's tasks and answer formats."""
    rng = random.Random(seed)
    colors = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black", "gray", "cyan"]
    shapes = ["box", "cube", "sphere", "ball", "cylinder", "object", "point", "marker", "camera"]
    words = ["left", "right", "above", "below", "closer", "farther", "larger", "smaller", "front",
             "behind", "near", "far", "up", "down", "forward", "backward", "view", "image", "frame",
             "distance", "depth", "size", "height", "width", "meters", "degrees", "roll", "pitch",
             "direction", "motion", "rotate", "move", "turn", "stop", "yes", "no", "which", "what",
             "how", "many", "is", "the", "of", "in", "to", "from", "and", "a", "an", "answer",
             "question", "option", "options", "first", "second", "there", "are", "count", "color",
             "shape", "scene", "ground", "plane", "object", "objects", "think", "step", "because"]
    templates = [
        "Which {s} is {w}, the {c} {s} or the {c2} {s2}?",
        "The {c} {s} is {w} than the {c2} {s2}.",
        "How many {s}s are there in the image? Answer: {n}",
        "<think>The {c} {s} looks {w}, so the answer is {L}.</think><answer>{L}</answer>",
        "<answer>{L}</answer>",
        "{L}. The {c} {s}\n{L2}. The {c2} {s2}",
        "Answer with the option's letter from the given choices directly.",
        "Please answer the question using a single word or phrase.",
        '{{"actions": ["W", "A", "D", "S", "STOP"], "step_nums": [{n}, {n2}, 1, 2, 0]}}',
        '{{"pitch": {f}, "roll": {f2}, "vfov": {f3}}}',
        "The distance is {f} meters. The depth of the point is {f2} m.",
        "Picture 1: view one. Picture 2: view two. The camera moved {w}.",
    ]
    out = []
    for _ in range(n):
        t = rng.choice(templates)
        out.append(t.format(
            s=rng.choice(shapes), s2=rng.choice(shapes), c=rng.choice(colors), c2=rng.choice(colors),
            w=rng.choice(words), n=rng.randint(0, 12), n2=rng.randint(0, 10),
            L=rng.choice("ABCD"), L2=rng.choice("ABCD"),
            f=round(rng.uniform(-90, 90), 2), f2=round(rng.uniform(0, 20), 1), f3=round(rng.uniform(30, 90), 1),
        ))
    out.extend(" ".join(rng.choice(words + colors + shapes) for _ in range(12)) for _ in range(n // 2))
    return out


def build_tokenizer(special_tokens: list[str], eos: str, pad: str, chat_template: str, vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE tokenizer trained on :func:`_corpus`, with ``special_tokens`` (the first is the pad /
    end-of-text token) and ``chat_template``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(special_tokens), special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=pad,
                                   additional_special_tokens=special_tokens[1:], model_max_length=32768,
                                   padding_side="right", clean_up_tokenization_spaces=False)
    fast.add_special_tokens({"additional_special_tokens": special_tokens[1:]})
    fast.add_special_tokens({"pad_token": pad})
    fast.chat_template = chat_template
    return fast


def build_vl_model(model_cls, config_cls, tokenizer, seed: int, *, text_config: dict, vision_config: dict,
                   token_ids: dict[str, str], eos: list[str], pad: str, **config_kwargs):
    """A randomly initialised ``model_cls`` whose config's token ids (``token_ids``: config key -> token) come
    from ``tokenizer``; greedy generation stopping at ``eos``."""
    import torch

    def tid(token: str) -> int:
        return tokenizer.convert_tokens_to_ids(token)

    text = dict(text_config, vocab_size=len(tokenizer), bos_token_id=tid(pad), eos_token_id=tid(eos[0]),
                pad_token_id=tid(pad))
    config = config_cls(text_config=text, vision_config=dict(vision_config),
                        **{key: tid(token) for key, token in token_ids.items()}, **config_kwargs)
    torch.manual_seed(seed)
    model = model_cls(config)
    model.generation_config.eos_token_id = [tid(t) for t in eos]
    model.generation_config.pad_token_id = tid(pad)
    model.generation_config.do_sample = False
    return model


@contextlib.contextmanager
def outside_zero3():
    """Build with DeepSpeed ZeRO-3 switched off for transformers: a process whose ``TrainingArguments`` name a
    ZeRO-3 config has every new model partitioned as it is constructed (``deepspeed.zero.Init``), and a tiny
    model built there would be saved with empty tensors (the first use of a tiny name under ZeRO-3 did so)."""
    from transformers.integrations import deepspeed as hf_ds

    saved = hf_ds._hf_deepspeed_config_weak_ref
    hf_ds._hf_deepspeed_config_weak_ref = None
    try:
        yield
    finally:
        hf_ds._hf_deepspeed_config_weak_ref = saved


def check_complete(model) -> None:
    """Refuse to save a model with partitioned (empty) parameters."""
    empty = [n for n, p in model.named_parameters() if p.numel() == 0 or hasattr(p, "ds_id")]
    if empty:
        raise RuntimeError(f"tiny model has {len(empty)} partitioned or empty parameters (first: {empty[0]}); "
                           "it was built under DeepSpeed ZeRO-3 and would be saved without weights")


def write_model_dir(out: str | Path, model, processor, meta: dict, keep_existing: bool = False) -> Path:
    """Save ``model`` and ``processor`` to ``out`` (atomically: a temporary sibling renamed into place) with
    ``tiny_model.json`` = ``meta``. ``keep_existing``: a complete ``out`` (its ``tiny_model.json`` written, e.g.
    by a concurrent build of the same cache key) is kept and this build discarded, so no reader sees it vanish."""
    check_complete(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        # Every process writes its own build (a cache fill needs no coordination between ranks), but under
        # torch.distributed transformers saves weights on rank 0 only: rank 1 once cached a model-less directory.
        model.should_save_on_this_rank = lambda is_main_process: True
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        missing = [f for f in ("config.json", "model.safetensors") if not (tmp / f).is_file()]
        if missing:
            raise RuntimeError(f"tiny model build wrote no {', '.join(missing)} to {tmp}")
        (tmp / "tiny_model.json").write_text(json.dumps(meta))
        if keep_existing and (out / "tiny_model.json").is_file():
            return out
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
