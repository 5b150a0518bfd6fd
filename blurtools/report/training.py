"""Training runs on a report: loss and validation PSNR curves of one or several runs, stages marked.

A run folder is what ``blurtools train`` writes: ``RUN/metrics.jsonl`` (one JSON record per line; "train"
records carry step, stage and the loss terms, "val" records step, psnr and ssim) and ``RUN/config.json``
(tool, version, the configuration and what was resolved from it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from blurtools.errors import BlurtoolsError
from blurtools.report.charts import PALETTE, line_chart_svg

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
DASH = "\u2013"


def is_run_folder(path: Path) -> bool:
    """True for a folder holding a training run's metrics.jsonl."""
    return Path(path).is_dir() and (Path(path) / METRICS_FILE).is_file()


@dataclass
class Run:
    """One run: label, folder, train and val records in step order (a step logged twice keeps the last),
    the stage boundaries [(first step, stage name)] and the config document (empty when missing)."""

    label: str
    path: Path
    train: List[Dict[str, Any]] = field(default_factory=list)
    val: List[Dict[str, Any]] = field(default_factory=list)
    stages: List[Tuple[int, str]] = field(default_factory=list)
    config: Dict[str, Any] = field(default_factory=dict)


def read_run(path: Path, label: str) -> Run:
    """Read a run folder; BlurtoolsError naming the file and line on a damaged record."""
    path = Path(path)
    if not is_run_folder(path):
        raise BlurtoolsError(f"{path}: not a training run (no {METRICS_FILE}; expected a folder written by blurtools train)")
    by_step: Dict[Tuple[str, int], Dict[str, Any]] = {}
    with open(path / METRICS_FILE, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise BlurtoolsError(f"{path / METRICS_FILE}: line {number} is not JSON") from None
            if isinstance(rec, dict) and rec.get("event") in ("train", "val") and isinstance(rec.get("step"), int):
                by_step[(rec["event"], rec["step"])] = rec
    run = Run(label, path)
    for (event, _), rec in sorted(by_step.items(), key=lambda kv: kv[0][1]):
        (run.train if event == "train" else run.val).append(rec)
    last = None
    for rec in run.train:
        if rec.get("stage") != last:
            run.stages.append((int(rec["step"]), str(rec.get("stage"))))
            last = rec.get("stage")
    config = path / CONFIG_FILE
    if config.is_file():
        try:
            run.config = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise BlurtoolsError(f"{config}: not valid JSON") from None
    return run


def _series(runs: Sequence[Run], records: str, key: str) -> List[Tuple[str, List[float], List[float]]]:
    out = []
    for run in runs:
        recs = [r for r in getattr(run, records) if isinstance(r.get(key), (int, float))]
        out.append((run.label, [float(r["step"]) for r in recs], [float(r[key]) for r in recs]))
    return out


def _marks(runs: Sequence[Run]) -> List[Tuple[float, str]]:
    """Vertical marks where a stage begins (the first stage of each run is not marked)."""
    return [(float(step), (f"{run.label}: " if len(runs) > 1 else "") + name)
            for run in runs for step, name in run.stages[1:]]


def training_section(runs: Sequence[Run]) -> str:
    """Legend, loss curve (log scale), validation PSNR and SSIM curves, then each run's stages and config."""
    legend = "".join(f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(r.label)}</span>'
                     for i, r in enumerate(runs))
    marks = _marks(runs)
    charts = [line_chart_svg(_series(runs, "train", "loss"), "training loss", "step", "loss", marks, log_y=True),
              line_chart_svg(_series(runs, "val", "psnr"), "validation PSNR", "step", "dB", marks)]
    if any(isinstance(r.get("ssim"), (int, float)) for run in runs for r in run.val):
        charts.append(line_chart_svg(_series(runs, "val", "ssim"), "validation SSIM", "step", "SSIM", marks))
    parts = [f'<div class="legend">{legend}</div><div class="runs">',
             "".join(f'<div class="card">{c}</div>' for c in charts), "</div>"]
    for run in runs:
        best = max((r["psnr"] for r in run.val if isinstance(r.get("psnr"), (int, float))), default=None)
        last = run.train[-1] if run.train else {}
        stages = ", ".join(f"{escape(name)} from step {step}" for step, name in run.stages) or "none logged"
        facts = (f"{len(run.train)} train and {len(run.val)} validation records; last step {last.get('step', DASH)}"
                 + (f" of {last['total']}" if "total" in last else "")
                 + (f"; best validation PSNR {best:.2f} dB" if best is not None else "") + f"; stages: {stages}")
        config = json.dumps(run.config, indent=2, sort_keys=True, default=str) if run.config else "(no config.json)"
        parts.append(f'<details class="config"><summary><b>{escape(run.label)}</b> <span class="dim mono">'
                     f'{escape(str(run.path))}</span> &middot; {facts}</summary><pre class="mono">{escape(config)}</pre></details>')
    return "".join(parts)
