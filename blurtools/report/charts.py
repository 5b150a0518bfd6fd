"""Small inline SVG charts (no plotting library): a score histogram and line charts with marked stages."""

from __future__ import annotations

import math
from html import escape
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: Line colours, distinguishable on the dark page (and for the common colour-vision deficiencies).
PALETTE = ("#6cb6ff", "#ffb454", "#5fd38d", "#ff7b72", "#d2a8ff", "#f778ba", "#7ee2e2", "#c9d1d9")


def nice_ticks(lo: float, hi: float, count: int = 5) -> List[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(v: float) -> str:
    return f"{v:.4g}"


def histogram_svg(values: Sequence[float], lo: float, hi: float, unit: str, bins: int = 24,
                  median: Optional[float] = None, width: int = 300, height: int = 74) -> str:
    """A histogram of ``values`` over the shared range [lo, hi] (same axis on every card), median marked."""
    pad_l, pad_b, pad_t = 4, 16, 4
    plot_w, plot_h = width - 2 * pad_l, height - pad_b - pad_t
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi))
    top = max(int(counts.max()) if len(counts) else 1, 1)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="histogram of {escape(unit)} over {len(values)} samples">']
    bw = plot_w / bins
    for i, c in enumerate(counts):
        if c:
            h = plot_h * c / top
            parts.append(f'<rect class="bar" x="{pad_l + i * bw + 0.5:.1f}" y="{pad_t + plot_h - h:.1f}" '
                         f'width="{max(bw - 1, 1):.1f}" height="{h:.1f}"><title>{edges[i]:.2f}-{edges[i + 1]:.2f} '
                         f'{escape(unit)}: {int(c)}</title></rect>')
    parts.append(f'<line class="axis" x1="{pad_l}" y1="{pad_t + plot_h}" x2="{pad_l + plot_w}" y2="{pad_t + plot_h}"/>')
    for t in nice_ticks(lo, hi, 5):
        x = pad_l + plot_w * (t - lo) / (hi - lo)
        anchor = "start" if x < 20 else ("end" if x > width - 20 else "middle")
        parts.append(f'<text x="{x:.1f}" y="{height - 3}" text-anchor="{anchor}">{_label(t)}</text>')
    if median is not None and math.isfinite(median):
        x = pad_l + plot_w * (min(max(median, lo), hi) - lo) / (hi - lo)
        parts.append(f'<line class="median" x1="{x:.1f}" y1="{pad_t}" x2="{x:.1f}" y2="{pad_t + plot_h}">'
                     f'<title>median {median:.2f} {escape(unit)}</title></line>')
    parts.append("</svg>")
    return "".join(parts)


Series = Tuple[str, Sequence[float], Sequence[float]]  # (name, x values, y values)


def line_chart_svg(series: Sequence[Series], title: str, x_label: str, y_label: str,
                   marks: Sequence[Tuple[float, str]] = (), log_y: bool = False,
                   width: int = 560, height: int = 250) -> str:
    """Lines (one colour per series, PALETTE order) on shared axes; ``marks`` are vertical (x, label) lines."""
    pad_l, pad_r, pad_t, pad_b = 60, 12, 22, 30
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    ys_all = [y for _, _, ys in series for y in ys if math.isfinite(y) and (y > 0 or not log_y)]
    xs_all = [x for _, xs, _ in series for x in xs]
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{pad_l}" y="14" style="fill:#e3e6ec;font-size:12px">{escape(title)}</text>']
    if not ys_all or not xs_all:
        parts.append(f'<text x="{pad_l + pw / 2}" y="{pad_t + ph / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(parts)
    f = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    y_lo, y_hi = f(min(ys_all)), f(max(ys_all))
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    margin = 0.05 * (y_hi - y_lo)
    y_lo, y_hi = y_lo - margin, y_hi + margin
    x_lo, x_hi = min(xs_all), max(xs_all)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1

    def px(x: float) -> float:
        return pad_l + pw * (x - x_lo) / (x_hi - x_lo)

    def py(y: float) -> float:
        return pad_t + ph * (1 - (f(y) - y_lo) / (y_hi - y_lo))

    parts.append(f'<line class="axis" x1="{pad_l}" y1="{pad_t + ph}" x2="{pad_l + pw}" y2="{pad_t + ph}"/>')
    parts.append(f'<line class="axis" x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + ph}"/>')
    for t in nice_ticks(x_lo, x_hi, 6):
        parts.append(f'<text x="{px(t):.1f}" y="{pad_t + ph + 14}" text-anchor="middle">{_label(t)}</text>')
    y_ticks = nice_ticks(y_lo, y_hi, 5)
    if log_y:  # whole powers of ten when the range holds two, else round values of the range
        powers = [float(k) for k in range(math.ceil(y_lo), math.floor(y_hi) + 1)]
        y_ticks = powers if len(powers) >= 2 else [math.log10(v) for v in nice_ticks(10 ** y_lo, 10 ** y_hi, 4) if v > 0]
    for t in y_ticks:
        y = pad_t + ph * (1 - (t - y_lo) / (y_hi - y_lo))
        shown = 10 ** t if log_y else t
        parts.append(f'<line class="axis" x1="{pad_l}" y1="{y:.1f}" x2="{pad_l + pw}" y2="{y:.1f}" opacity=".35"/>'
                     f'<text x="{pad_l - 5}" y="{y + 3:.1f}" text-anchor="end">{_label(shown)}</text>')
    parts.append(f'<text x="{pad_l + pw / 2}" y="{height - 3}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="10" y="{pad_t + ph / 2}" text-anchor="middle" transform="rotate(-90 10 {pad_t + ph / 2})">'
                 f'{escape(y_label)}</text>')
    for x, label in marks:
        parts.append(f'<line x1="{px(x):.1f}" y1="{pad_t}" x2="{px(x):.1f}" y2="{pad_t + ph}" stroke="#9aa1ad" '
                     f'stroke-dasharray="3 3"/><text x="{px(x) + 3:.1f}" y="{pad_t + 9}">{escape(label)}</text>')
    for i, (name, xs, ys) in enumerate(series):
        pts = [(px(x), py(y)) for x, y in zip(xs, ys) if math.isfinite(y) and (y > 0 or not log_y)]
        colour = PALETTE[i % len(PALETTE)]
        if len(pts) == 1:
            parts.append(f'<circle cx="{pts[0][0]:.1f}" cy="{pts[0][1]:.1f}" r="3" fill="{colour}"/>')
        elif pts:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{d}">'
                         f'<title>{escape(name)}</title></polyline>')
    parts.append("</svg>")
    return "".join(parts)
