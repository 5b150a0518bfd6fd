"""Build a report page: results of several methods (images or videos), or training runs.

Example::

    from blurtools.metrics.folder_scoring import ScoreOptions
    from blurtools.report import collect, results_report

    results = collect([Path("out/a"), Path("out/b")], [], Path("gt"), Path("blurry"), ScoreOptions(), torch.device("cpu"))
    results_report(results, Path("report.html"), image_mode="copy", options={"gt": "gt"})
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from blurtools.report.assets import AssetFolder
from blurtools.report.collect import Results
from blurtools.report.page import document, made_record, write_report
from blurtools.report.results_page import VIEWER, extremes, sample_table, summary_cards
from blurtools.report.samples import all_sample_panels
from blurtools.report.training import Run, training_section
from blurtools.report.video import all_video_samples, players_html


def convention(options: Dict[str, Any], lpips: bool) -> str:
    """The scoring convention in words, from the score options recorded on the page."""
    ssim = ("skimage (Gaussian \u03c3 = 1.5, 11\u00d711, population covariance, per channel)"
            if options.get("ssim", "skimage") == "skimage" else "MATLAB ssim on the RGB volume (matlab3d)")
    chan = "BT.601 luma (Y)" if options.get("y") else "RGB"
    crop = f"{options['crop_border']} px cropped per side" if options.get("crop_border") else "no border crop"
    text = (f"PSNR and SSIM on {chan}, on the stored integers (data range 255 for 8-bit, 65535 for 16-bit), "
            f"{crop}; SSIM {ssim}; per-image scores averaged over the samples")
    if lpips:
        text += f"; LPIPS-{options.get('lpips')} on RGB in [0, 1]"
    if options.get("video"):
        text += ("; videos scored order-invariantly (forward or reversed, chosen once per sequence by mean PSNR), "
                 "the viewer shows the middle frames")
    return text + ("; identical pairs (PSNR \u221e) are left out of the PSNR mean and median. "
                   "Same scorer as blurtools score.")


def _subtitle(results: Results, options: Dict[str, Any]) -> str:
    what = "sequences" if results.video else "samples"
    inputs = f" &middot; inputs <code>{escape(str(results.inputs.path))}</code>" if results.inputs else ""
    return (f"{len(results.samples)} {what} &middot; {len(results.methods)} method(s) &middot; ground truth "
            f"<code>{escape(str(results.gt))}</code>{inputs}")


def results_body(results: Results, samples: Sequence[Dict[str, Any]], players: Optional[Sequence[Dict[str, Any]]],
                 options: Dict[str, Any]) -> str:
    """Summary, best/worst, (players,) table and viewer of a results page."""
    sorted_hint = ("Click a column to sort (again to reverse); the \u0394PSNR columns sort by the gap between two "
                   "methods. Click a row or a thumbnail to compare the sample side by side.")
    parts = ["<h2>Summary</h2>", summary_cards(results),
             f'<p class="convention">Convention: {escape(convention(options, "lpips" in results.metrics))}</p>',
             "<h2>Best and worst samples per method (by PSNR)</h2>", extremes(results, samples)]
    if players is not None:
        parts += ["<h2>Videos, frame by frame</h2>", '<p class="hint">Every method in the frame order the scorer chose '
                  "(a reversed badge: played backwards to match the ground truth); the PSNR of the shown frame below "
                  "each.</p>", players_html(players)]
    parts += ["<h2>Every sample</h2>", f'<p class="hint">{sorted_hint}</p>', sample_table(results, samples), VIEWER]
    return "".join(parts)


def results_report(results: Results, out: Path, image_mode: str, options: Dict[str, Any], argv: Any = None,
                   title: Optional[str] = None, workers: int = 2, on_done: Any = None) -> int:
    """Write the page (and its pictures) for scored results; returns the number of picture files written."""
    made = made_record(options, argv)
    page_title = title or ("Video results" if results.video else "Deblurring results") + ": " + \
        " vs ".join(m.label for m in results.methods)

    def build(assets: AssetFolder) -> str:
        players = None
        if results.video:
            players, samples = all_video_samples(results, workers, on_done)
        else:
            samples = all_sample_panels(results, assets, workers, on_done)
        data = {"kind": "video" if results.video else "images", "metrics": results.metrics, "samples": samples,
                "videos": players or []}
        return document(page_title, _subtitle(results, options), results_body(results, samples, players, options),
                        data, made)

    return write_report(out, "none" if results.video else image_mode, build)


def training_report(runs: Sequence[Run], out: Path, options: Dict[str, Any], argv: Any = None,
                    title: Optional[str] = None) -> None:
    """Write the page of training runs: curves and configurations, inline SVG only."""
    made = made_record(options, argv)
    page_title = title or "Training: " + ", ".join(r.label for r in runs)
    subtitle = f"{len(runs)} run(s) &middot; " + " &middot; ".join(f"<code>{escape(str(r.path))}</code>" for r in runs)
    body = "<h2>Curves</h2>" + training_section(runs)
    write_report(out, "none", lambda assets: document(page_title, subtitle, body,
                                                      {"kind": "training", "metrics": [], "samples": [], "videos": []},
                                                      made))
