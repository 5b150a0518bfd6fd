"""Training (fine-tuning) recipe of the DeblurGAN-v2 MobileNet FPN generator (Kupyn et al. ICCV 2019).

The authors' generator loss is a content loss, ``0.5 * MSE(pixels) + 0.006 * MSE(VGG19 conv3_3
features)`` on images in [0, 1], plus ``0.001 *`` an adversarial loss. This recipe keeps those weights and
the pixel term exactly; the feature term compares VGG16 conv3_3 features (the engine's perceptual loss,
the same depth of the same family of network), and the adversarial term is the engine's WGAN-GP with the
PatchGAN critic of the DeblurGAN recipe (the authors use a relativistic least-squares loss with a second,
whole-image critic). One stage, every parameter trained, the critic updated ``critic_steps`` = 5 times per
generator step. Without ImageNet VGG weights: ``--loss-weight perceptual=0``.

Start from the released file with ``blurtools train --model deblurgan-v2 --init fpn_mobilenet.h5``; the
normalisation layers use each image's own statistics in training as in inference, so the batch size does
not change what the network computes.
"""

from __future__ import annotations

from dataclasses import replace

from blurtools.train.recipes.deblurgan import RECIPE as DEBLURGAN

# the DeblurGAN recipe's stage, objectives and critic, with DeblurGAN-v2's loss weights and feature layer
RECIPE = replace(DEBLURGAN, default_weights={"adv": 0.001, "perceptual": 0.006, "mse": 0.5, "l1": 0.0, "gp": 10.0,
                                             "label_noise": 0.0}, vgg_layers=("conv3_3",))
