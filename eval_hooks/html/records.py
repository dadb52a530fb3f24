"""Evaluation records and GRPO rollouts as the compact rows the page's script renders (``samples``, ``rollouts``).

A record counts as correct when its score is at least CORRECT_AT (project choice: multiple-choice scores are 0
or 1; numeric answers score partial credit, and half credit or more reads as right on this page). The page
says so next to its filter.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from eval_hooks.html.media import Thumbnails

CORRECT_AT = 0.5
TEXT_MAX = 4000
"""Characters of a prompt or response kept on the page (project choice: the page stays fast with 5,000 rows)."""


def _clip(text: Any) -> str | None:
    if text is None:
        return None
    text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
    return text if len(text) <= TEXT_MAX else text[:TEXT_MAX] + f" ... [{len(text) - TEXT_MAX} more characters]"


def _media(rec: dict[str, Any], thumbs: Thumbnails) -> list[dict[str, Any]]:
    out = [thumbs.image(i) for i in rec.get("images") or []]
    for video in rec.get("videos") or []:
        out += thumbs.video(video)
    if not out and "images" not in rec and "media" not in rec:
        out.append({"error": "no media reference in this record (predictions written before the page existed)"})
    return out


def sample_rows(records: list[dict[str, Any]], thumbs: Thumbnails) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        leaf = str(r.get("leaf") or "")
        score = r.get("score")
        rows.append({
            "id": str(r.get("id")), "leaf": leaf, "level": leaf.split("/", 1)[0] if leaf else "",
            "metric": r.get("metricfunc"), "score": score,
            "correct": isinstance(score, (int, float)) and score >= CORRECT_AT,
            "prompt": _clip(r.get("prompt")), "response": _clip(r.get("response")),
            "extracted": _clip(r.get("scored_text")) if r.get("answer_source") else None,
            "answer": _clip(r.get("answer")), "reason": _clip(r.get("details")), "media": _media(r, thumbs),
        })
    return rows


def samples_section(rows: list[dict[str, Any]], source: Path | None) -> str:
    if not rows:
        return '<p class="muted">no evaluation records (no predictions.jsonl in the last evaluation)</p>'
    return (f'<p class="muted">records of {escape(str(source))}; "correct" means score &ge; {CORRECT_AT:g} '
            "(project choice: partial credit of numeric answers)</p>"
            '<div class="controls" id="samples-controls"></div><p id="samples-count" class="muted"></p>'
            '<div id="samples-list"></div>')


def rollout_rows(rollouts: list[dict[str, Any]], thumbs: Thumbnails) -> list[dict[str, Any]]:
    rows = []
    for r in rollouts:
        media = [thumbs.image(m) for m in (r.get("media") or [])]
        rows.append({"step": r.get("step"), "group": r.get("group"), "level": r.get("level") or "other",
                     "leaf": r.get("leaf"), "prompt": _clip(r.get("prompt")), "answer": _clip(r.get("answer")),
                     "completion": _clip(r.get("completion")), "rewards": r.get("rewards") or {},
                     "reward": r.get("reward"), "advantage": r.get("advantage"), "media": media})
    return rows


def rollouts_section(rows: list[dict[str, Any]], launcher: str) -> str:
    if not rows:
        why = ("this GRPO run has logged no rollout yet (rollouts.jsonl)" if launcher == "grpo"
               else "not a GRPO run: no rollouts")
        return f'<p class="muted">{why}</p>'
    return ('<p class="muted">sampled rollout log (rollouts.jsonl): each group is one prompt\'s completions with each '
            "reward component, the weighted reward and the advantage TRL computed</p>"
            '<div class="controls" id="rollouts-controls"></div><p id="rollouts-count" class="muted"></p>'
            '<div id="rollouts-list"></div>')
