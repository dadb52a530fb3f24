"""Counting completion lengths in ``reward.length_unit``, identically on the TRL and the verl backend.

Both backends count from the completion's decoded text (the only thing verl's reward function is given):

- ``words``: whitespace-separated words;
- ``tokens``: the policy tokenizer's tokens of the text (``add_special_tokens=False``). The TRL trainer hands
  the processor's tokenizer to the reward functions; verl's adapter loads the same tokenizer from the model
  path in its ``reward_kwargs``. This is the generated length minus the end-of-sequence token, except where
  a sampled token sequence is not the tokenizer's own split of the text (rare; both backends still agree).

``transformers`` is imported only when a tokenizer has to be loaded from a path (verl's environment has it).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

_TOKENIZERS: dict[str, Any] = {}
_CACHE_MAX = 4096


class TokenizerMissing(ValueError):
    """``reward.length_unit=tokens`` without a tokenizer to count with."""


def load_tokenizer(spec: Any) -> Any:
    """A tokenizer from a path / hub name (loaded once per process) or a tokenizer object (returned as is)."""
    if not isinstance(spec, str):
        return spec
    tok = _TOKENIZERS.get(spec)
    if tok is None:
        from transformers import AutoTokenizer

        tok = _TOKENIZERS[spec] = AutoTokenizer.from_pretrained(spec)
    return tok


class LengthCounter:
    """``counter(text) -> int`` in one unit; remembers the last few thousand texts (every component of a
    TRL batch asks for the same completions)."""

    def __init__(self, unit: str, tokenizer: Any = None):
        if unit not in ("tokens", "words"):
            raise ValueError(f"reward.length_unit={unit!r} is not one of tokens, words")
        self.unit = unit
        self.tokenizer = load_tokenizer(tokenizer) if tokenizer is not None else None
        self._seen: OrderedDict[str, int] = OrderedDict()

    @property
    def ready(self) -> bool:
        """True when this counter can count (``words``, or ``tokens`` with a tokenizer)."""
        return self.unit == "words" or self.tokenizer is not None

    def require(self, why: str) -> None:
        """Raise TokenizerMissing (saying what to do) when lengths are needed but cannot be counted."""
        if not self.ready:
            raise TokenizerMissing(
                f"reward.length_unit=tokens counts lengths with the policy's tokenizer, and {why} needs lengths, "
                "but no tokenizer was given: pass tokenizer= (make_reward_funcs / total_reward; the GRPO trainer "
                "passes its processor's; verl: reward_kwargs.tokenizer=<model path>) or set reward.length_unit=words")

    def __call__(self, text: str | None) -> int:
        if not text:
            return 0
        n = self._seen.get(text)
        if n is None:
            if self.unit == "words":
                n = len(text.split())
            else:
                self.require("this sample")
                n = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            self._seen[text] = n
            if len(self._seen) > _CACHE_MAX:
                self._seen.popitem(last=False)
        return n
