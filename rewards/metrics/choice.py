"""Discrete answers: ``multichoiceeval`` (option letter) and ``judge`` (the last yes/no).

The letter parser follows the benchmark scorer's order of evidence: explicit phrases ("The answer is B"),
then the text after the last "Answer:", then bracketed letters "(B)", then a letter followed by a space or
a period, then (in answers longer than five words) the option texts themselves. Where the scorer finds no
evidence it guesses a random letter; a reward must be deterministic, so this parser returns no letter and
the sample scores 0.
"""

from __future__ import annotations

import re

from rewards.metrics.record import Metric

# Checked in this order; a phrase whose first match names a letter that is not an option is passed over.
# The list keeps the scorer's quirks: one entry is two phrases glued together (it only matches that exact
# double sentence), and some phrases repeat (harmless, kept so the order of evidence is the same).
_PHRASES = (
    "The correct option is ([A-Z])",
    "The answer is ([A-Z])",
    "The correct answer is ([A-Z])",
    "Option ([A-Z]) is correct",
    "The right choice is ([A-Z])",
    "Thus, the answer is ([A-Z])",
    "Therefore, the correct option is ([A-Z])",
    "The answer should be ([A-Z])",
    "Hence, the correct answer is ([A-Z])",
    "The correct choice is ([A-Z])",
    "Accordingly, the answer is ([A-Z])",
    "Consequently, the correct option is ([A-Z])The correct option is ([A-Z])",
    "Answer: ([A-Z])",
    "Answer ([A-Z])",
    "Choice ([A-Z])",
    "Select ([A-Z])",
    "([A-Z]) is correct",
    "([A-Z]) is the answer",
    "([A-Z]) is the correct option",
    "Correct: ([A-Z])",
    "Right: ([A-Z])",
    r"<\|begin_of_box\|>([A-Z])<\|end_of_box\|>",
)
_PHRASE_RES = tuple(re.compile(p) for p in dict.fromkeys(_PHRASES))
_EDGE_PUNCT = (",", ".", "!", "?", ";", ":", "'")


def option_letters(options) -> dict[str, object]:
    """{"A": options[0], "B": options[1], ...} in option order."""
    return {chr(ord("A") + i): opt for i, opt in enumerate(options)}


def _last_by(candidates: list[str], position) -> str:
    """The candidate whose ``position`` is largest; the earliest candidate wins ties."""
    best, best_pos = candidates[0], position(candidates[0])
    for cand in candidates[1:]:
        pos = position(cand)
        if pos > best_pos:
            best, best_pos = cand, pos
    return best


def parse_choice(response: str, letters: dict[str, object]) -> str | None:
    """The option letter a free-text response chooses, or None when nothing in it points at one."""
    choices = list(letters)
    for pattern in _PHRASE_RES:
        m = pattern.search(response)
        if m and m.group(1) in letters:
            return m.group(1)

    tail_at = response.rfind("Answer:")
    if tail_at != -1:
        tail = response[tail_at + len("Answer:"):].strip()
        named = [c for c in choices if c in tail]
        if len(named) == 1:
            return named[0]

    text = response
    for ch in _EDGE_PUNCT:
        text = text.strip(ch)
    text = f" {text} "

    bracketed = [c for c in choices if f"({c})" in text]
    if bracketed:
        return bracketed[0] if len(bracketed) == 1 else _last_by(bracketed, lambda c: text.rfind(f"({c})"))
    spaced = [c for c in choices if f"{c} " in text] or [c for c in choices if f"{c}." in text]
    if spaced:
        return spaced[0] if len(spaced) == 1 else _last_by(spaced, lambda c: text.rfind(f" {c} "))
    if len(text.split()) > 5:
        lowered = text.lower()
        by_text = [c for c, opt in letters.items() if opt.lower() in lowered]
        if by_text:
            if len(by_text) == 1:
                return by_text[0]
            return _last_by(by_text, lambda c: lowered.rfind(letters[c].lower()))
    if len(choices) == 1:  # the scorer's random pick over a single option is that option
        return choices[0]
    return None


def multichoiceeval(response: str, answer, extra_info: dict) -> dict:
    """1 when the chosen letter equals ``answer``; ``extra_info["option"]`` lists the options in order."""
    letters = option_letters(extra_info["option"])
    parsed = parse_choice(response, letters)
    details = {"parsed_pred": parsed, "answer": answer}
    if parsed is None:
        details["unparsed"] = True
    return {"score": 1.0 if parsed is not None and parsed == answer else 0.0, "details": details}


def last_yes_no(text: str) -> str:
    """"yes" or "no", whichever occurs last (case-insensitive, also inside words: "know" counts as no);
    "other" when neither occurs."""
    if not text:
        return "other"
    lowered = text.lower()
    yes, no = lowered.rfind("yes"), lowered.rfind("no")
    if yes == -1 and no == -1:
        return "other"
    return "yes" if yes > no else "no"


def judge(response: str, answer, extra_info: dict) -> dict:
    """1 when the last yes/no of the response equals ``answer`` (case-insensitive)."""
    gt = answer.lower()
    pred = last_yes_no(response)
    return {"score": 1.0 if pred == gt else 0.0, "details": {"predict": pred, "gt": gt}}


_ANSWER_LETTER = ("Return only the letter of the correct option (e.g., A, B, C, etc.). "
                  "Always return in this format: 'answer: X'")

RECORDS = (
    Metric("multichoiceeval", multichoiceeval, is_mcq=True, answer="letter_in_options", prompt_needs_options=True, options_in_extra=True,
           open_as="meanrelativeacc",
           prompt="{question}\nOptions : {options}\nChoose the correct option. " + _ANSWER_LETTER,
           prompt_by_level={"L4": "{question} \n Options : {options}\nSelect the option that contains the correct "
                                  "action and the indication of whether the task has been completed. "
                                  + _ANSWER_LETTER + " "}),
    Metric("judge", judge, prompt="{question}", answer="yes_no"),
)
