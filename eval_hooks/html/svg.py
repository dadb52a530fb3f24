"""Inline SVG line charts: no plotting library, no script, readable from the file alone.

A chart is series of (step, value) points, each optionally with a 95% band (lo, hi) per point. The x axis
ticks are whole steps (a step is an optimizer step: there is no step 2.5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")
W, H = 360, 190
LEFT, RIGHT, TOP, BOTTOM = 48, 10, 22, 30


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]
    band: list[tuple[float, float, float]] = field(default_factory=list)
    """(step, lo, hi): the interval around the line, where the data has one."""


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi]; whole numbers only with ``integer``."""
    if hi <= lo:
        hi = lo + (1.0 if integer else max(abs(lo) * 0.1, 1e-6))
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    first = math.floor(lo / step) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 12))
        t += step
    return ticks or [lo]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 1e-3:
        return f"{v:.1e}"
    return f"{v:.4g}"


def line_chart(title: str, series: Sequence[Series], y_label: str = "", ref_zero: bool = False) -> str:
    """One chart as an ``<svg>`` element; "no data" text when every series is empty."""
    title_el = f'<text x="{LEFT}" y="14" class="ct">{escape(title)}</text>'
    xs = [x for s in series for x, _ in s.points] + [b[0] for s in series for b in s.band]
    ys = [y for s in series for _, y in s.points] + [v for s in series for b in s.band for v in b[1:]]
    if not xs:
        return (f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">{title_el}'
                f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" class="na">no data</text></svg>')
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = min(ys), max(ys)
    if ref_zero:
        y0, y1 = min(y0, 0.0), max(y1, 0.0)
    if y1 == y0:
        pad = abs(y0) * 0.1 or 0.5
        y0, y1 = y0 - pad, y1 + pad
    xt = nice_ticks(x0, x1, 6, integer=all(float(x).is_integer() for x in xs))
    yt = nice_ticks(y0, y1, 5)
    x0, x1 = min(x0, xt[0]), max(x1, xt[-1])
    y0, y1 = min(y0, yt[0]), max(y1, yt[-1])

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def py(y: float) -> float:
        return H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM)

    out = [f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">', title_el]
    for t in yt:
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(t):.1f}" y2="{py(t):.1f}" class="grid"/>'
                   f'<text x="{LEFT - 4}" y="{py(t) + 3:.1f}" text-anchor="end" class="tk">{_fmt(t)}</text>')
    for t in xt:
        label = str(int(t)) if float(t).is_integer() else _fmt(t)
        out.append(f'<text x="{px(t):.1f}" y="{H - BOTTOM + 13}" text-anchor="middle" class="tk">{label}</text>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 3}" text-anchor="middle" class="tk">step</text>')
    if y_label:
        out.append(f'<text x="10" y="{(TOP + H - BOTTOM) / 2}" class="tk" text-anchor="middle" '
                   f'transform="rotate(-90 10 {(TOP + H - BOTTOM) / 2})">{escape(y_label)}</text>')
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        if len(s.band) >= 2:
            upper = " ".join(f"{px(x):.1f},{py(hi):.1f}" for x, _, hi in s.band)
            lower = " ".join(f"{px(x):.1f},{py(lo):.1f}" for x, lo, _ in reversed(s.band))
            out.append(f'<polygon points="{upper} {lower}" fill="{color}" opacity="0.18" class="band"/>')
        elif len(s.band) == 1:
            x, lo, hi = s.band[0]
            out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{py(lo):.1f}" y2="{py(hi):.1f}" '
                       f'stroke="{color}" stroke-width="6" opacity="0.25" class="band"/>')
        if len(s.points) > 1:
            pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        if len(s.points) <= 40:
            out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.2" fill="{color}">'
                    f'<title>{escape(s.label)} step {x:g}: {y:.4g}</title></circle>' for x, y in s.points]
    if len(series) > 1:
        lx = LEFT + 4
        for i, s in enumerate(series[:8]):
            color = PALETTE[i % len(PALETTE)]
            out.append(f'<rect x="{lx}" y="{TOP - 2 + 11 * i}" width="8" height="3" fill="{color}"/>'
                       f'<text x="{lx + 11}" y="{TOP + 2 + 11 * i}" class="lg">{escape(s.label)}</text>')
    out.append("</svg>")
    return "".join(out)
