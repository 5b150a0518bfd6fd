"""Result folders for report tests: crops of real photographs as ground truth, motion-blurred inputs, and\nthree methods of different quality (near-sharp with noise, half-way, the blurry input itself)."""

from pathlib import Path

import numpy as np
from PIL import Image

METHODS = ("sharpnet", "wiener", "identity")


def _photos():
    """Photographs bundled with scikit-image (no download): uint8 (H, W, 3) each."""
    from skimage import data

    return [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]


def _scene(rng: np.random.Generator, photos, h: int, w: int) -> np.ndarray:
    """A uint8 (h, w, 3) crop of one of the photos (resized down first when it is much larger)."""
    photo = photos[int(rng.integers(len(photos)))]
    scale = max(h / photo.shape[0], w / photo.shape[1], min(1.0, 2.2 * max(h, w) / max(photo.shape[:2])))
    if scale < 1:
        size = (max(w, int(photo.shape[1] * scale)), max(h, int(photo.shape[0] * scale)))
        photo = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
    y = int(rng.integers(0, photo.shape[0] - h + 1))
    x = int(rng.integers(0, photo.shape[1] - w + 1))
    return np.ascontiguousarray(photo[y:y + h, x:x + w])


def _blur(img: np.ndarray, length: int) -> np.ndarray:
    """Horizontal motion blur of ``length`` px (box), edges replicated."""
    pad = np.pad(img.astype(np.float32), ((0, 0), (length, length), (0, 0)), mode="edge")
    out = np.mean([pad[:, length + k - length // 2: length + k - length // 2 + img.shape[1]] for k in range(length)], axis=0)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def make_results(root: Path, n: int = 6, size=(96, 128), seed: int = 0) -> dict:
    """root/gt, root/blurry and root/<method> folders of n PNGs each; returns their paths by name."""
    rng = np.random.default_rng(seed)
    photos = _photos()
    h, w = size
    paths = {k: root / k for k in ("gt", "blurry", *METHODS)}
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = f"scene_{i:03d}.png"
        gt = _scene(rng, photos, h, w)
        blurry = _blur(gt, 5 + i % 4)
        Image.fromarray(gt).save(paths["gt"] / name)
        Image.fromarray(blurry).save(paths["blurry"] / name)
        good = np.clip(gt.astype(np.float32) + rng.normal(0, 3 + i % 3, gt.shape), 0, 255).astype(np.uint8)
        Image.fromarray(good).save(paths["sharpnet"] / name)
        mid = np.clip(0.5 * gt.astype(np.float32) + 0.5 * blurry + rng.normal(0, 4, gt.shape), 0, 255).astype(np.uint8)
        Image.fromarray(mid).save(paths["wiener"] / name)
        Image.fromarray(blurry).save(paths["identity"] / name)
    return paths
