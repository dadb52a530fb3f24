"""Reading a cognitive-map answer: the chosen letter (A-E) and the JSON map, as MindCube's scorer reads them."""

from __future__ import annotations

import json
import re

_LETTER_DOT = re.compile(r"([A-E])\.")
_ANSWER_SECTION = re.compile(r"<Answer>(.*?)(?:<|$)", re.DOTALL)
# Patterns that need "X." are left out below: they can only match where _LETTER_DOT already did.
_SECTION_PATTERNS = tuple(re.compile(p) for p in (r"[Mm]y answer is ([A-E])", r"[Tt]he answer is ([A-E])",
                                                  r"\b([A-E])\b"))
_TEXT_PATTERNS = tuple(re.compile(p) for p in (
    r"(?:^|\n)(?:Answer: )?([A-E])(?:\.|$|\s)",
    r"[\*\"]([A-E])[\*\"]",
    r"\bAnswer:?\s*([A-E])\b",
    r"[Mm]y answer is ([A-E])",
    r"answer is ([A-E])",
))
_WORD_LETTER = re.compile(r"\b([A-E])\b")


def _last_match(pattern: re.Pattern, text: str) -> str | None:
    last = None
    for m in pattern.finditer(text):
        last = m
    return last.group(1) if last else None


def extract_letter(text: str) -> str | None:
    """The answer letter: the last "X." anywhere; else inside an <Answer> section; else the last match of
    the first phrase pattern that matches; else the first standalone letter of the last line that has one."""
    if not text:
        return None
    found = _last_match(_LETTER_DOT, text)
    if found:
        return found
    section = _ANSWER_SECTION.search(text)
    if section:
        for pattern in _SECTION_PATTERNS:
            found = _last_match(pattern, section.group(1))
            if found:
                return found
    for pattern in _TEXT_PATTERNS:
        found = _last_match(pattern, text)
        if found:
            return found
    for line in reversed(text.split("\n")):
        m = _WORD_LETTER.search(line)
        if m:
            return m.group(1)
    return None


_LINE_COMMENT = re.compile(r"//.*")
_CONTROL_WS = re.compile(r"[\n\r\t]")
# Quote bare keys (``{a: 1}`` -> ``{"a": 1}``). The lookbehind starts matches only at the start of a word,
# which gives the same result as MindCube's ``(\s*?)(\w+)(\s*?):`` but in linear time.
_BARE_KEY = re.compile(r"(?<!\w)(\w+)(\s*):")
_COMMA_BRACE = re.compile(r",\s*}")
_COMMA_BRACKET = re.compile(r",\s*]")
_KEY_OBJECT = re.compile(r'"([^"]+)":\s*{([^{}]*(?:{[^{}]*}[^{}]*)*)}')


def _tidy(text: str) -> str:
    text = _BARE_KEY.sub(r'"\1"\2:', text)
    return _COMMA_BRACKET.sub("]", _COMMA_BRACE.sub("}", text))


def _parse_tidied(span: str):
    """Parse malformed JSON: drop // comments and control whitespace, quote bare keys, drop trailing commas;
    failing that, collect the ``"name": {...}`` entries that parse one by one. None when nothing parses."""
    try:
        return json.loads(_tidy(_CONTROL_WS.sub(" ", _LINE_COMMENT.sub("", span))))
    except Exception:
        pass
    try:
        entries = {}
        for key, body in _KEY_OBJECT.findall(span):
            try:
                entries[key] = json.loads(_tidy("{" + body + "}"))
            except Exception:
                continue
        return entries or None
    except Exception:
        return None


def extract_json_object(text) -> dict | None:
    """The JSON object spanning the first '{' to the last '}' of ``text`` (MindCube's "longest match"),
    parsed strictly, else leniently (see _parse_tidied). Non-decode errors (e.g. nesting too deep) raise."""
    if not text:
        return None
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        return None
    span = text[start:end + 1]
    try:
        return json.loads(span)
    except json.JSONDecodeError:
        return _parse_tidied(span)
