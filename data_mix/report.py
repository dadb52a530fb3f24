"""What a mix draws: per source, per group (with realized share in the mix's unit) and per level."""

from __future__ import annotations

import sys
from collections import Counter

from tqdm import tqdm

from rewards.taxonomy import LEVELS

UNTAGGED = "untagged"


def _shape(mix, samples: Counter, tokens: Counter, levels: Counter) -> dict:
    groups = {}
    for gname in mix.plan.groups:
        names = [sp.name for sp in mix.plan.sources if sp.group == gname]
        groups[gname] = {"samples": int(sum(samples[n] for n in names)), "tokens": int(sum(tokens[n] for n in names))}
    key = "tokens" if mix.plan.unit == "tokens" else "samples"
    total = sum(g[key] for g in groups.values())
    for g in groups.values():
        g["share"] = g[key] / total if total else 0.0
    return {
        "groups": groups,
        "sources": [{"name": sp.name, "group": sp.group, "samples": int(samples[sp.name]),
                     "tokens": int(tokens[sp.name])} for sp in mix.plan.sources],
        "levels": {lv: int(levels[lv]) for lv in (*LEVELS, UNTAGGED)},
        "budget": {"label": mix.plan.budget, "match_recipe": mix.config.budget.match_recipe,
                   "planned_samples": mix.plan.total_samples, "planned_tokens": mix.plan.total_tokens},
    }


def modality_warnings(media: dict[str, Counter], specs: dict) -> list[str]:
    """One line per source whose drawn rows contradict its declared ``modality``: videos under ``image``,
    ``multi_image`` or ``text``; images under ``text``; a ``video`` source none of whose rows has a video.
    ``media``: source -> Counter of rows with ``videos`` / ``images`` and of ``rows``."""
    out = []
    for name, seen in media.items():
        declared = getattr(specs.get(name), "modality", None)
        if declared is None:
            continue
        found = []
        if declared in ("image", "multi_image", "text") and seen["videos"]:
            found.append(f"{seen['videos']} of {seen['rows']} drawn rows have videos")
        if declared == "text" and seen["images"]:
            found.append(f"{seen['images']} of {seen['rows']} drawn rows have images")
        if declared == "video" and seen["rows"] and not seen["videos"]:
            found.append(f"none of its {seen['rows']} drawn rows has a video")
        if found:
            out.append(f"source {name!r} declares modality {declared!r} but {' and '.join(found)} "
                       "(fix the registry's modality, or the data)")
    return out


def realized_report(mix, progress: bool = True) -> dict:
    """Draw the whole mix (this rank) and count samples and tokens of what was drawn; sources whose rows contradict
    their declared modality are listed under ``warnings``."""
    samples, tokens, levels = Counter(), Counter(), Counter()
    media: dict[str, Counter] = {}
    bar = tqdm(total=mix.samples_this_rank, desc="drawing the mix", unit="sample", file=sys.stderr,
               disable=not progress, mininterval=0.5)
    last = mix.position
    for s in mix:
        samples[s.source] += 1
        tokens[s.source] += s.meta["tokens"]
        levels[s.level or UNTAGGED] += 1
        seen = media.setdefault(s.source, Counter())
        seen.update(rows=1, videos=int(bool(s.videos)), images=int(bool(s.images)))
        bar.update(mix.position - last)
        last = mix.position
    bar.update(mix.position - last)
    bar.close()
    specs = {d.rows.spec.name: d.rows.spec for d in mix._draws}
    return {**_shape(mix, samples, tokens, levels), "warnings": modality_warnings(media, specs)}


def planned_report(mix) -> dict:
    """The same shape from the plan alone (no data drawn; tokens are the planned estimates)."""
    samples = Counter({sp.name: sp.samples for sp in mix.plan.sources})
    tokens = Counter({sp.name: round(sp.tokens or 0) for sp in mix.plan.sources})
    levels = Counter()
    for sp in mix.plan.sources:
        spec = mix._draws[[a.name for a in mix._active].index(sp.name)].rows.spec if sp.samples else None
        if spec is not None:
            levels[spec.tags.level if spec.tags else UNTAGGED] += sp.samples
    return _shape(mix, samples, tokens, levels)


def format_report(report: dict, mix) -> str:
    """A human-readable table of the report plus the plan's rows and budget."""
    plan = {sp.name: sp for sp in mix.plan.sources}
    tokens = mix.plan.total_tokens
    lines = [f"mix: unit={mix.plan.unit}, planned samples={mix.plan.total_samples}, planned tokens="
             f"{'-' if tokens is None else f'{tokens:.0f}'}, token counter={mix.counter.kind}",
             f"budget: {mix.plan.budget}" + (f" (mix.budget.match_recipe={mix.config.budget.match_recipe})"
                                              if mix.config.budget.match_recipe else ""), "",
             f"{'source':32} {'group':10} {'rows':>9} {'planned':>9} {'drawn':>9} {'epochs':>7} {'tokens':>12}"]
    for s in report["sources"]:
        sp = plan[s["name"]]
        lines.append(f"{s['name']:32} {s['group']:10} {sp.rows:>9} {sp.samples:>9} {s['samples']:>9} "
                     f"{sp.epochs:>7.2f} {s['tokens']:>12}")
    lines += ["", f"{'group':12} {'samples':>9} {'tokens':>12} {'share':>7}  (share in {mix.plan.unit})"]
    for g, v in report["groups"].items():
        lines.append(f"{g:12} {v['samples']:>9} {v['tokens']:>12} {v['share']:>7.3f}")
    lines += ["", "levels: " + ", ".join(f"{k}={v}" for k, v in report["levels"].items())]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the run's plan file

EQUAL_TOKENS_TOLERANCE = 0.01
"""Relative difference of planned tokens within which a sweep's rows count as one token budget."""


def plan_record(mix) -> dict:
    """What a training run records about its mix (``RUN_DIR/mix_plan.json``): the budget as resolved (its
    label says which: epochs of a group, samples, tokens, or the tokens of a matched recipe), the matched
    recipe, the token counter, and the per-source plan."""
    return {**mix.plan.to_dict(), "match_recipe": mix.config.budget.match_recipe, "token_counter": mix.counter.kind}


def budget_lines(rows: list[tuple[str, dict | None]], reference: str | None = None,
                 tolerance: float = EQUAL_TOKENS_TOLERANCE) -> list[str]:
    """One note on the token budgets of a table's rows ((label, plan record or None) in table order): equal
    (every row's planned tokens within ``tolerance`` of the reference row's) or not, with each row's budget."""
    known = [(label, rec) for label, rec in rows if rec and rec.get("total_tokens")]
    if not known:
        return []
    ref_label, ref = next(((lb, r) for lb, r in known if lb == reference), known[0])
    base = float(ref["total_tokens"])
    ratios = {label: float(rec["total_tokens"]) / base for label, rec in known}
    worst = max(abs(r - 1) for r in ratios.values())
    missing = [label for label, rec in rows if not (rec and rec.get("total_tokens"))]
    tail = f" (no mix_plan.json: {', '.join(missing)})" if missing else ""
    if worst <= tolerance:
        budgets = sorted({rec["budget"] for _, rec in known})
        return [f"- Token budget: equal. Every row plans {base:,.0f} tokens within {100 * worst:.2f}% "
                f"(tolerance {100 * tolerance:g}%); budgets: {'; '.join(budgets)}{tail}."]
    each = "; ".join(f"{label} {float(rec['total_tokens']):,.0f} tokens ({ratios[label]:.2f}x, {rec['budget']})"
                     for label, rec in known)
    return [f"- Token budget: NOT equal (rows differ by up to {100 * worst:.0f}% from {ref_label}), so the deltas "
            f"mix data with compute: {each}{tail}."]
