"""blurtools.metrics: PSNR, SSIM (skimage and MATLAB-3D conventions), LPIPS, order-invariant video scoring.

Inputs are float tensors (B, C, H, W) with values in [0, 1]; ``data_range`` names the integer peak those
values stand for (1.0 plain floats, 255 8-bit, 65535 16-bit) and, by default, values are rounded to that
depth's integers first, so images read from 8/16-bit files score exactly as skimage does on the arrays.
All computation is float64 on the inputs' device; results are (B,) float64 tensors.

Modules: ``psnr``, ``ssim``, ``image`` (compute_image_metrics), ``lpips_metric`` (LpipsMetric), ``video``
(score_video), ``folder_scoring`` (result folders). Import from them: this package itself loads nothing, so
its torch-free modules (``shards``, ``score_notes``) import without torch.
"""
