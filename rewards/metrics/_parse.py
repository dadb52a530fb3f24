"""Text helpers shared by the metrics: fenced blocks, brace spans, lenient JSON.

The benchmark's scorer finds these spans with regular expressions such as ``\\`\\`\\`json\\n(.*?)\\n\\`\\`\\`````.
Here they are found with ``str.find``, which gives the same spans (argued per function) and stays linear on
adversarial input (a megabyte of unclosed fences makes the regex version quadratic).
"""

from __future__ import annotations

import ast
import json
import re

_TRAILING_COMMA = re.compile(r",\s*([}\]])")
LITERAL_EVAL_MAX_CHARS = 100_000
"""Longer texts are not tried as Python literals: ast.literal_eval of a megabyte-long tuple takes seconds
(JSON of any length is still parsed)."""


def exact_fence(text: str, opening: str) -> str | None:
    """Body of the first ``opening ... \\n\\`\\`\\``` block (``opening`` ends with a newline), else None.

    Same span as ``re.search(opening + r"(.*?)\\n\\`\\`\\`", text, re.DOTALL)``: the body runs to the first
    newline+fence after the first opening; if that opening has no closing, no later one can have it either.
    """
    start = text.find(opening)
    if start < 0:
        return None
    body = start + len(opening)
    end = text.find("\n```", body)
    return None if end < 0 else text[body:end]


def loose_fence(text: str, opening: str) -> str | None:
    """Body of the first ``opening\\s*(.*?)\\s*\\`\\`\\``` block (DOTALL), whitespace-trimmed, else None.

    The lazy body ends at the first fence found after the opening's whitespace; trailing whitespace before
    that fence belongs to the closing ``\\s*``. If the first opening has no later fence, no later opening
    can have one either (a later opening is itself a fence after the first).
    """
    start = text.find(opening)
    if start < 0:
        return None
    body = start + len(opening)
    n = len(text)
    while body < n and text[body].isspace():
        body += 1
    close = text.find("```", body)
    if close < 0:
        return None
    end = close
    while end > body and text[end - 1].isspace():
        end -= 1
    return text[body:end]


def brace_span(text: str) -> str | None:
    """``text[first '{' : last '}' + 1]`` when the first ``{`` comes before the last ``}``, else None."""
    start = text.find("{")
    end = text.rfind("}")
    if start != -1 and end != -1 and start < end:
        return text[start:end + 1]
    return None


def drop_trailing_commas(text: str) -> str:
    """``[1, 2,]`` -> ``[1, 2]`` and ``{"a": 1,}`` -> ``{"a": 1}``."""
    return _TRAILING_COMMA.sub(r"\1", text)


def loads_json_or_fixed(text: str):
    """``json.loads``, retried once without trailing commas. Raises ``json.JSONDecodeError`` when both fail."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(drop_trailing_commas(text))


def action_block(response: str) -> str:
    """The text an action-plan answer is parsed from: a ```json block, else any ``` block, else the
    outermost braces, else the whole response."""
    for opening in ("```json", "```"):
        body = loose_fence(response, opening)
        if body is not None:
            return body
    span = brace_span(response)
    return response if span is None else span


def parse_action_dict(response: str) -> dict | None:
    """An action plan as a dict: JSON, JSON without trailing commas, then a Python literal; None if none
    of them gives a dict."""
    text = action_block(response)
    try:
        value = loads_json_or_fixed(text)
    except json.JSONDecodeError:
        if len(text) > LITERAL_EVAL_MAX_CHARS:
            return None
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return None
    return value if isinstance(value, dict) else None
