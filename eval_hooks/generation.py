"""Batched generation for evaluation through ``model.generate`` (no decoding loop of our own).

Prompts are left padded (decoder-only generation appends on the right) and the processor's chat
template adds the generation prompt, rendered by the model family (``render_chat``; with ``eval.inputs: lmms_eval`` the
wrapper's own template arguments, ``render_lmms_chat``). Thinking is off (Qwen3.5's prompt closes its think block
empty) unless ``eval.prompt_template`` asks for a ``<think>`` block (``train.models.thinking_for``, as GRPO decides
for its prompts): then Qwen3.5's prompt opens ``<think>\n`` and each response is returned with that open block in
front (``ModelFamily.think_prefix``), so answer extraction and the think counts read the whole assistant turn. Media: with ``eval.inputs: training`` they are loaded by the
data_mix readers' ``load_media``, so that evaluation sees images exactly as training does; with
``lmms_eval`` as lmms-eval's model wrapper for the checkpoint's family loads them (:mod:`eval_hooks.inputs`).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class GenerationSettings:
    """What ``generate`` is called with; built from the recipe's ``eval`` section."""

    max_new_tokens: int = 64
    batch_size: int = 16
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    synced_gpus: bool = False
    prompt_template: str | None = None
    inputs: str = "training"

    @classmethod
    def from_eval_config(cls, cfg: Any, synced_gpus: bool = False) -> GenerationSettings:
        return cls(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, do_sample=cfg.do_sample,
                   temperature=cfg.temperature, top_p=cfg.top_p, synced_gpus=synced_gpus,
                   seed=cfg.seed if getattr(cfg, "generation_seed", None) is None else cfg.generation_seed,
                   prompt_template=cfg.prompt_template, inputs=cfg.inputs)


def prompt_messages(sample: Any, template: str | None = None) -> list[dict[str, Any]]:
    """The sample's conversation up to (not including) a final assistant turn; with ``template``, the last
    text of the last user turn becomes ``template`` with ``{question}`` replaced by that text."""
    msgs = copy.deepcopy(list(sample.messages))
    while msgs and msgs[-1].get("role") == "assistant":
        msgs.pop()
    if not msgs or msgs[-1].get("role") != "user":
        raise ValueError(f"{sample.where}: the bench record has no user prompt")
    if template is not None:
        content = msgs[-1]["content"]
        if isinstance(content, str):
            msgs[-1]["content"] = template.replace("{question}", content)
        else:
            texts = [i for i, part in enumerate(content) if part.get("type") == "text"]
            if not texts:
                raise ValueError(f"{sample.where}: the prompt has no text for eval.prompt_template")
            content[texts[-1]] = {"type": "text", "text": template.replace("{question}", content[texts[-1]]["text"])}
    return msgs


def build_inputs(processor: Any, samples: Sequence[Any], data_cfg: Any, template: str | None = None,
                 inputs: str = "training"):
    """Tokenized, left-padded batch (``BatchFeature``) for ``samples`` with their images and videos; ``inputs``
    as ``eval.inputs`` (``training`` or ``lmms_eval``)."""
    from data_mix.media import load_media, processor_media_kwargs
    from eval_hooks.inputs import lmms_inputs, processor_kwargs
    from train.models import family_for_processor, thinking_for

    family = family_for_processor(processor)
    texts, images, videos = [], [], []
    for sample in samples:
        messages = prompt_messages(sample, template)
        if inputs == "lmms_eval":
            messages, imgs = lmms_inputs(sample, messages, data_cfg, family)
            vids = []
            texts.append(family.render_lmms_chat(processor, messages))
        else:
            imgs, vids = load_media(sample, data_cfg)
            texts.append(family.render_chat(processor, messages, add_generation_prompt=True,
                                            thinking=thinking_for(template)))
        images.extend(imgs)
        videos.extend(vids)
    kwargs: dict[str, Any] = {"text": texts, "padding": True, "padding_side": "left", "return_tensors": "pt"}
    # frames arrive already sampled at data.video_fps (as in training's collate): say so, sample no more
    kwargs.update(processor_media_kwargs(images, videos, data_cfg.video_fps))
    if images:
        kwargs.update(processor_kwargs(inputs, family))
    return processor(**kwargs)


@contextlib.contextmanager
def _eval_mode(model: Any):
    """Eval mode and no grad for the duration; the training flag is restored afterwards."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            model.train()


@contextlib.contextmanager
def _own_rng(seed: int):
    """Sampling uses its own seeded RNG; the training RNG state is left exactly as it was."""
    import torch

    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def generate(model: Any, processor: Any, samples: Sequence[Any], data_cfg: Any, settings: GenerationSettings,
             progress: Any = None) -> list[str]:
    """Responses (decoded, special tokens removed) for ``samples``, in order, ``batch_size`` at a time; each
    after the think block its prompt opened, if any (module docstring)."""
    from train.models import family_for_processor, thinking_for

    tok = getattr(processor, "tokenizer", processor)
    opened = ("" if settings.inputs == "lmms_eval"
              else family_for_processor(processor).think_prefix(processor, thinking_for(settings.prompt_template)))
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    gen_kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens, "do_sample": settings.do_sample,
                                  "pad_token_id": pad_id, "use_cache": True, "synced_gpus": settings.synced_gpus}
    if settings.do_sample:
        gen_kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
    else:  # a checkpoint's generation_config may carry sampling defaults; greedy means greedy
        gen_kwargs.update(temperature=None, top_p=None, top_k=None)
    if settings.inputs == "lmms_eval":  # lmms-eval's wrappers stop on the tokenizer's eos token only
        gen_kwargs["eos_token_id"] = tok.eos_token_id
    device, dtype = model.device, model.dtype
    responses: list[str] = []
    with _eval_mode(model), _own_rng(settings.seed):
        for start in range(0, len(samples), settings.batch_size):
            batch = build_inputs(processor, samples[start:start + settings.batch_size], data_cfg,
                                 settings.prompt_template, settings.inputs)
            batch = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in batch.items()}
            out = model.generate(**batch, **gen_kwargs)
            new_tokens = out[:, batch["input_ids"].shape[1]:]
            responses.extend(opened + r for r in tok.batch_decode(new_tokens, skip_special_tokens=True))
            if progress is not None:
                progress.update(len(new_tokens))
    return responses
