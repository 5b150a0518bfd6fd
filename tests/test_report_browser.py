"""`blurtools report` in a real browser: headless Chromium (Debian's package, installed when missing) opens
the page over the DevTools protocol, with no console error and no request leaving the machine; every sample
is shown, a click on a column header sorts the table, the mouse wheel zooms all panes of the viewer together,
a drag pans them, the error-map toggle swaps the pictures. Screenshots are kept as test artefacts."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _browser import Browser, ensure_chromium
from _report_data import METHODS, make_results

pytestmark = pytest.mark.slow

ARTEFACTS = Path(__file__).resolve().parent.parent / "test-artefacts"


@pytest.fixture(scope="module")
def chromium():
    path, reason = ensure_chromium()
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    paths = make_results(tmp_path_factory.mktemp("results"), n=9, size=(240, 320))
    out = tmp_path_factory.mktemp("page") / "report.html"
    subprocess.run([sys.executable, "-m", "blurtools", "report", *(str(paths[m]) for m in METHODS), "--gt",
                    str(paths["gt"]), "--input", str(paths["blurry"]), "-o", str(out), "-q"], check=True)
    return out


def _keep(path: Path, name: str, capsys) -> Path:
    """Copy a screenshot to test-artefacts/ and print where (past pytest's capture, so the output says it)."""
    ARTEFACTS.mkdir(exist_ok=True)
    kept = ARTEFACTS / name
    shutil.copyfile(path, kept)
    with capsys.disabled():
        print(f"\nscreenshot kept: {kept}")
    return kept


def _column_values(b, col):
    return b.js(f"Array.from(document.querySelectorAll('#samples tbody tr')).map(r => "
                f"r.cells[{col}].getAttribute('data-v'))")


def test_page_in_headless_chromium(chromium, page, tmp_path, capsys):
    b = Browser(chromium)
    try:
        b.open(page.as_uri(), settle=1.5)
        assert b.js("document.title").startswith("Deblurring results")
        # every sample is shown: its row, its thumbnail decoded by the browser
        names = b.js("Array.from(document.querySelectorAll('#samples tbody tr td:nth-child(3)')).map(c => c.textContent)")
        assert sorted(names) == [f"scene_{i:03d}" for i in range(9)]
        assert b.js("Array.from(document.querySelectorAll('#samples img, .thumb img'))"
                    ".every(i => i.complete && i.naturalWidth > 0)")
        b.screenshot(tmp_path / "page.png")
        _keep(tmp_path / "page.png", "report-page.png", capsys)

        # sorting: click the header of sharpnet's PSNR (column 6: #, thumb, name, input PSNR, SSIM, sharpnet PSNR)
        header = "#samples thead th:nth-child(6)"
        assert "sharpnet" in b.js(f"document.querySelector('{header}').textContent")
        b.click(header)
        values = [float(v) for v in _column_values(b, 5)]
        assert values == sorted(values, reverse=True) and values != [float(v) for v in sorted(values)]
        b.click(header)
        assert [float(v) for v in _column_values(b, 5)] == sorted(values)
        b.click("#samples thead th:last-child")  # a gap between two methods
        last = b.js("document.querySelector('#samples thead tr').cells.length") - 1
        gaps = [float(v) for v in _column_values(b, last)]
        assert gaps == sorted(gaps, reverse=True)

        # the viewer: open the first row, wheel-zoom one pane, all panes follow; drag pans them
        b.click("#samples tbody tr:nth-child(1)")
        assert b.js("document.getElementById('viewer').classList.contains('open')")
        assert b.js("document.querySelectorAll('#panes .pane').length") == len(METHODS) + 2
        before = b.js("window.blurReport.state.scale")
        for _ in range(3):
            b.wheel("#panes .pane:nth-child(2) .vp", -240)
        after = b.js("window.blurReport.state.scale")
        assert after > before * 1.9
        transforms = b.js("Array.from(document.querySelectorAll('#panes img')).map(i => getComputedStyle(i).transform)")
        assert len(set(transforms)) == 1 and transforms[0] != "none"
        tx = b.js("window.blurReport.state.tx")
        b.drag("#panes .pane:nth-child(3) .vp", 60, 0)
        assert abs(b.js("window.blurReport.state.tx") - tx - 60) < 1
        b.pump(1.0)
        full = b.js("Array.from(document.querySelectorAll('#panes img')).map(i => i.currentSrc)")
        assert all(src.startswith("file:") and "report_files/" in src for src in full)  # full size on demand
        b.screenshot(tmp_path / "viewer.png")
        _keep(tmp_path / "viewer.png", "report-viewer-zoomed.png", capsys)
        b.click("#error-toggle")
        b.pump(1.0)
        errors = b.js("Array.from(document.querySelectorAll('#panes .pane.method img')).map(i => i.currentSrc)")
        assert all(src.endswith(".error.png") for src in errors)
        b.screenshot(tmp_path / "error.png")
        _keep(tmp_path / "error.png", "report-viewer-error-map.png", capsys)
        b.key("ArrowRight")  # the next sample in the table's current (sorted) order
        assert b.js("window.blurReport.state.sample") == int(b.js(
            "document.querySelector('#samples tbody tr:nth-child(2)').getAttribute('data-sample')"))
        b.key("Escape")
        assert not b.js("document.getElementById('viewer').classList.contains('open')")
        assert b.problems() == []
    finally:
        b.close()


def test_video_and_training_pages_in_headless_chromium(chromium, tmp_path, capsys):
    import imageio.v3 as iio
    import numpy as np
    from skimage import data

    photo = data.astronaut()
    for root in ("gt/clip", "ours/clip"):
        (tmp_path / root).mkdir(parents=True)
    for k in range(5):
        frame = np.ascontiguousarray(photo[100 + 5 * k:196 + 5 * k, 150 + 6 * k:278 + 6 * k])
        iio.imwrite(tmp_path / "gt" / "clip" / f"{k:03d}.png", frame)
        iio.imwrite(tmp_path / "ours" / "clip" / f"{4 - k:03d}.png", frame)  # the scorer must reverse it
    video = tmp_path / "video.html"
    subprocess.run([sys.executable, "-m", "blurtools", "report", str(tmp_path / "ours"), "--gt", str(tmp_path / "gt"),
                    "--video", "-o", str(video), "-q"], check=True)
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(
        f'{{"event": "train", "step": {s}, "stage": "{"a" if s < 50 else "b"}", "loss": {1 / s}}}\n'
        f'{{"event": "val", "step": {s}, "psnr": {20 + s / 10}, "ssim": 0.8}}\n' for s in range(10, 101, 10)))
    training = tmp_path / "training.html"
    subprocess.run([sys.executable, "-m", "blurtools", "report", str(run), "-o", str(training), "-q"], check=True)
    b = Browser(chromium)
    try:
        b.open(video.as_uri(), settle=1.0)
        assert b.js("document.querySelector('.player .badge').textContent") == "reversed"
        first = b.js("document.querySelector('.player img.frame').src")
        b.click(".player button.play")
        b.pump(1.5)
        assert b.js("document.querySelector('.player img.frame').src") != first  # it plays
        assert b.js("document.querySelector('.player .frame-score').textContent").startswith("frame ")
        b.screenshot(tmp_path / "video.png", full_page=True)
        _keep(tmp_path / "video.png", "report-video.png", capsys)
        b.open(training.as_uri(), settle=1.0)
        assert b.js("document.querySelectorAll('svg polyline').length") == 3
        b.screenshot(tmp_path / "training.png", full_page=True)
        _keep(tmp_path / "training.png", "report-training.png", capsys)
        assert b.problems() == []
    finally:
        b.close()
