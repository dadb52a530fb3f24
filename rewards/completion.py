"""Reading a GRPO completion: its think block, its answer, whether it follows the format, its length."""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


@dataclass(frozen=True)
class Completion:
    """What the reward functions need to know about one completion."""

    text: str
    answer: str
    """The extracted answer: the last <answer>..</answer>, else the text after the last </think>, else the
    whole completion; stripped."""
    answer_source: str
    """``tag``, ``after_think`` or ``whole``."""
    think: str | None
    """Content of the think block that opens the completion (None: the completion does not open with a
    closed think block)."""
    think_tokens: int
    """Whitespace-separated tokens inside that think block (0 without one)."""
    answer_after_think: bool
    """The answer comes after the closed think block (the "think, then answer" order)."""
    n_think_open: int
    n_think_close: int
    n_answer_open: int
    n_answer_close: int

    @property
    def has_think(self) -> bool:
        """A non-blank think block opens the completion: what the reasoning reward pays for (rewards/shaping.py)
        and what GRPO's per-level ``think_fraction`` counts (train/grpo/telemetry.py)."""
        return self.think is not None and self.think.strip() != ""


def parse_completion(text: str, opened: str = "") -> Completion:
    """Parse a completion's text (see :class:`Completion`).

    ``opened``: a think block the generation prompt already opened (a chat template with thinking on, e.g.
    Qwen3.5's ``<think>\\n``): the model's text continues inside it, so the completion is read as
    ``opened + text``. The caller says what its prompts opened (train/models: ``ModelFamily.think_prefix``)."""
    text = opened + text if opened else text
    counts = (text.count(THINK_OPEN), text.count(THINK_CLOSE), text.count(ANSWER_OPEN), text.count(ANSWER_CLOSE))
    think = None
    think_end = -1
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        start = len(text) - len(stripped) + len(THINK_OPEN)
        close = text.find(THINK_CLOSE, start)
        if close != -1:
            think = text[start:close]
            think_end = close + len(THINK_CLOSE)
    answers = list(_ANSWER_RE.finditer(text)) if counts[2] and counts[3] else []
    if answers:
        last = answers[-1]
        answer, source, answer_at = last.group(1), "tag", last.start()
    elif counts[1]:
        cut = text.rfind(THINK_CLOSE) + len(THINK_CLOSE)
        answer, source, answer_at = text[cut:], "after_think", cut
    else:
        answer, source, answer_at = text, "whole", 0
    return Completion(
        text=text, answer=answer.strip(), answer_source=source, think=think,
        think_tokens=len(think.split()) if think else 0,
        answer_after_think=think is not None and answer_at >= think_end,
        n_think_open=counts[0], n_think_close=counts[1], n_answer_open=counts[2], n_answer_close=counts[3],
    )


def _answer_tags_ok(c: Completion) -> bool:
    """No answer tags, or exactly one pair holding the answer."""
    if c.n_answer_open == 0 and c.n_answer_close == 0:
        return True
    return c.n_answer_open == 1 and c.n_answer_close == 1 and c.answer_source == "tag"


def follows_think_format(c: Completion) -> bool:
    """``think`` mode: one non-empty think block opens the completion, then a non-empty answer."""
    return (c.think is not None and c.think.strip() != "" and c.n_think_open == 1 and c.n_think_close == 1
            and c.answer_after_think and c.answer != "" and _answer_tags_ok(c))


def follows_auto_format(c: Completion) -> bool:
    """``auto_think`` mode: either no think tags at all, or one think block (possibly empty) opening the
    completion; then a non-empty answer."""
    if c.n_think_open == 0 and c.n_think_close == 0:
        no_think_ok = True
    else:
        no_think_ok = c.think is not None and c.n_think_open == 1 and c.n_think_close == 1 and c.answer_after_think
    return no_think_ok and c.answer != "" and _answer_tags_ok(c)


def completion_text(completion) -> str:
    """The text of a completion as TRL passes it: a string, or a conversational list of messages whose
    last assistant message holds the text (content a string or a list of {"type": "text"} parts)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        for message in reversed(completion):
            if isinstance(message, dict) and message.get("role", "assistant") == "assistant":
                content = message.get("content", "")
                if isinstance(content, list):
                    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
                return "" if content is None else str(content)
        return ""
    return "" if completion is None else str(completion)
