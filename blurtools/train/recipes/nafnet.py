"""Training (fine-tuning) recipe of NAFNet (Chen et al. ECCV 2022) and of spandrel's other deblurrers.

The authors train the GoPro and REDS networks with the PSNR loss alone (weight 1): minus the PSNR of each
image, averaged over the batch. One stage, every parameter trained, on the middle sharp frame; the other
pixel terms of :mod:`blurtools.train.recipes.dm` (``l1``, ``mse``, ``charbonnier``, ``perceptual``) can be
mixed in with ``--loss-weight``. Start from a released file with
``blurtools train --model nafnet --init NAFNet-GoPro-width32.pth``; the authors fine-tuned at learning rates
around 1e-4 and below with crops of 256 (``--patch 256``).
"""

from __future__ import annotations

from dataclasses import replace

from blurtools.train.recipes.dm import RECIPE as DM

# the dm recipe's stage and objective, with the PSNR loss in place of L1
RECIPE = replace(DM, default_weights={**DM.default_weights, "l1": 0.0, "psnr": 1.0})
