"""A metric as one record: everything the project needs to know about a ``metricfunc`` in one place.

Scoring (``rewards.score``), reward shaping (multiple choice for ``reward.accuracy=mcq_only``, the judge),
GRPO routing (prompts that need a judge), the benchmark prompt text (``data_mix.readers.bench_prompts``) and
the dependency check all read the record. Adding a metric = one module under rewards/metrics/ that defines its
function and ``RECORDS = (Metric(...),)`` (found by :mod:`rewards.metrics`), plus its parity cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Metric:
    """One ``metricfunc`` of SpatialTree-Bench."""

    name: str
    """The ``metricfunc`` name the benchmark records carry."""
    score: Callable[..., dict]
    """``(response, answer, extra_info[, judge=])`` -> ``{"score": float, "details": {...}}``."""
    needs_judge: bool = False
    """Scored by an LLM judge (called with ``judge=``): not deterministic, and never scored without a judge."""
    is_mcq: bool = False
    """A letter among options ("discrete MCQ selection": what ``reward.accuracy=mcq_only`` trains on)."""
    prompt: str = "{question} "
    """The benchmark's user text for a record of this metric: ``{question}`` and ``{options}`` (one per line)."""
    prompt_by_level: dict[str, str] = field(default_factory=dict)
    """Level -> a different prompt (the benchmark words L4 multiple choice its own way)."""
    prompt_needs_options: bool = False
    """Use ``prompt`` only when the record lists options; without them the question is asked as it is (plus a
    space, as the benchmark does)."""
    options_in_extra: bool = False
    """The metric reads the record's options (``extra_info["option"]``)."""
    open_as: str | None = None
    """The metric that scores an ``open`` record of this metric instead (the benchmark scores an open
    multiple-choice question as a number)."""
    deps: tuple[tuple[str, str], ...] = ()
    """(module it imports, pip package) it needs besides numpy; checked at ``import rewards``."""
    answer: str = "any"
    """What a usable reference answer is (checked before anything is scored, rewards.answers): ``letter_in_options``
    (a letter among the record's options), ``letter`` (one capital letter), ``yes_no``, ``number``, ``text``
    (non-empty), ``gravity_json`` (a mapping with roll, pitch and vfov), ``mapping_ok`` (a mapping or its JSON text
    is fine) or ``any``."""

    def prompt_for(self, question: str, options: list[str], level: str | None) -> str:
        if self.prompt_needs_options and not options:
            return f"{question} "
        template = self.prompt_by_level.get(level or "", self.prompt)
        return template.format(question=question, options="\n".join(str(o) for o in options).strip())
