"""The default deblur's physics refinement: the classical share, registration, and the blend."""

import torch

from blurtools.infer.refine import blend_classical, blend_video, blur_evidence, correction_db
from blurtools.ops.filters import gaussian_blur
from blurtools.ops.warp import shift


def _texture(seed=0, size=96):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 8, size // 8, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def test_evidence_ramps_from_one_to_zero_as_the_network_changes_less():
    assert blur_evidence(20.0) == 1.0
    assert blur_evidence(36.0) == 1.0
    assert abs(blur_evidence(38.0) - 0.5) < 1e-9
    assert blur_evidence(40.0) == 0.0
    assert blur_evidence(55.0) == 0.0
    assert blur_evidence(39.0, ramp_db=0) == 1.0


def test_sharp_input_comes_back_unchanged():
    x = _texture()
    net = x + 0.001 * torch.randn_like(x)          # the network barely changed it: > 40 dB
    assert float(correction_db(net, x)[0]) > 40
    out, infos = blend_classical(x, net.clone(), x.clone())   # and deconvolution found nothing either
    assert torch.equal(out, x) and infos[0].share == 0.0 and infos[0].evidence == 0.0


def test_the_network_change_counts_as_much_as_the_evidence_of_blur():
    x = _texture()
    net = x + 0.0126 * torch.randn_like(x)         # 38 dB: half-way down the network's ramp
    change = float(correction_db(net, x)[0])
    out, infos = blend_classical(x, net.clone(), lambda: x.clone(), weight=0.0)
    e = infos[0].evidence
    assert 0 < e < 1 and abs(e - blur_evidence(change)) < 1e-9
    assert torch.allclose(out, x + e * (net - x), atol=1e-6)


def test_classical_result_is_registered_onto_the_network_result_before_blending():
    sharp = _texture(1)
    blurry = gaussian_blur(sharp, 3.0)
    net = gaussian_blur(sharp, 1.0)                 # a partial deblur: a large correction
    classical = shift(sharp, 3.0, -2.0, mode="bicubic")   # sharper, but 3 px right and 2 px up
    out, infos = blend_classical(blurry, net.clone(), classical)
    assert infos[0].share == 0.7 and infos[0].aligned
    assert abs(infos[0].dx + 3.0) < 0.2 and abs(infos[0].dy - 2.0) < 0.2
    inner = (..., slice(8, -8), slice(8, -8))
    err = lambda a: float(((a - sharp)[inner] ** 2).mean())
    naive = 0.3 * net + 0.7 * classical
    assert err(out) < err(net) and err(out) < 0.5 * err(naive)


def test_batch_images_get_their_own_share():
    sharp = torch.cat([_texture(2), _texture(3)])
    blurry = torch.cat([gaussian_blur(sharp[:1], 3.0), sharp[1:]])
    net = torch.cat([gaussian_blur(sharp[:1], 1.0), sharp[1:]])
    out, infos = blend_classical(blurry, net.clone(), sharp.clone())
    assert infos[0].share > 0 and infos[1].share == 0
    assert torch.equal(out[1], net[1])


def test_video_without_evidence_of_blur_holds_still_on_the_deblurred_image():
    sharp = _texture(4)
    frames = torch.stack([shift(sharp, float(t), 0.0, mode="bicubic")[0] for t in range(-2, 3)])
    out = blend_video(frames.clone(), sharp, evidence=0.0)
    assert torch.allclose(out, sharp.expand_as(out))
    assert blur_evidence(45.0) == 0.0 and blur_evidence(30.0) == 1.0


def test_video_frames_get_the_deblurred_detail_where_they_are():
    sharp = _texture(5)
    truth = torch.stack([shift(sharp, float(t), 0.0, mode="bicubic")[0] for t in (-3, 0, 3)])
    frames = gaussian_blur(truth, 1.5)                          # the network's frames: right place, soft
    out = blend_video((frames * 255).round().to(torch.uint8), sharp, evidence=1.0, weight=0.5)
    assert out.dtype == torch.uint8
    inner = (..., slice(8, -8), slice(8, -8))
    err = lambda a: float(((a.float() / 255 - truth)[inner] ** 2).mean())
    assert err(out) < 0.6 * err((frames * 255).round())


def _shapes(size=128, seed=5):
    """Flat rectangles on a flat ground: sparse gradients, as in most photos."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((1, 3, size, size), 0.3)
    for _ in range(8):
        y0, x0 = torch.randint(0, size - 24, (2,), generator=g).tolist()
        h, w = torch.randint(8, 24, (2,), generator=g).tolist()
        x[..., y0:y0 + h, x0:x0 + w] = torch.rand(3, 1, 1, generator=g)
    return x


def test_sparsity_gain_tells_a_real_deconvolution_from_none():
    from blurtools.infer.classical import linear_motion_kernel
    from blurtools.infer.refine import GAIN_HIGH, GAIN_LOW, deconvolution_evidence, sparsity_gain
    from blurtools.ops.filters import fft_conv2d

    sharp = _shapes()
    blurry = fft_conv2d(sharp, linear_motion_kernel(15, 30), mode="same", pad="replicate")
    assert sparsity_gain(blurry, sharp) > GAIN_HIGH and deconvolution_evidence(sparsity_gain(blurry, sharp)) == 1.0
    assert abs(sparsity_gain(sharp, sharp) - 1) < 1e-9 and deconvolution_evidence(1.0) == 0.0
    assert sparsity_gain(sharp, blurry) < GAIN_LOW          # "deblurring" into a blur is no evidence


def test_deconvolution_evidence_overrules_a_network_that_saw_no_blur():
    """A long blur the network does not recognise (it barely changes the image) still gets the classical share
    when the deconvolution makes the image much sparser (scikit-image's real blurred clock photo)."""
    from blurtools.infer.classical import linear_motion_kernel
    from blurtools.ops.filters import fft_conv2d

    sharp = _shapes()
    blurry = fft_conv2d(sharp, linear_motion_kernel(15, 30), mode="same", pad="replicate")
    net = blurry + 0.001 * torch.randn_like(blurry)       # > 40 dB: no evidence from the network
    assert blur_evidence(float(correction_db(net, blurry)[0])) == 0.0
    out, infos = blend_classical(blurry, net.clone(), lambda: sharp.clone())
    assert infos[0].evidence == 1.0 and infos[0].share == 0.7 and infos[0].sparsity_gain > 1.3
    inner = (..., slice(16, -16), slice(16, -16))
    assert float(((out - sharp)[inner] ** 2).mean()) < 0.2 * float(((net - sharp)[inner] ** 2).mean())


def test_classical_halos_and_new_clipping_do_not_pass_the_blend():
    sharp = torch.full((1, 3, 64, 96), 0.25)
    sharp[..., 48:] = 0.65
    blurry = gaussian_blur(sharp, 2.0)
    net = gaussian_blur(sharp, 1.0)                  # a partial deblur: evidence of blur
    classical = sharp.clone()
    classical[..., 44:48] = 0.0                       # ringing to black before the edge
    classical[..., 48:52] = 1.0                       # and to white after it
    classical[0, 0, :, 60] = 0.9                      # a red fringe
    out, infos = blend_classical(blurry, net.clone(), classical)
    assert infos[0].share > 0.3
    assert out.min() >= 0.25 - 0.02 - 1e-5 and out.max() <= 0.65 + 0.02 + 1e-5
    assert not ((out * 255).round() <= 0).any() and not ((out * 255).round() >= 255).any()
