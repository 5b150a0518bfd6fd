"""The scoring options that `score` and `report` share: SSIM convention, luma, border crop, LPIPS trunk."""

from __future__ import annotations

from enum import Enum

import typer


class SsimMode(str, Enum):
    skimage = "skimage"
    matlab3d = "matlab3d"


class LpipsNet(str, Enum):
    alex = "alex"
    vgg = "vgg"


SsimOption = typer.Option(SsimMode.skimage, "--ssim", help="skimage: Wang 2004 as skimage computes it (gaussian, "
                          "sigma 1.5, population covariance); matlab3d: MATLAB ssim on RGB (the GoPro tables).")
YOption = typer.Option(False, "--y", help="Score the BT.601 Y channel instead of RGB.")
CropBorderOption = typer.Option(0, "--crop-border", min=0, help="Pixels dropped on each side before scoring.")
LpipsOption = typer.Option(None, "--lpips", help="Add LPIPS with this trunk (needs its ImageNet weights in "
                           "torchvision's cache).")
