"""Per-record scores -> per-leaf means -> the SpatialTree hierarchy, and the views of it we publish.

The weighted aggregation itself is :func:`rewards.taxonomy.aggregate` (one implementation for the
whole project). This module turns its result into:

- the nested tree written to ``summary.json`` (name, key, weight, score, count, children),
- flat metric names for loggers (``bench/overall``, ``bench/L1``, ``bench/L1/Geometry/Distance``),
- the console table (scores x100 to one decimal, as the paper's tables),
- per-node deltas between two summaries (``launch/evaluate.py --compare``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from rewards import taxonomy as tx

METRIC_PREFIX = "bench"
SUMMARY_FORMAT = 1  # bump when the layout of summary.json changes


def leaf_node(name_or_key: str) -> tx.Node:
    """The leaf for a leaf name ("Distance") or key ("L1/Geometry/Distance")."""
    node = tx.node(name_or_key) if "/" in name_or_key else tx.leaf(name_or_key)
    if not node.is_leaf:
        raise KeyError(f"{name_or_key!r} is not a SpatialTree leaf")
    return node


def leaf_means(records: Iterable[Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, int]]:
    """Mean score and count per leaf key from records carrying ``leaf`` (a taxonomy key) and ``score``."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for rec in records:
        key = leaf_node(rec["leaf"]).key
        sums[key] += float(rec["score"])
        counts[key] += 1
    return {k: sums[k] / counts[k] for k in sums}, dict(counts)


def aggregate_records(records: Iterable[Mapping[str, Any]], mode: str, weighting: str = tx.DEFAULT_WEIGHTING,
                      missing: Iterable[str] = ()) -> tx.Aggregate:
    """Aggregate per-record scores up the hierarchy (leaf means first, then the weighted tree); ``missing``:
    leaf keys whose score could not be computed (reported missing, never 0)."""
    means, counts = leaf_means(records)
    return tx.aggregate_nodes(means, counts, mode=mode, weighting=weighting, missing=missing)


def tree_dict(agg: tx.Aggregate, node: tx.Node = tx.ROOT,
              intervals: Mapping[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """The nested tree of ``agg`` as plain data (what summary.json stores under ``tree``); ``weight`` is the
    node's weight under ``agg.weighting``, ``missing`` marks a node without a score because a leaf below it
    could not be scored. With ``intervals`` (eval_hooks/intervals.py) every node also has ``ci95``
    (``[lo, hi]``, None without a score) and ``n`` (records under it, = ``count``)."""
    out: dict[str, Any] = {
        "name": node.name,
        "key": node.key,
        "weight": tx.weight_of(node, agg.weighting),
        "score": agg.scores.get(node.key),
        "count": agg.counts.get(node.key, 0),
    }
    if intervals is not None:
        ci = intervals.get(node.key)
        out["ci95"] = None if ci is None or out["score"] is None else [float(ci[0]), float(ci[1])]
        out["n"] = out["count"]
    if node.key in agg.missing:
        out["missing"] = True
    if node.path and len(node.path) == 1:
        out["title"] = tx.LEVEL_TITLES[node.name]
    if node.children:
        out["children"] = [tree_dict(agg, child, intervals) for child in node.children]
    return out


def flat_scores(tree: Mapping[str, Any]) -> dict[str, float | None]:
    """Node key -> score for every node of a nested tree ("" is the root)."""
    out = {tree["key"]: tree["score"]}
    for child in tree.get("children", ()):
        out.update(flat_scores(child))
    return out


def flat_counts(tree: Mapping[str, Any]) -> dict[str, int]:
    out = {tree["key"]: tree["count"]}
    for child in tree.get("children", ()):
        out.update(flat_counts(child))
    return out


def metric_name(key: str, prefix: str = METRIC_PREFIX) -> str:
    """``""`` -> ``bench/overall``; ``L1/Geometry`` -> ``bench/L1/Geometry``."""
    return f"{prefix}/overall" if key == "" else f"{prefix}/{key}"


def metrics(agg: tx.Aggregate, prefix: str = METRIC_PREFIX) -> dict[str, float]:
    """Logger metrics for every node that has a score (nodes without samples are left out, not 0)."""
    return {metric_name(n.key, prefix): float(agg.scores[n.key]) for n in tx.ROOT.walk()
            if agg.scores.get(n.key) is not None}


def _fmt(score: float | None, missing: bool = False) -> str:
    if missing:
        return "missing"
    return "-" if score is None else f"{100.0 * score:.1f}"


def weighting_label(summary: Mapping[str, Any]) -> str:
    """The weighting that produced a summary's scores; summaries written before the setting existed used the
    public scorer's (``lmms_eval``)."""
    return str(summary.get("weights") or tx.DEFAULT_WEIGHTING)


def protocol_label(summary: Mapping[str, Any]) -> str:
    """A summary's evaluation protocol (``custom`` for summaries written before protocols existed)."""
    return str(summary.get("protocol") or "custom")


def missing_note(summary: Mapping[str, Any]) -> str | None:
    """One line naming the leaves left out for want of an LLM judge, or None."""
    skipped = (summary.get("judge") or {}).get("skipped_records") or {}
    if not skipped:
        return None
    leaves = ", ".join(f"{k} ({n} records)" for k, n in sorted(skipped.items()))
    return (f"missing (no LLM judge, eval.judge=skip): {leaves}; "
            + ("their ancestors have no score in reference mode" if summary.get("mode") == "reference"
               else "left out of their parents' averages"))


def _label(node: Mapping[str, Any], depth: int) -> str:
    name = node["name"] if depth else "SpatialTree (overall)"
    if depth == 1 and node.get("title"):
        name = f"{name} {node['title']}"
    return "  " * depth + name


def _ci(ci: Any) -> str:
    return "" if not ci else f"[{100.0 * ci[0]:.1f}, {100.0 * ci[1]:.1f}]"


def format_tree(summary: Mapping[str, Any]) -> str:
    """The tree of one summary as a table: node, score x100 (one decimal), its 95% interval when the summary has
    one, samples."""
    rows = []

    def visit(node: Mapping[str, Any], depth: int) -> None:
        rows.append((_label(node, depth), _fmt(node["score"], node.get("missing", False)), _ci(node.get("ci95")),
                     str(node["count"])))
        for child in node.get("children", ()):
            visit(child, depth + 1)

    visit(summary["tree"], 0)
    width = max(len(r[0]) for r in rows) + 2
    repeats = summary.get("repeats") or 1
    head = (f"SpatialTree-Bench  step={summary.get('step')}  protocol={protocol_label(summary)}  "
            f"mode={summary.get('mode')}  weights={weighting_label(summary)}  samples={summary.get('num_samples')}"
            + (f"  passes={repeats} (seeds {summary.get('pass_seeds')})" if repeats > 1 else "")
            + "  scores in % (x100; summary.json keeps fractions)")
    lines = [head, f"{'node':<{width}}{'score':>8}{'95% CI':>15}{'n':>7}"]
    lines += [f"{label:<{width}}{score:>8}{ci:>15}{count:>7}" for label, score, ci, count in rows]
    note = missing_note(summary)
    if "interval" in summary:
        lines.append(summary["interval"])
    return "\n".join(lines + ([note] if note else []))


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-node scores of two summaries and their difference (b - a), in tree order.

    A node scored in only one of them has ``delta`` None. Summaries made in different
    aggregation modes are still compared; :func:`format_compare` warns about it.
    """
    sa, sb = flat_scores(a["tree"]), flat_scores(b["tree"])
    out = []
    for n in tx.ROOT.walk():
        va, vb = sa.get(n.key), sb.get(n.key)
        delta = None if va is None or vb is None else vb - va
        out.append({"key": n.key, "depth": len(n.path), "name": n.name, "a": va, "b": vb, "delta": delta})
    return out


def format_compare(a: Mapping[str, Any], b: Mapping[str, Any], name_a: str = "A", name_b: str = "B",
                   paired: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """Table of per-node deltas (x100, one decimal, signed); with ``paired`` (eval_hooks.intervals.paired_deltas of
    the two prediction files) each delta's paired 95% interval, ``*`` when it excludes 0, and the smallest delta
    the benchmark's size resolves."""
    rows = compare(a, b)
    labels = ["  " * r["depth"] + (r["name"] if r["depth"] else "SpatialTree (overall)") for r in rows]
    width = max(len(s) for s in labels) + 2
    lines = []
    if a.get("mode") != b.get("mode"):
        lines.append(f"warning: aggregation modes differ ({name_a}: {a.get('mode')}, {name_b}: {b.get('mode')})")
    if weighting_label(a) != weighting_label(b):
        lines.append(f"warning: weightings differ ({name_a}: {weighting_label(a)}, {name_b}: {weighting_label(b)}); "
                     "L2 and the overall score are weighted differently")
    if protocol_label(a) != protocol_label(b):
        lines.append(f"warning: evaluation protocols differ ({name_a}: {protocol_label(a)}, "
                     f"{name_b}: {protocol_label(b)})")
    ext_a, ext_b = _answer_extraction(a), _answer_extraction(b)
    if ext_a != ext_b:
        lines.append(f"warning: answer extraction differs ({name_a}: {ext_a}, {name_b}: {ext_b}); "
                     "GRPO-format responses were scored on different text")
    lines.append(f"A = {name_a}\nB = {name_b}\nweights: A {weighting_label(a)}, B {weighting_label(b)}")
    lines.append(f"{'node':<{width}}{'A':>7}{'B':>7}{'B-A':>7}" + (f"{'paired 95% CI':>17}" if paired else ""))
    for label, r in zip(labels, rows):
        delta = "-" if r["delta"] is None else f"{100.0 * r['delta']:+.1f}"
        extra = ""
        if paired:
            p = paired.get(r["key"])
            extra = f"{'-':>17}" if p is None else f"{_ci(p['ci95']) + (' *' if p['significant'] else '  '):>17}"
        lines.append(f"{label:<{width}}{_fmt(r['a']):>7}{_fmt(r['b']):>7}{delta:>7}{extra}")
    if paired:
        root = paired.get("")
        lines.append("* the paired 95% interval excludes 0 (significant); paired bootstrap over the "
                     f"{root['n'] if root else 0} records both evaluated (eval_hooks/intervals.py)")
        if root:
            lines.append(f"smallest resolvable delta (overall) at this benchmark size: "
                         f"{50.0 * (root['ci95'][1] - root['ci95'][0]):.1f} points (half the paired interval)")
    elif paired is not None:
        lines.append("no paired interval: the two evaluations share no record (or a predictions.jsonl is missing)")
    return "\n".join(lines)


def _answer_extraction(summary: Mapping[str, Any]) -> str:
    """``eval.answer_extraction`` of a summary; summaries written before the setting existed scored raw text."""
    return (summary.get("settings") or {}).get("answer_extraction", "none")
