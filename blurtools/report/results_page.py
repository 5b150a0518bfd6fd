"""The HTML of an image-results page: summary cards, best and worst samples, the table, the viewer shell.

Everything a reader needs without scripts is rendered here (numbers, thumbnails, every sample's row);
``static/report.js`` adds sorting, the viewer and the players.
"""

from __future__ import annotations

import math
from html import escape
from itertools import combinations
from typing import Any, Dict, List, Optional, Sequence, Tuple

from blurtools.metrics.score_notes import IDENTICAL_PSNR_DB
from blurtools.report.charts import histogram_svg
from blurtools.report.collect import Method, Results, method_stats

#: Larger is better for these; LPIPS is a distance (smaller is better).
HIGHER_BETTER = {"psnr": True, "ssim": True, "lpips": False}
UNITS = {"psnr": "dB", "ssim": "", "lpips": ""}
EXTREMES = 3


def fmt(v: Any, key: str) -> str:
    """A metric for people: PSNR with 2 decimals, SSIM / LPIPS with 4; a dash when missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "\u2013"
    if isinstance(v, float) and math.isinf(v):
        return "\u221e"
    return f"{v:.2f}" if "psnr" in key else f"{v:.4f}"


def _data_v(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else repr(float(v))


def summary_cards(results: Results) -> str:
    """One card per method (and the inputs): count, mean and median of each metric, a PSNR histogram."""
    sources = ([results.inputs] if results.inputs else []) + results.methods
    stats = {m.label: method_stats(m, results.metrics) for m in sources}
    every = [v for s in stats.values() for v in s["psnr"]["values"]]
    lo, hi = (math.floor(min(every)), math.ceil(max(every))) if every else (0.0, 1.0)
    best = {}
    for key in results.metrics:
        means = [(stats[m.label][key]["mean"], m.label) for m in results.methods if stats[m.label][key]["mean"] is not None]
        if means:
            best[key] = (max if HIGHER_BETTER[key] else min)(means)[1]
    cards = []
    for m in sources:
        s = stats[m.label]
        rows = []
        for key in results.metrics:
            mark = ' class="best-mark"' if best.get(key) == m.label and len(results.methods) > 1 else ""
            arrow = "\u2191" if HIGHER_BETTER[key] else "\u2193"
            rows.append(f"<tr><td>{key.upper()} {arrow}</td><td{mark}>{fmt(s[key]['mean'], key)}</td>"
                        f"<td>{fmt(s[key]['median'], key)}</td></tr>")
        chart = histogram_svg(s["psnr"]["values"], lo, hi, "dB PSNR", median=s["psnr"]["median"])
        kind = " (blurry input)" if m is results.inputs else ""
        said = _notes_line(m.notes)
        cards.append(f'<div class="card"><h3>{escape(m.label)}<span class="dim">{kind}</span></h3>'
                     f'<div class="dim mono">{escape(str(m.path))}</div>'
                     f"<table><tr><th></th><th>mean</th><th>median</th></tr>{''.join(rows)}</table>"
                     f'{chart}<div class="dim">{s["count"]} samples; PSNR histogram, median marked{said}</div></div>')
    return f'<div class="cards">{"".join(cards)}</div>'


def _notes_line(notes: Dict[str, int]) -> str:
    """What the scorer did to a method's rows, as ``score`` says it under its table ("" when nothing)."""
    parts = []
    if notes.get("psnr_capped"):
        parts.append(f"{notes['psnr_capped']} identical: PSNR capped at {IDENTICAL_PSNR_DB:g} dB")
    if notes.get("converted_to_gray"):
        parts.append(f"{notes['converted_to_gray']} RGB converted to gray to meet gray ground truth")
    return "".join(f"; {escape(p)}" for p in parts)


def _thumb(index: int, uri: str, caption: str, title: str) -> str:
    return (f'<figure class="thumb" data-sample="{index}" title="{escape(title)}"><img src="{uri}" alt="{escape(title)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def extremes(results: Results, samples: Sequence[Dict[str, Any]]) -> str:
    """Per method: its best and its worst samples by PSNR, as thumbnails of its own output."""
    index = {s["name"]: i for i, s in enumerate(samples)}
    blocks = []
    for m in results.methods:
        scored = sorted(((r["psnr"], k) for k, r in m.rows.items() if isinstance(r.get("psnr"), (int, float))),
                        key=lambda vk: (-vk[0], vk[1]))
        if not scored:
            continue
        n = min(EXTREMES, max(1, len(scored) // 2))
        lines = []
        for title, chosen in (("best", scored[:n]), ("worst", list(reversed(scored[-n:])))):
            thumbs = []
            for value, key in chosen:
                i = index[key]
                panel = next(p for p in samples[i]["panels"] if p["label"] == m.label and p["kind"] == "method")
                thumbs.append(_thumb(i, panel["thumb"], f"{fmt(value, 'psnr')} dB \u00b7 {key}", f"{m.label}: {key}"))
            lines.append(f'<div class="dim">{title}</div><div class="strip">{"".join(thumbs)}</div>')
        blocks.append(f'<div class="card"><h3>{escape(m.label)}</h3>{"".join(lines)}</div>')
    return f'<div class="extremes">{"".join(blocks)}</div>'


def gap_pairs(methods: Sequence[Method]) -> List[Tuple[Method, Method]]:
    """Which PSNR gaps the table shows: every pair for up to four methods, else each against the first."""
    if len(methods) <= 4:
        return list(combinations(methods, 2))
    return [(methods[0], m) for m in methods[1:]]


def _header(results: Results, gaps: List[Tuple[Method, Method]]) -> str:
    cells = ['<th data-type="text" class="name" data-first="1">#</th>', '<th data-type="none"></th>',
             '<th data-type="text" class="name" data-first="1">sample</th>']
    groups = ([results.inputs] if results.inputs else []) + results.methods
    for m in groups:
        for j, key in enumerate(results.metrics):
            first = "-1" if HIGHER_BETTER[key] else "1"
            cls = ' class="group-start"' if j == 0 else ""
            cells.append(f'<th{cls} data-first="{first}" title="{escape(m.label)} {key.upper()}">'
                         f"{escape(m.label)}<br><span class=dim>{key.upper()}</span></th>")
    for a, b in gaps:
        cls = ' class="group-start"' if (a, b) == gaps[0] else ""
        cells.append(f'<th{cls} title="PSNR of {escape(b.label)} minus PSNR of {escape(a.label)}, dB">'
                     f"{escape(b.label)} \u2212 {escape(a.label)}<br><span class=dim>\u0394PSNR</span></th>")
    return "<tr>" + "".join(cells) + "</tr>"


def _row(results: Results, i: int, sample: Dict[str, Any], gaps: List[Tuple[Method, Method]]) -> str:
    name = sample["name"]
    shown = sample.get("mini") or (sample["panels"][0]["thumb"] if sample["panels"] else "")
    cells = [f'<td class="name" data-v="{i}">{i + 1}</td>', f'<td><img src="{shown}" alt="" loading="lazy"></td>',
             f'<td class="name" data-v="{escape(name)}">{escape(name)}</td>']
    for m in ([results.inputs] if results.inputs else []) + results.methods:
        for j, key in enumerate(results.metrics):
            v = m.rows.get(name, {}).get(key)
            winner = _winner(results, name, key)
            cls = " ".join(c for c in ("group-start" if j == 0 else "", "win" if winner == m.label else "") if c)
            attr = f' class="{cls}"' if cls else ""
            cells.append(f'<td{attr} data-v="{_data_v(v)}">{fmt(v, key)}</td>')
    for a, b in gaps:
        va, vb = a.rows.get(name, {}).get("psnr"), b.rows.get(name, {}).get("psnr")
        gap = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        sign = "" if gap is None or not math.isfinite(gap) else (" gap-pos" if gap > 0 else " gap-neg" if gap < 0 else "")
        first = ' group-start' if (a, b) == gaps[0] else ""
        text = fmt(gap, "psnr") if gap is None or not math.isfinite(gap) else f"{gap:+.2f}"
        cells.append(f'<td class="gap{sign}{first}" data-v="{_data_v(gap)}">{text}</td>')
    return f'<tr data-sample="{i}">{"".join(cells)}</tr>'


def _winner(results: Results, name: str, key: str) -> Optional[str]:
    vals = [(m.rows[name][key], m.label) for m in results.methods
            if name in m.rows and isinstance(m.rows[name].get(key), (int, float))]
    if len(results.methods) < 2 or len(vals) < 2:
        return None
    return (max if HIGHER_BETTER[key] else min)(vals)[1]


def sample_table(results: Results, samples: Sequence[Dict[str, Any]]) -> str:
    """Every sample, one row: each method's metrics (the best per row highlighted) and the PSNR gaps."""
    gaps = gap_pairs(results.methods)
    body = "".join(_row(results, i, s, gaps) for i, s in enumerate(samples))
    return (f'<div class="table-wrap"><table class="samples sortable" id="samples"><thead>{_header(results, gaps)}'
            f"</thead><tbody>{body}</tbody></table></div>")


VIEWER = """<div id="viewer" role="dialog" aria-label="side-by-side viewer">
<div class="bar"><span class="title" id="viewer-title"></span>
<button id="viewer-prev" title="previous sample (left arrow)">&#9664;</button>
<button id="viewer-next" title="next sample (right arrow)">&#9654;</button>
<button id="zoom-fit" title="fit (0)">fit</button><button data-zoom="1" title="1:1 (1)">1:1</button>
<button data-zoom="2">2&times;</button><button data-zoom="4">4&times;</button><button data-zoom="8">8&times;</button>
<span id="zoom-level"></span>
<button id="error-toggle" aria-pressed="false" title="show |A &minus; GT| (E)">error map</button>
<button id="viewer-close" title="close (Esc)">&#10005;</button></div>
<div id="panes"></div>
<div class="keys">wheel: zoom (all panes together) &middot; drag: pan &middot; double-click or 0: fit &middot; 1: 1:1 &middot;
E: error map |A &minus; GT| (black = equal, white &ge; 1/8 of the range) &middot; &larr; &rarr;: samples &middot; Esc: close</div>
</div>"""
