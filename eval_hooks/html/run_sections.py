"""The ``run``, ``curves`` and ``tree`` sections of a run page (HTML strings)."""

from __future__ import annotations

import re
import time
from html import escape
from typing import Any

from eval_hooks.html.page import table
from eval_hooks.html.rundata import RunData, series
from eval_hooks.html.svg import Series, line_chart
from eval_hooks.tree import protocol_label, weighting_label

LEVEL_KEY = re.compile(r"^train/(L\d|other)/(.+)$")
# Charts of the whole run, in this order, when the metric was logged (TRL's names after the jsonl renaming).
MAIN_CURVES = (("loss", ("train/loss",)), ("learning rate", ("train/lr",)), ("grad norm", ("train/grad_norm",)),
               ("reward", ("train/reward",)), ("think fraction", ("train/think_fraction",)),
               ("completion length", ("train/completions/mean_length",)),
               ("clipped ratio", ("train/completions/clipped_ratio",)), ("kl", ("train/kl",)),
               ("tokens/s", ("train/tokens_per_s",)))


# ---------------------------------------------------------------------------- run

def _kv(rows: list[tuple[str, Any]]) -> str:
    from html import escape as esc

    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc('-' if v is None else str(v))}</td></tr>"
                               for k, v in rows) + "</table>"


def _recipe_value(text: str | None, dotted: str) -> Any:
    """A value of the run's recipe.yaml by dotted key (None when absent or unreadable)."""
    if not text:
        return None
    import yaml

    try:
        node: Any = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def run_section(data: RunData, recipe_diff: list[tuple[str, Any, Any]] | None, recipe_bases: str | None) -> str:
    info, summ, last = data.run_info or {}, data.train_summary or {}, data.last_summary or {}
    model = _recipe_value(data.recipe_text, "model.name_or_path") or last.get("model")
    parts = ["<h3>Recipe</h3>"]
    name = _recipe_value(data.recipe_text, "name")
    if data.recipe_text is None:
        parts.append('<p class="note">no recipe.yaml in this run directory (an evaluation run, or a run older than '
                     "run_info)</p>")
    if recipe_diff is None:
        parts.append('<p class="muted">what differs from the bases was not computed (the page was written without '
                     "the recipe loader)</p>")
    elif recipe_diff:
        diff = table(["key", "base", "this run"], [[k, repr(a), repr(b)] for k, a, b in recipe_diff])
        parts.append(f"<details{' open' if len(recipe_diff) <= 8 else ''}><summary>recipe <b>{escape(str(name))}"
                     f"</b>: {len(recipe_diff)} key(s) differ from {escape(recipe_bases or 'the schema defaults')}"
                     f"</summary>{diff}</details>")
    else:
        parts.append(f"<p>recipe <b>{escape(str(name))}</b>: no key differs from "
                     f"{escape(recipe_bases or 'the schema defaults')}</p>")
    if data.recipe_text:
        parts.append(f"<details><summary>resolved recipe.yaml</summary><pre>{escape(data.recipe_text)}</pre></details>")
    argv = info.get("argv")
    if argv:
        parts.append(f'<p class="muted">command: {escape(" ".join(map(str, argv)))}</p>')
    parts.append("<h3>Model</h3>")
    parts.append(_kv([("model", model), ("family", _recipe_value(data.recipe_text, "model.family") or _family(model)),
                      ("dtype", _recipe_value(data.recipe_text, "model.dtype")),
                      ("frozen groups", _recipe_value(data.recipe_text, "model.freeze")),
                      ("LoRA", _recipe_value(data.recipe_text, "model.lora.enabled"))]))
    parts.append("<h3>Data mix: planned vs consumed</h3>" + _mix(data))
    parts.append("<h3>Machine and times</h3>")
    times = [r.get("time") for r in data.metrics if isinstance(r.get("time"), (int, float))]
    packages = info.get("packages") or {}
    parts.append(_kv([
        ("launcher", data.launcher), ("host", info.get("host")), ("python", info.get("python")),
        ("git", (info.get("git") or {}).get("commit")), ("world size", last.get("world_size")),
        ("packages", ", ".join(f"{k} {v}" for k, v in packages.items() if v)),
        ("started", info.get("started")),
        ("last metric logged", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(max(times))) if times else None),
        ("steps", summ.get("steps")), ("training seconds", summ.get("seconds")),
        ("finished", "yes (train_summary.json)" if data.train_summary else
         ("evaluation only" if data.launcher == "evaluate" else "no train_summary.json: still running, killed or "
          "pre-empted")),
    ]))
    if data.notes:
        parts.append("<h3>Read notes</h3>" + "".join(f'<p class="note">{escape(n)}</p>' for n in data.notes))
    return "".join(parts)


def _family(model: Any) -> str | None:
    """The model family, asked of the family seam from the checkpoint's config.json (None when it cannot say)."""
    if not model:
        return None
    try:
        from train.models import family_for_checkpoint

        return family_for_checkpoint(str(model)).name
    except Exception:  # a page is written for any run directory: an unreadable model is shown without a family
        return None


def _mix(data: RunData) -> str:
    plan, summ = data.mix_plan, data.train_summary or {}
    out = []
    if plan:
        out.append(f"<p>budget: {escape(str(plan.get('budget')))}; unit {escape(str(plan.get('unit')))}; planned "
                   f"{plan.get('total_samples')} samples" + (f", {plan['total_tokens']:.0f} tokens"
                                                            if plan.get("total_tokens") else "") + "</p>")
        out.append(table(["source", "group", "rows", "planned samples", "planned tokens", "epochs"],
                         [[s.get("name"), s.get("group"), s.get("rows"), s.get("samples"),
                           "-" if s.get("tokens") is None else f"{s['tokens']:.0f}", f"{s.get('epochs', 0):.2f}"]
                          for s in plan.get("sources", [])]))
        groups = plan.get("groups") or {}
        if groups:
            out.append(table(["group", "weight", "planned samples", "planned share"],
                             [[g, p.get("weight"), p.get("samples"), f"{100 * (p.get('share') or 0):.1f}%"]
                              for g, p in groups.items()]))
    consumed = summ.get("samples_seen")
    if consumed is not None:
        planned = (plan or {}).get("total_samples")
        out.append(f"<p>consumed: {consumed} samples" + (f" of {planned} planned" if planned else "")
                   + f"; skipped {summ.get('samples_skipped', 0)} ({escape(str(summ.get('skipped_by_reason') or {}))})."
                   " Per-source consumption is not recorded by the trainer.</p>")
    if summ.get("levels"):
        out.append("<p>GRPO prompts per level: " + escape(", ".join(f"{k} {v}" for k, v in summ["levels"].items()))
                   + "</p>")
    if not out:
        out.append('<p class="muted">no mix_plan.json or train_summary.json (an evaluation run, a GRPO run before '
                   "its end, or a run still starting)</p>")
    return "".join(out)


# ---------------------------------------------------------------------------- curves

def curves_section(data: RunData) -> str:
    keys = {k for row in data.metrics for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}
    charts, used = [], set()
    for title, names in MAIN_CURVES:
        found = [n for n in names if n in keys]
        if found:
            charts.append(line_chart(title, [Series(n, series(data.metrics, n)) for n in found]))
            used.update(found)
    per_level: dict[str, list[str]] = {}
    for k in sorted(keys):
        m = LEVEL_KEY.match(k)
        if m:
            per_level.setdefault(m.group(2), []).append(k)
    for suffix, names in sorted(per_level.items(), key=lambda kv: (not kv[0].startswith(("reward", "rewards/")),
                                                                     kv[0])):
        charts.append(line_chart(f"{suffix} per level", [Series(n.split("/")[1], series(data.metrics, n))
                                                          for n in names]))
        used.update(names)
    parts = ['<div class="charts" id="curves-train">' + "".join(charts) + "</div>" if charts else
             '<p class="muted">no training metrics (metrics.jsonl absent or empty: an evaluation run, or a run that '
             "has not logged yet)</p>"]
    parts.append("<h3>Evaluation over steps (95% interval band where the summary has one)</h3>")
    parts.append(_eval_curves(data))
    rest = sorted(k for k in keys if k.startswith("train/") and k not in used)
    if rest:
        parts.append(f"<details><summary>{len(rest)} other training metrics</summary><div class=\"charts\">"
                     + "".join(line_chart(k, [Series(k, series(data.metrics, k))]) for k in rest) + "</div></details>")
    return "".join(parts)


def _nodes(tree: dict[str, Any], depth: int = 0) -> list[tuple[int, dict[str, Any]]]:
    out = [(depth, tree)]
    for child in tree.get("children", ()):
        out += _nodes(child, depth + 1)
    return out


def _eval_curves(data: RunData) -> str:
    stepped = [(s, summ) for s, summ in data.evaluations if isinstance(s, int)]
    if not stepped:
        return ('<p class="muted">no evaluation at a training step (eval/step_N/summary.json); the last evaluation '
                "is in the tree below</p>")
    by_key: dict[str, tuple[int, str, Series]] = {}
    for step, summ in stepped:
        for depth, node in _nodes(summ["tree"]):
            key = node.get("key", "")
            label = "overall" if key == "" else key
            entry = by_key.setdefault(key, (depth, label, Series(label, [])))
            if node.get("score") is not None:
                entry[2].points.append((float(step), 100.0 * node["score"]))
                ci = node.get("ci95")
                if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
                    entry[2].band.append((float(step), 100.0 * ci[0], 100.0 * ci[1]))
    with_band = sum(1 for _, _, s in by_key.values() if s.band)
    note = ("" if with_band else '<p class="muted">no interval: these summaries carry no ci95 (the evaluation '
            "wrote none)</p>")

    def block(depths: tuple[int, ...]) -> str:
        return "".join(line_chart(label, [s], y_label="score x100") for d, label, s in by_key.values()
                       if d in depths and s.points)

    return (note + '<div class="charts" id="curves-eval">' + block((0, 1)) + "</div>"
            + f'<details><summary>abilities</summary><div class="charts">{block((2,))}</div></details>'
            + f'<details><summary>leaves</summary><div class="charts">{block((3,))}</div></details>')


# ---------------------------------------------------------------------------- tree

def _interval(node: dict[str, Any]) -> tuple[str, str]:
    """(text, bar overlay) of a node's 95% interval; "no interval" when the summary has none."""
    ci = node.get("ci95")
    if not (isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci):
        return '<span class="muted">no interval</span>', ""
    lo, hi = (max(0.0, min(1.0, float(v))) for v in ci)
    return (f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]",
            f'<span class="ci" style="left:{120 * lo:.0f}px;width:{max(1, 120 * (hi - lo)):.0f}px"></span>')


def _tree_node(node: dict[str, Any], depth: int) -> str:
    score = node.get("score")
    name = "SpatialTree (overall)" if depth == 0 else node.get("name", "?")
    if depth == 1 and node.get("title"):
        name += f" {node['title']}"
    text = "missing" if node.get("missing") else ("-" if score is None else f"{100 * score:.1f}")
    ci_text, ci_bar = _interval(node)
    bar = (f'<span class="barbox"><span class="bar" style="width:{120 * max(0.0, min(1.0, score)):.0f}px"></span>'
           f"{ci_bar}</span>") if isinstance(score, (int, float)) else '<span class="barbox"></span>'
    count = node.get("n", node.get("count", 0))
    label = (f'<span class="node" data-key="{escape(node.get("key", ""))}"><b>{escape(name)}</b> {bar} '
             f'<span>{text}</span> {ci_text} <span class="muted">n={count}</span></span>')
    children = node.get("children") or []
    if not children:
        return f"<div class=\"leaf\" style=\"margin-left:18px\">{label}</div>"
    inner = "".join(_tree_node(c, depth + 1) for c in children)
    return f"<details{' open' if depth < 1 else ''}><summary>{label}</summary>{inner}</details>"


def tree_section(data: RunData) -> str:
    if not data.evaluations:
        return '<p class="muted">no evaluation yet (no eval/*/summary.json)</p>'
    step, summ = data.evaluations[-1]
    head = (f"<p>evaluation <b>{escape(str(step))}</b>: protocol {escape(protocol_label(summ))}, mode "
            f"{escape(str(summ.get('mode')))}, weights {escape(weighting_label(summ))}, {summ.get('num_samples')} "
            "records; scores x100</p>")
    controls = '<div class="controls"><button id="tree-expand">expand all</button>' \
               '<button id="tree-collapse">collapse all</button></div>'
    return head + controls + '<div class="tree">' + _tree_node(summ["tree"], 0) + "</div>"
