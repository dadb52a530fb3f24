"""How many samples each source contributes: group weights, unit, budget (pure arithmetic).

Let A_g be group g's amount in the mix's unit (samples or tokens), u_s a source's cost per sample
in that unit (1, or its mean tokens t_s), p_s its share of the group (``source_weights``, default
proportional to its available rows in the unit). Then A_g = lambda * w_g and source s draws
k_s = A_g * p_s / u_s samples. The budget fixes lambda:

- ``samples`` B: sum_s k_s = B;  ``tokens`` B: sum_s k_s * t_s = B;
- ``epochs`` v of group G: sum_{s in G} k_s = v * rows(G) (G defaults to the group whose data
  runs out first, so that 1 epoch needs no upsampling);
- a matched recipe: ``tokens`` with B = that recipe's planned tokens.

A source asked for more samples than it has rows is an error unless ``mix.upsample`` is on. With
``mix.upsample``, a trainer whose ``train.max_steps`` needs more samples than the plan has scales every
k_s up by the same factor (:func:`extend_plan`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace


class PlanError(ValueError):
    """The mix cannot be planned as written (the message says what to change)."""


@dataclass
class SourcePlan:
    name: str
    group: str
    rows_total: int
    """Rows in the source's files."""
    rows: int
    """Rows available to the mix (``fraction`` of rows_total)."""
    samples: int
    """Samples drawn."""
    tokens_per_sample: float | None
    """Mean tokens per sample (None when the plan needed no token counts)."""

    @property
    def tokens(self) -> float | None:
        return None if self.tokens_per_sample is None else self.samples * self.tokens_per_sample

    @property
    def epochs(self) -> float:
        return self.samples / self.rows if self.rows else 0.0


@dataclass
class GroupPlan:
    name: str
    weight: float
    samples: int = 0
    tokens: float | None = 0.0
    share: float = 0.0
    """Share of the mix in its unit (planned)."""


@dataclass
class MixPlan:
    unit: str
    budget: str
    """The budget as resolved, e.g. "1 epoch of group 'ability'" or "1234567 tokens (matched dist_size_corr)"."""
    sources: list[SourcePlan]
    groups: dict[str, GroupPlan] = field(default_factory=dict)

    @property
    def total_samples(self) -> int:
        return sum(s.samples for s in self.sources)

    @property
    def total_tokens(self) -> float | None:
        toks = [s.tokens for s in self.sources]
        return None if any(t is None for t in toks) else float(sum(toks))

    def fingerprint(self) -> str:
        """Hash of what decides the sample order (checked when a state is loaded)."""
        key = [(s.name, s.rows_total, s.rows, s.samples) for s in self.sources]
        return hashlib.sha1(json.dumps(key).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"unit": self.unit, "budget": self.budget, "total_samples": self.total_samples,
                "total_tokens": self.total_tokens,
                "sources": [{**asdict(s), "tokens": s.tokens, "epochs": s.epochs} for s in self.sources],
                "groups": {g: asdict(p) for g, p in self.groups.items()}}


def available_rows(n: int, fraction: float) -> int:
    return n if fraction >= 1 else max(1 if n else 0, int(n * fraction))


def _round_keeping_sum(values: list[float]) -> list[int]:
    """Integers that sum to round(sum(values)), each within 1 of its value (largest remainders win)."""
    floors = [int(v) for v in values]
    missing = int(round(sum(values))) - sum(floors)
    order = sorted(range(len(values)), key=lambda i: (floors[i] - values[i], i))
    for i in order[:max(0, missing)]:
        floors[i] += 1
    return floors


def make_plan(mix, rows_total: dict[str, int], tokens_per_sample: dict[str, float] | None = None,
              budget_tokens: float | None = None, budget_label: str = "") -> MixPlan:
    """The plan of ``mix`` for sources of the given sizes (and mean tokens, when the unit or the
    budget is in tokens). ``budget_tokens`` overrides the budget (a matched recipe)."""
    tps = tokens_per_sample or {}
    need_tokens = mix.unit == "tokens" or budget_tokens is not None or mix.budget.unit == "tokens"
    empty = [s for g in mix.groups.values() for s in g.sources if not rows_total[s]]
    if empty:
        raise PlanError(f"source(s) {', '.join(empty)} have no rows")
    if need_tokens:
        missing = [s for g in mix.groups.values() for s in g.sources if s not in tps]
        if missing:
            raise PlanError(f"token counts missing for {', '.join(missing)}")

    def cost(s: str) -> float:  # cost per sample in the mix's unit
        return tps[s] if mix.unit == "tokens" else 1.0

    rows = {s: available_rows(rows_total[s], g.fraction) for g in mix.groups.values() for s in g.sources}
    share: dict[str, float] = {}
    for g in mix.groups.values():
        raw = {s: (g.source_weights[s] if g.source_weights else rows[s] * cost(s)) for s in g.sources}
        total = sum(raw.values())
        share.update({s: w / total for s, w in raw.items()})
    # samples of source s = lam * w_g * per_lam[s]
    per_lam = {s: g.weight * share[s] / cost(s) for g in mix.groups.values() for s in g.sources}

    budget = mix.budget
    if budget_tokens is not None:
        lam = budget_tokens / sum(per_lam[s] * tps[s] for s in per_lam)
        label = budget_label or f"{budget_tokens:.0f} tokens"
    elif budget.unit == "samples":
        lam = budget.value / sum(per_lam.values())
        label = f"{budget.value:g} samples"
    elif budget.unit == "tokens":
        lam = budget.value / sum(per_lam[s] * tps[s] for s in per_lam)
        label = f"{budget.value:g} tokens"
    else:
        def lam_for_epoch(gname: str) -> float:
            g = mix.groups[gname]
            drawn = sum(per_lam[s] for s in g.sources)
            return sum(rows[s] for s in g.sources) / drawn if drawn > 0 else float("inf")

        gname = budget.group
        if gname is None:
            gname = min((n for n, g in mix.groups.items() if g.weight > 0), key=lam_for_epoch)
        if mix.groups[gname].weight <= 0:
            raise PlanError(f"mix.budget.group {gname!r} has weight 0: its epochs cannot set the budget")
        lam = budget.value * lam_for_epoch(gname)
        label = f"{budget.value:g} epoch(s) of group {gname!r}"

    sources = []
    for gname, g in mix.groups.items():
        for s, k in zip(g.sources, _round_keeping_sum([lam * per_lam[s] for s in g.sources])):
            sources.append(SourcePlan(s, gname, rows_total[s], rows[s], k, tps[s] if s in tps else None))
    over = [sp for sp in sources if sp.samples > sp.rows]
    if over and not mix.upsample:
        lines = "; ".join(f"{sp.name} (group {sp.group}) needs {sp.samples} samples but has {sp.rows} rows "
                          f"({sp.epochs:.2f} epochs)" for sp in over)
        raise PlanError(f"not enough data for the mix's weights and budget ({label}): {lines}. Add data, lower "
                        f"the budget, change the weights, or set mix.upsample=true to repeat rows")
    return _with_groups(MixPlan(unit=mix.unit, budget=label, sources=sources),
                        {gname: g.weight for gname, g in mix.groups.items()})


def _with_groups(plan: MixPlan, weights: dict[str, float]) -> MixPlan:
    """``plan`` with its per-group totals and shares (in the plan's unit) filled from its sources."""
    for gname, weight in weights.items():
        mine = [sp for sp in plan.sources if sp.group == gname]
        toks = [sp.tokens for sp in mine]
        plan.groups[gname] = GroupPlan(gname, weight, sum(sp.samples for sp in mine),
                                       None if any(t is None for t in toks) else float(sum(toks)))
    amount = {g: (p.tokens if plan.unit == "tokens" else p.samples) for g, p in plan.groups.items()}
    total = sum(amount.values())
    for g, p in plan.groups.items():
        p.share = amount[g] / total if total else 0.0
    return plan


def extend_plan(plan: MixPlan, samples: int, why: str) -> MixPlan:
    """``plan`` scaled up to exactly ``samples`` samples at the same proportions (``mix.upsample`` with a
    ``train.max_steps`` beyond the planned mix). Every source repeats its rows, each epoch in a new seeded order."""
    if samples <= plan.total_samples:
        return plan
    factor = samples / plan.total_samples
    counts = _round_keeping_sum([sp.samples * factor for sp in plan.sources])
    sources = [replace(sp, samples=k) for sp, k in zip(plan.sources, counts)]
    label = f"{samples} samples = the planned {plan.budget} x {factor:.2f} ({why}; rows repeated)"
    return _with_groups(MixPlan(unit=plan.unit, budget=label, sources=sources),
                        {g: gp.weight for g, gp in plan.groups.items()})
