"""`blurtools report`: the page's structure without a browser (every sample, no external URL, the scorer's
numbers, provenance), video and training pages, bad input; the browser test is in test_report_browser.py."""

import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import imageio.v3 as iio
import numpy as np
import pytest

from _report_data import METHODS, make_results


def run(*args):
    from typer.testing import CliRunner

    from blurtools.cli.main import app

    return CliRunner().invoke(app, ["report", *map(str, args)])


class _Page(HTMLParser):
    """Every URL-bearing attribute, the table rows' sample names, the embedded data."""

    def __init__(self):
        super().__init__()
        self.urls, self.rows, self.data, self._in = [], [], None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href", "action", "poster", "data"):
            if a.get(key):
                self.urls.append(a[key])
        if tag == "tr" and "data-sample" in a:
            self.rows.append(int(a["data-sample"]))
        self._in = a.get("id")

    def handle_data(self, data):
        if self._in == "report-data":
            self.data = json.loads(data)
        self._in = None


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("results"), n=5)


def _external(text):
    """Every http(s)/ftp or protocol-relative URL anywhere in the text (attributes, CSS, script)."""
    return re.findall(r"(?:https?|ftp)://[^\s\"'<>)]+|url\(\s*['\"]?//", text)


@pytest.mark.parametrize("mode", ["copy", "none"])
def test_page_shows_every_sample_with_the_scorers_numbers_and_no_external_url(tmp_path, results, mode):
    out = tmp_path / "r" / "report.html"
    res = run(*(results[m] for m in METHODS), "--gt", results["gt"], "--input", results["blurry"], "-o", out,
              "--images", mode, "-q")
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    assert _external(text) == []
    page = _parse(out)
    assert all(u.startswith(("data:image/", "report_files/")) for u in page.urls), page.urls[:5]
    assert sorted(page.rows) == list(range(5))
    names = [s["name"] for s in page.data["samples"]]
    assert names == [f"scene_{i:03d}" for i in range(5)]
    assert all(f">{n}<" in text for n in names)
    # the numbers are the scorer's: same as blurtools score on that folder
    score = subprocess.run([sys.executable, "-m", "blurtools", "score", str(results["wiener"]), str(results["gt"]),
                            "--json", "-q"], capture_output=True, text=True, check=True)
    rows = {r["name"]: r for r in json.loads(score.stdout)["items"]}
    for sample in page.data["samples"]:
        labels = [p["label"] for p in sample["panels"]]
        assert labels == ["input", *METHODS, "ground truth"]
        wiener = sample["panels"][2]
        assert wiener["psnr"] == rows[sample["name"]]["psnr"] and wiener["ssim"] == rows[sample["name"]]["ssim"]
        if mode == "copy":
            assert (out.parent / wiener["full"]).is_file() and (out.parent / wiener["err"]).is_file()
        else:
            assert wiener["full"] is None and wiener["err_thumb"].startswith("data:image/jpeg;base64,")
    assert (out.parent / "report_files").is_dir() == (mode == "copy")
    made = page.data["made"]
    assert made["tool"] == "blurtools report" and made["options"]["images"] == mode
    assert 'name="generator"' in text and "Options:" in text


def test_gap_columns_and_summary(tmp_path, results):
    out = tmp_path / "report.html"
    assert run(results["sharpnet"], results["identity"], "--gt", results["gt"], "--label", "ours", "--label", "blurry",
               "-o", out, "--images", "none", "-q").exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert "blurry \u2212 ours" in text and "\u0394PSNR" in text
    assert text.count('class="card"') >= 2 and "<svg" in text and "median" in text
    assert "skimage (Gaussian" in text


def test_video_page_plays_every_method_in_the_scorers_order(tmp_path):
    rng = np.random.default_rng(0)
    gt_root, fwd, rev = tmp_path / "gt", tmp_path / "fwd", tmp_path / "rev"
    frames = [np.clip(rng.integers(0, 256, (32, 40, 3)), 0, 255).astype(np.uint8) for _ in range(5)]
    for k, f in enumerate(frames):
        (gt_root / "clip").mkdir(parents=True, exist_ok=True)
        iio.imwrite(gt_root / "clip" / f"{k:03d}.png", f)
        (fwd / "clip").mkdir(parents=True, exist_ok=True)
        noisy = np.clip(f.astype(int) + rng.integers(-6, 7, f.shape), 0, 255).astype(np.uint8)
        iio.imwrite(fwd / "clip" / f"{k:03d}.png", noisy)
    rev.mkdir()
    iio.imwrite(rev / "clip.gif", np.stack(frames[::-1]), duration=100, loop=0)
    out = tmp_path / "v.html"
    res = run(fwd, rev, "--gt", gt_root, "--video", "-o", out, "-q")
    assert res.exit_code == 0, res.output
    page = _parse(out)
    video = page.data["videos"][0]
    assert video["frames"] == 5 and [p["label"] for p in video["panels"]] == ["fwd", "rev", "ground truth"]
    assert video["panels"][0]["order"] == "forward" and video["panels"][1]["order"] == "reversed"
    assert len(video["panels"][1]["frame_psnr"]) == 5 and len(video["panels"][1]["frames"]) == 5
    assert 'class="badge reversed"' in out.read_text() and _external(out.read_text()) == []


def _run_folder(path, stages=("pretrain", "finetune"), steps=40):
    path.mkdir(parents=True)
    lines = []
    for step in range(5, steps + 1, 5):
        stage = stages[0] if step <= steps // 2 else stages[-1]
        lines.append({"event": "train", "step": step, "stage": stage, "loss": 1.0 / step, "total": steps})
        if step % 10 == 0:
            lines.append({"event": "val", "step": step, "psnr": 20 + step / 10, "ssim": 0.5 + step / 100})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (path / "config.json").write_text(json.dumps({"tool": "blurtools train", "config": {"model": "dm", "lr": 2e-4}}))


def test_training_page_draws_curves_with_stages_and_configs(tmp_path):
    _run_folder(tmp_path / "run_a")
    _run_folder(tmp_path / "run_b", stages=("only",))
    out = tmp_path / "t.html"
    res = run(tmp_path / "run_a", tmp_path / "run_b", "-o", out, "-q")
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert text.count("<polyline") == 6  # loss, val PSNR, val SSIM for two runs
    assert "training loss" in text and "validation PSNR" in text and "run_a: finetune" in text
    assert "&quot;lr&quot;: 0.0002" in text and _external(text) == []


def test_bad_input_is_one_clear_line(tmp_path, results):
    res = run(results["wiener"], "-o", tmp_path / "x.html")
    assert res.exit_code == 2 and "not a training run" in res.output
    res = run(results["wiener"], "--gt", tmp_path / "nope", "-o", tmp_path / "x.html")
    assert res.exit_code == 1 and "no such file or folder" in res.output
    res = run(results["wiener"], "--gt", results["gt"], "-o", tmp_path / "x.png")
    assert res.exit_code == 2 and ".html" in res.output
    bad = tmp_path / "bad_run"
    bad.mkdir()
    (bad / "metrics.jsonl").write_text("{not json\n")
    res = run(bad, "-o", tmp_path / "x.html")
    assert res.exit_code == 1 and "line 1 is not JSON" in res.output
    assert not (tmp_path / "x.html").exists() and not list(tmp_path.glob(".x_files*"))


def test_a_100_sample_three_method_page_stays_small(tmp_path):
    paths = make_results(tmp_path / "big", n=100, size=(72, 96), seed=1)
    out = tmp_path / "big.html"
    res = run(*(paths[m] for m in METHODS), "--gt", paths["gt"], "--input", paths["blurry"], "-o", out, "-q")
    assert res.exit_code == 0, res.output
    assert len(_parse(out).rows) == 100
    assert out.stat().st_size < 50e6


def test_identical_pairs_are_capped_as_score_caps_them(tmp_path, results):
    """A result identical to its ground truth shows 100 dB on the page (as `score` reports it), and the
    method's mean is score's mean, not a mean that leaves that sample out."""
    import shutil

    same = tmp_path / "same"
    shutil.copytree(results["sharpnet"], same)
    shutil.copy(results["gt"] / "scene_001.png", same / "scene_001.png")
    out = tmp_path / "report.html"
    assert run(same, "--gt", results["gt"], "-o", out, "--images", "none", "-q").exit_code == 0
    score = subprocess.run([sys.executable, "-m", "blurtools", "score", str(same), str(results["gt"]), "--json", "-q"],
                           capture_output=True, text=True, check=True)
    doc = json.loads(score.stdout)
    page = _parse(out)
    panel = {s["name"]: s["panels"][0] for s in page.data["samples"]}
    assert panel["scene_001"]["psnr"] == 100.0 == {r["name"]: r for r in doc["items"]}["scene_001"]["psnr"]
    text = out.read_text(encoding="utf-8")
    assert f"{doc['summary']['psnr']:.2f}" in text
    assert "1 identical: PSNR capped at 100 dB" in text
