#!/usr/bin/env python
"""What the demo's SFT and GRPO runs did, read back from their metrics.jsonl (scripts/demo.sh calls it).

    python scripts/demo_summary.py DEMO_OUT [--window 5]

Prints the SFT loss and held-out accuracy, and GRPO's reward, accuracy, think fraction and completion
length per level over the first and the last WINDOW logged steps, then says in one line whether GRPO's
accuracy reward rose beyond its step-to-step noise (it makes no claim it cannot back). Draws
DEMO_OUT/report/learning_curves.png (SFT loss, SFT held-out accuracy, GRPO reward per level), which the
sweep report (launch/report.py DEMO_OUT) then shows on DEMO_OUT/report.html.
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


def summarize_sft(rows: list[dict]) -> list[str]:
    lines = []
    loss = series(rows, "train/loss")
    if loss:
        lines.append(f"SFT loss: {loss[0][1]:.3f} at step {loss[0][0]} -> {loss[-1][1]:.3f} at step {loss[-1][0]}")
    acc = series(rows, "bench/overall")
    if acc:
        lines.append("SFT held-out accuracy by step: " + ", ".join(f"{s}: {100 * v:.1f}" for s, v in acc))
    return lines or ["SFT: no metrics.jsonl"]


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
        lines.append(f"  groups with no reward spread (no GRPO signal): {statistics.mean(zero):.2f} of all groups "
                     "on average")
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


def draw_curves(sft: list[dict], grpo: list[dict], path: Path) -> Path | None:
    panels = [("SFT loss", [("train/loss", series(sft, "train/loss"))], "loss"),
              ("SFT held-out accuracy", [("held-out", [(s, 100 * v) for s, v in series(sft, "bench/overall")])],
               "accuracy x100"),
              ("GRPO reward per level", [(lv, series(grpo, f"train/{lv}/reward")) for lv in LEVELS], "reward")]
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
    try:
        sft, grpo = read_metrics(args.demo_out / "sft"), read_metrics(args.demo_out / "grpo")
    except (OSError, ValueError) as exc:
        print(f"scripts/demo_summary.py: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(summarize_sft(sft) + summarize_grpo(grpo, args.window)))
    path = draw_curves(sft, grpo, args.demo_out / "report" / "learning_curves.png")
    print(f"wrote {path}" if path else "learning curves: neither run logged a curve")
    pages = [str(d / "report.html") for d in (args.demo_out / "sft", args.demo_out / "grpo") if (d / "report.html").is_file()]
    if pages:
        print("run pages: " + ", ".join(pages))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
