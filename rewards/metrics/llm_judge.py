"""``gpteval``: an LLM judge grades a free-text answer (e.g. a camera-motion caption) against the reference.

The judge is any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, TGI, OpenAI, Azure's
/openai/v1), reached with urllib only. The judge answers with JSON ``{"answer_score": [[s]], "reason": ..}``
and s in [0, 1]; as in the benchmark scorer, a nested list or bare value is accepted, and when there is no
parsable JSON the first number in the reply is used. Scores outside [0, 1] are clipped (the scorer does
not clip). No judge configured, or no usable reply after the retries: score 0 with ``details["error"]``.
Judge scores are not deterministic, so gpteval is not part of the parity tests.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from rewards.metrics.record import Metric

SYSTEM_PROMPT = """You grade answers about motion in videos (subjects, actions, directions and paths, order).
Compare the student's answer with the reference answer on these elements: who or what moves, which action,
in which direction or along which path, and in which order. Missing or wrong actions or directions cost the
most. Give a score between 0 and 1 with two decimals (1 = fully consistent and complete, 0 = wrong).
Reply with JSON only: {"answer_score": [[score]], "reason": "<at most 200 characters>"}"""

USER_TEMPLATE = "Question:\n{prompt}\n\nReference answer:\n{reference}\n\nStudent answer:\n{response}"

_NUMBER = re.compile(r"(\d+\.\d+|\d+)")


class JudgeError(RuntimeError):
    """The judge endpoint could not be reached or gave no usable reply."""


class JudgeClient:
    """Chat-completions client for an OpenAI-compatible endpoint (``base_url`` ends in /v1)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0,
                 temperature: float = 0.2, max_tokens: int = 512, retries: int = 3):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.retries = retries

    @classmethod
    def from_config(cls, cfg) -> JudgeClient | None:
        """A client from a ``JudgeConfig``; None when ``cfg.base_url`` is not set."""
        if not cfg.base_url:
            return None
        return cls(cfg.base_url, cfg.model, os.environ.get(cfg.api_key_env) if cfg.api_key_env else None,
                   timeout_s=cfg.timeout_s, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                   retries=cfg.retries)

    def __call__(self, messages: list[dict]) -> str:
        """The reply text; retries on network errors, 5xx/429 and empty replies, then raises JudgeError."""
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature,
                           "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = "no attempt"
        for attempt in range(max(1, self.retries)):
            if attempt:
                time.sleep(min(2.0 ** (attempt - 1), 8.0) * 0.1)
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                    payload = json.loads(resp.read().decode("utf-8", "replace"))
                content = (payload["choices"][0]["message"].get("content") or "").strip()
                if content:
                    return content
                last = "empty reply"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} from {self.url}"
                if exc.code < 500 and exc.code != 429:
                    break
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                last = f"cannot reach {self.url}: {exc}"
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                last = f"malformed reply from {self.url}: {exc!r}"
        raise JudgeError(last)


def parse_judge_score(review: str) -> tuple[float | None, str]:
    """(score, reason) from the judge's reply; (None, why) when it holds no score."""
    try:
        start, end = review.find("{"), review.rfind("}")
        fence = re.search(r"```json\n(.*?)\n```", review, re.DOTALL)
        text = fence.group(1) if fence else (review[start:end + 1] if start != -1 and end != -1 else None)
        if text is None:
            raise ValueError("no JSON")
        data = json.loads(text)
        value = data["answer_score"]
        while isinstance(value, list):
            value = value[0]
        return float(value), str(data.get("reason", ""))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        m = _NUMBER.search(review)
        if m:
            return float(m.group(1)), "fallback: first number in the reply"
        return None, "no JSON score and no number in the reply"


def gpteval(response: str, answer, extra_info: dict, judge: Callable[[list[dict]], str] | None = None) -> dict:
    """``extra_info["prompt"]``: the question shown to the judge; ``judge``: a JudgeClient or any
    callable(messages) -> reply text."""
    if judge is None:
        return {"score": 0.0, "details": {"error": "gpteval needs a judge: set reward.judge.base_url"}}
    prompt = extra_info.get("prompt", "") if isinstance(extra_info, dict) else ""
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": USER_TEMPLATE.format(prompt=prompt, reference=answer, response=response)}]
    try:
        review = judge(messages)
    except JudgeError as exc:
        return {"score": 0.0, "details": {"error": str(exc)}}
    score, reason = parse_judge_score(review)
    if score is None or score != score:
        return {"score": 0.0, "details": {"error": reason, "review": review[:500]}}
    return {"score": max(0.0, min(1.0, score)), "details": {"reason": reason, "raw_score": score}}


RECORDS = (Metric("gpteval", gpteval, needs_judge=True, answer="text"),)
