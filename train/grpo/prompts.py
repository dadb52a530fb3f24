"""GRPO prompts: a sample's question rewritten by the template of ``grpo.prompt_mode``.

Only the text changes. Image/video placeholder parts stay where the sample put them, so the
processor's chat template places the model's vision tokens exactly as it does in SFT and evaluation.
"""

from __future__ import annotations

import copy
from typing import Any

from data_mix.sample import Message, Sample

QUESTION = "{question}"


class PromptError(ValueError):
    """A template or a sample cannot make a GRPO prompt; the message names which and why."""


def template_for(templates, mode: str) -> str:
    """The template text of ``mode`` from a PromptTemplates section, checked for ``{question}``."""
    from train.keys import table

    modes = table()["grpo.prompt_mode"].choices
    if mode not in modes:
        raise PromptError(f"grpo.prompt_mode={mode!r} is not one of {', '.join(modes)}")
    text = getattr(templates, mode)
    if QUESTION not in text:
        raise PromptError(f"grpo.templates.{mode} must contain {QUESTION} (where the sample's question goes): {text!r}")
    return text


def prompt_thinking(grpo) -> bool:
    """Whether the GRPO prompts are rendered with the chat template's thinking switch on: when the
    ``grpo.prompt_mode`` template asks for a ``<think>`` block (``train.models.thinking_for``). Qwen3.5's prompt
    then opens its native think block, which the completion continues and closes; TRL's and verl's template
    arguments, the prompt-length check and the reward's reading of a completion all follow this one answer."""
    from train.models import thinking_for

    return thinking_for(template_for(grpo.templates, grpo.prompt_mode))


def _last_user_text(messages: list[Message]) -> tuple[int, int | None]:
    """(message index, part index) of the last text of the last user turn; part None = string content."""
    for mi in range(len(messages) - 1, -1, -1):
        msg = messages[mi]
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return mi, None
        for pi in range(len(content) - 1, -1, -1):
            if content[pi].get("type") == "text":
                return mi, pi
        raise PromptError("the last user turn has no text part")
    raise PromptError("the sample has no user turn")


def question_of(sample: Sample) -> str:
    """The question text of an RL/eval sample (the last text of its last user turn)."""
    mi, pi = _last_user_text(sample.messages)
    content = sample.messages[mi]["content"]
    return content if pi is None else content[pi]["text"]


def build_prompt(sample: Sample, template: str) -> list[Message]:
    """The conversational prompt of ``sample``: its turns up to the last user turn, with that turn's
    question put into ``template``. A trailing assistant turn (the answer of an SFT-style row) is dropped."""
    messages = copy.deepcopy(sample.messages)
    while messages and messages[-1].get("role") == "assistant":
        messages.pop()
    try:
        mi, pi = _last_user_text(messages)
    except PromptError as exc:
        raise PromptError(f"{sample.where}: {exc}") from None
    content = messages[mi]["content"]
    if pi is None:
        messages[mi]["content"] = template.replace(QUESTION, content)
    else:
        content[pi] = {"type": "text", "text": template.replace(QUESTION, content[pi]["text"])}
    return messages


def count_media_parts(messages: list[Message]) -> dict[str, int]:
    """Image and video placeholder parts in ``messages`` (``{"type": "image"}`` / ``{"type": "video"}``)."""
    counts = {"image": 0, "video": 0}
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            for part in content:
                kind = part.get("type")
                if kind in counts:
                    counts[kind] += 1
    return counts


def to_verl_prompt(messages: list[Message]) -> list[dict[str, Any]]:
    """The prompt in verl's parquet form: string contents with ``<image>`` / ``<video>`` where the parts were.

    verl's RLHFDataset splits the strings at these tags and rebuilds the typed parts for the processor.
    """
    out = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            pieces = []
            for part in content:
                kind = part.get("type")
                if kind == "image":
                    pieces.append("<image>")
                elif kind == "video":
                    pieces.append("<video>")
                elif kind == "text":
                    pieces.append(part.get("text") or "")
            content = "".join(pieces)
        out.append({"role": msg["role"], "content": content})
    return out
