#!/usr/bin/env python
"""What the demo's runs did, read back from their metrics.jsonl and evaluation summaries (scripts/demo.sh).

    python scripts/demo_summary.py DEMO_OUT [--window 5]

Prints, from DEMO_OUT:
- sft/: the quickstart SFT's loss and held-out accuracy by step; think_sft/: the think-format SFT's loss;
- grpo/: reward, accuracy, think fraction and completion length per level over the first and the last
  WINDOW logged steps, the share of groups with no reward spread, and whether the accuracy reward rose
  beyond its step-to-step noise; whether L1 completions end shorter than L3/L4 ones (auto-think);
- grpo/eval/step_*/: held-out accuracy on the RL task (the learn_heldout prompts, never trained on) at the
  start and the end of GRPO, per level, with 95% bootstrap intervals, and whether it moved beyond them;
  the paired-bootstrap delta on the same records, called a gain only when its 95% interval excludes 0;
- runs/2_think_sft and runs/3_after_grpo: the SpatialTree-Bench hierarchy before and after GRPO, per level
  with intervals and the paired delta, and whether any level fell below its interval.
It makes no claim it cannot back. Draws DEMO_OUT/report/learning_curves.png (SFT losses, SFT held-out
accuracy, GRPO reward per level, GRPO held-out accuracy), which launch/report.py DEMO_OUT then shows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

LEVELS = ("L1", "L2", "L3", "L4")
PER_LEVEL = ("reward", "rewards/accuracy", "think_fraction", "completion_length")


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {i} is not JSON ({exc.msg})") from None
    return rows


def series(rows: list[dict], key: str) -> list[tuple[int, float]]:
    return [(r["step"], float(r[key])) for r in rows if key in r and r[key] is not None]


def window_stats(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of a window of per-step values."""
    mean = statistics.mean(values)
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return mean, se


def summarize_sft(rows: list[dict], name: str = "SFT") -> list[str]:
    lines = []
    loss = series(rows, "train/loss")
    if loss:
        lines.append(f"{name} loss: {loss[0][1]:.3f} at step {loss[0][0]} -> {loss[-1][1]:.3f} at step {loss[-1][0]}")
    acc = series(rows, "bench/overall")
    if acc:
        lines.append(f"{name} held-out accuracy by step: " + ", ".join(f"{s}: {100 * v:.1f}" for s, v in acc))
    return lines or [f"{name}: no metrics.jsonl"]


def read_tree(summary: Path) -> dict[str, tuple[float, float, float, int]]:
    """{"overall"|"L1".."L4": (score, ci95 low, ci95 high, records)} of an evaluation summary.json."""
    try:
        tree = json.loads(summary.read_text())["tree"]
    except (KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{summary}: not an evaluation summary ({exc})") from None
    out = {}
    for node, key in [(tree, "overall")] + [(c, c["key"]) for c in tree.get("children", [])]:
        if node.get("score") is not None and node.get("ci95"):
            out[key] = (node["score"], node["ci95"][0], node["ci95"][1], node.get("count", 0))
    return out


def compare(before: dict, after: dict, title: str, rise_word: str) -> list[str]:
    """Score [interval] before -> after per node; a node moved when the end lies outside the start's interval."""
    lines = [title]
    moved = {"up": [], "down": []}
    for key in ["overall"] + [k for k in ("L1", "L2", "L3", "L4") if k in before and k in after]:
        if key not in before or key not in after:
            continue
        (a, alo, ahi, n), (b, blo, bhi, _) = before[key], after[key]
        lines.append(f"  {key:<8}{100 * a:6.1f} [{100 * alo:5.1f}, {100 * ahi:5.1f}] -> {100 * b:6.1f} "
                     f"[{100 * blo:5.1f}, {100 * bhi:5.1f}]   ({n} records)")
        if b > ahi:
            moved["up"].append(key)
        elif b < alo:
            moved["down"].append(key)
    if moved["up"]:
        lines.append(f"  {rise_word}: {', '.join(moved['up'])} ended above the start's 95% interval.")
    if moved["down"]:
        lines.append(f"  FELL: {', '.join(moved['down'])} ended below the start's 95% interval.")
    if not moved["up"] and not moved["down"]:
        lines.append("  every node ended within the start's 95% interval (no change shown at this sample size).")
    return lines


def eval_steps(run_dir: Path) -> list[Path]:
    steps = [d for d in (run_dir / "eval").glob("step_*") if (d / "summary.json").is_file()]
    return sorted(steps, key=lambda d: int(d.name.split("_")[1]) if d.name.split("_")[1].isdigit() else 1 << 30)


def paired_lines(before: Path, after: Path) -> list[str]:
    """The paired-bootstrap delta (after - before) per level over the records both evaluated
    (eval_hooks.intervals.paired_deltas via the predictions.jsonl beside each summary): "gain" only when its 95%
    interval excludes 0."""
    from eval_hooks.offline import paired_from_files

    a, b = (json.loads(p.read_text()) for p in (before, after))
    deltas = paired_from_files(before, after, a, b)
    if not deltas:
        return ["  paired delta: no predictions.jsonl beside both summaries (or no shared record)"]
    lines = ["  paired delta (after - before, same records, 95% paired bootstrap interval):"]
    for key in [""] + [k for k in LEVELS if k in deltas]:
        d = deltas.get(key)
        if not d:
            continue
        lo, hi = d["ci95"]
        verdict = ("gain: the interval excludes 0" if lo > 0 else "LOSS: the interval excludes 0" if hi < 0
                   else "no change shown: the interval includes 0")
        lines.append(f"  {key or 'overall':<8}{100 * d['delta']:+6.1f} [{100 * lo:+5.1f}, {100 * hi:+5.1f}]   "
                     f"({d['n']} records) {verdict}")
    return lines


def summarize_heldout(grpo_dir: Path) -> list[str]:
    steps = eval_steps(grpo_dir)
    if len(steps) < 2:
        return ["GRPO held-out accuracy: no evaluation at the start and the end in grpo/eval/"]
    first, last = (d / "summary.json" for d in (steps[0], steps[-1]))
    return compare(read_tree(first), read_tree(last),
                   f"GRPO held-out accuracy on the RL task (learn_heldout: the same tasks, rows never trained on), "
                   f"{steps[0].name} -> {steps[-1].name}, 95% bootstrap intervals:", "ROSE") + paired_lines(first, last)


def summarize_hierarchy(before: Path, after: Path) -> list[str]:
    paths = [d / "eval" / "final" / "summary.json" for d in (before, after)]
    if not all(p.is_file() for p in paths):
        return [f"hierarchy: no {paths[0]} or {paths[1]}"]
    return compare(read_tree(paths[0]), read_tree(paths[1]),
                   f"SpatialTree-Bench hierarchy (stand-in), {before.name} -> {after.name}, 95% intervals:",
                   "rose") + paired_lines(*paths)


def summarize_grpo(rows: list[dict], window: int) -> list[str]:
    steps = [r for r in rows if "train/reward" in r]
    if not steps:
        return ["GRPO: no logged training step in metrics.jsonl"]
    w = max(1, min(window, len(steps) // 2 or 1))
    first, last = steps[:w], steps[-w:]
    lines = [f"GRPO, mean of the first {w} and the last {w} of {len(steps)} logged steps (start -> end):",
             f"  {'level':<6}{'reward':>16}{'accuracy':>16}{'think fraction':>18}{'length (tokens)':>20}"]
    lengths = {}
    for lv in LEVELS:
        cells = []
        for key in PER_LEVEL:
            a = [r[f"train/{lv}/{key}"] for r in first if f"train/{lv}/{key}" in r]
            b = [r[f"train/{lv}/{key}"] for r in last if f"train/{lv}/{key}" in r]
            if not a or not b:
                break
            cells.append((statistics.mean(a), statistics.mean(b)))
        else:
            lengths[lv] = cells[3]
            widths = (16, 16, 18, 20)
            lines.append(f"  {lv:<6}" + "".join(f"{a:.2f} -> {b:.2f}".rjust(wd) for (a, b), wd in zip(cells, widths)))
    zero = [r["train/frac_reward_zero_std"] for r in steps if "train/frac_reward_zero_std" in r]
    if zero:
        lines.append(f"  groups with no reward spread (no GRPO signal): {statistics.mean(zero):.2f} of all groups on "
                     f"average ({statistics.mean(zero[:w]):.2f} at the start, {statistics.mean(zero[-w:]):.2f} at the end)")
    acc = [r["train/rewards/accuracy/mean"] for r in steps if "train/rewards/accuracy/mean" in r]
    if len(acc) >= 2 * w and w > 1:
        (m0, s0), (m1, s1) = window_stats(acc[:w]), window_stats(acc[-w:])
        noise = 2 * (s0 ** 2 + s1 ** 2) ** 0.5   # project choice: two standard errors of the window difference
        rose = m1 - m0 > noise and m1 - m0 >= 0.05
        lines.append(f"  accuracy reward {m0:.2f} -> {m1:.2f} (noise +-{noise:.2f}): "
                     + ("it rose beyond its noise." if rose else
                        "NO LEARNING shown: the change is within the step-to-step noise (see README, 'What the "
                        "GRPO stage shows')."))
    if "L1" in lengths and any(lv in lengths for lv in ("L3", "L4")):
        deep = max((lengths[lv][1], lv) for lv in ("L3", "L4") if lv in lengths)
        shorter = lengths["L1"][1] <= deep[0] - 1.0   # project choice: at least one token shorter on average
        lines.append(f"  auto-think: L1 completions end at {lengths['L1'][1]:.2f} tokens, {deep[1]} at {deep[0]:.2f}: "
                     + ("L1 is shorter." if shorter else "L1 is NOT shorter (by a token or more) at this scale."))
    return lines


def draw_curves(sft: list[dict], grpo: list[dict], path: Path, think_sft: list[dict] | None = None,
                heldout: list[tuple[int, float]] | None = None) -> Path | None:
    panels = [("SFT loss", [("quickstart SFT", series(sft, "train/loss")),
                            ("think-format SFT", series(think_sft or [], "train/loss"))], "loss"),
              ("SFT held-out accuracy", [("held-out", [(s, 100 * v) for s, v in series(sft, "bench/overall")])],
               "accuracy x100"),
              ("GRPO reward per level", [(lv, series(grpo, f"train/{lv}/reward")) for lv in LEVELS], "reward"),
              ("GRPO held-out accuracy (RL task)", [("learn_heldout", heldout or [])], "accuracy x100")]
    panels = [(t, [(n, s) for n, s in lines if s], y) for t, lines, y in panels]
    panels = [p for p in panels if p[1]]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (title, lines, ylabel) in zip(axes[0], panels):
        for name, pts in lines:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", markersize=2.5, label=name)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="scripts/demo_summary.py", description=__doc__.splitlines()[0])
    p.add_argument("demo_out", type=Path)
    p.add_argument("--window", type=int, default=5, help="logged steps averaged at the start and at the end")
    args = p.parse_args(argv)
    out = args.demo_out
    try:
        sft, think, grpo = (read_metrics(out / d) for d in ("sft", "think_sft", "grpo"))
        lines = summarize_sft(sft, "quickstart SFT") + summarize_sft(think, "think-format SFT")
        lines += summarize_grpo(grpo, args.window) + summarize_heldout(out / "grpo")
        lines += summarize_hierarchy(out / "runs" / "2_think_sft", out / "runs" / "3_after_grpo")
        heldout = [(int(d.name.split("_")[1]), 100 * read_tree(d / "summary.json")["overall"][0])
                   for d in eval_steps(out / "grpo") if d.name.split("_")[1].isdigit()]
    except (OSError, ValueError) as exc:
        print(f"scripts/demo_summary.py: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    path = draw_curves(sft, grpo, out / "report" / "learning_curves.png", think, heldout)
    print(f"wrote {path}" if path else "learning curves: no run logged a curve")
    pages = [str(d / "report.html") for d in (out / "sft", out / "think_sft", out / "grpo") if (d / "report.html").is_file()]
    if pages:
        print("run pages: " + ", ".join(pages))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
