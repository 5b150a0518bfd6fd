"""examples/pipeline.mk end to end with tiny settings: blur-synth -> pack-h5 -> train -> deblur /
extract-video -> score, as a user would run it (slow: about a minute on 2 cores)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _moving_texture_video(path: Path, frames: int = 120, size=(48, 64)) -> None:
    """A smooth texture panning one pixel per frame (no scene cuts): 17 windows of 7 frames."""
    from blurtools.io.video import write_mp4

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size[0] // 8, (size[1] + frames) // 8 + 1, 3)).astype(np.uint8)
    big = np.kron(base, np.ones((8, 8, 1), np.uint8))
    write_mp4(path, [big[:, i:i + size[1]] for i in range(frames)], fps=30)


@pytest.mark.slow
def test_pipeline_makefile_runs_end_to_end(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    video = tmp_path / "clip.mp4"
    _moving_texture_video(video)
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    work = tmp_path / "out"
    cmd = ["make", "-f", str(ROOT / "examples" / "pipeline.mk"), f"VIDEO={video}", f"WORK={work}", "STEPS=4",
           "BATCH=2", "PATCH=32", "DEVICE=cpu", f"BT={sys.executable} -m blurtools",
           "MODEL_ARGS=--model-arg width=8 --model-arg growth=4 --model-arg blocks=[1,1,1]",
           "VMODEL_ARGS=--model-arg width=8 --model-arg blocks=1 --loss-weight adversarial=0 --loss-weight contiguous=0"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    scores = json.loads((work / "scores.json").read_text())
    video_scores = json.loads((work / "video-scores.json").read_text())
    assert scores["summary"]["count"] >= 1 and scores["summary"]["psnr"] > 10
    assert video_scores["summary"]["count"] >= 1 and "order" in video_scores["items"][0]
    # a second run has nothing left to do
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert again.returncode == 0 and "blur-synth" not in again.stdout
