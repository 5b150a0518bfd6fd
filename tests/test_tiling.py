"""Tiled inference: window layout, blend weights, tiled == untiled for local models, no seams, videos kept in
one time direction, batches, padding, uint8 accumulation."""

import math

import pytest
import torch
from torch import nn

from blurtools.errors import UsageError
from blurtools.infer.tiling import axis_weights, pad_to, run_tiled, window_layout


def _conv_net(layers: int, seed: int = 0) -> nn.Module:
    """3x3 convs with zero padding: receptive-field radius = ``layers`` pixels."""
    torch.manual_seed(seed)
    mods = []
    for i in range(layers):
        mods.append(nn.Conv2d(3 if i == 0 else 8, 3 if i == layers - 1 else 8, 3, padding=1))
        if i < layers - 1:
            mods.append(nn.Tanh())
    return nn.Sequential(*mods).eval()


@pytest.mark.parametrize("length,tile,overlap,multiple", [(1280, 512, 32, 8), (720, 512, 32, 8), (993, 512, 32, 8),
                                                          (513, 512, 32, 1), (100, 40, 16, 1), (64, 64, 8, 8),
                                                          (37, 16, 4, 4), (5000, 512, 64, 16)])
def test_windows_cover_and_weights_sum_to_one(length, tile, overlap, multiple):
    starts, size = window_layout(length, tile, overlap, multiple)
    assert size <= max(tile, 1) or len(starts) == 1
    assert starts[0] == 0 and starts[-1] + size == length
    if len(starts) > 1:
        assert size % multiple == 0 and size <= tile
        assert min(b - a for a, b in zip(starts, starts[1:])) > 0
        assert min(a + size - b for a, b in zip(starts, starts[1:])) >= overlap - 1     # rounding: one pixel
    w = axis_weights(starts, size, overlap)
    total = torch.zeros(length, dtype=torch.float64)
    for i, s in enumerate(starts):
        total[s:s + size] += w[i]
    assert torch.allclose(total, torch.ones_like(total), atol=1e-12)
    # each window keeps a quarter-overlap margin at inner edges with no weight
    m = overlap // 4
    if len(starts) > 1 and m > 0:
        assert float(w[0, -m:].abs().max()) == 0 and float(w[1, :m].abs().max()) == 0


def test_whole_image_when_tiling_is_off_or_not_needed():
    calls = []

    def fn(t):
        calls.append(tuple(t.shape))
        return t

    x = torch.rand(1, 3, 30, 45)
    assert torch.equal(run_tiled(fn, x, tile=0, multiple=8), x)
    assert calls == [(1, 3, 32, 48)]            # padded to the multiple, cropped back
    calls.clear()
    run_tiled(fn, x, tile=64, overlap=8, multiple=8)
    assert calls == [(1, 3, 32, 48)]


@pytest.mark.parametrize("layers,overlap", [(2, 8), (4, 16), (8, 32)])
def test_tiled_equals_untiled_for_local_models(layers, overlap):
    net = _conv_net(layers)
    x = torch.rand(1, 3, 96, 136)
    with torch.inference_mode():
        ref = net(x)
        out = run_tiled(net, x, tile=40, overlap=overlap, multiple=8)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) < 1e-5       # receptive field <= overlap/4: exact


def test_deeper_model_differs_only_near_seams():
    net = _conv_net(10)                                  # radius 10 > the 4-pixel margin of overlap 16
    x = torch.rand(1, 3, 80, 120)
    with torch.inference_mode():
        ref = net(x)
        out = run_tiled(net, x, tile=48, overlap=16, multiple=8)
    err = (out - ref).abs().amax(dim=(0, 1))
    xs, tw = window_layout(120, 48, 16, 8)
    near = torch.zeros(120, dtype=torch.bool)
    for s in xs[1:]:                                      # the columns within reach of an inner window edge
        near[max(0, s - 12):s + 12] = True
    for s in xs[:-1]:
        near[max(0, s + tw - 12):s + tw + 12] = True
    ys, th = window_layout(80, 48, 16, 8)
    near_y = torch.zeros(80, dtype=torch.bool)
    for s in ys[1:]:
        near_y[max(0, s - 12):s + 12] = True
    for s in ys[:-1]:
        near_y[max(0, s + th - 12):s + th + 12] = True
    away = ~near[None, :] & ~near_y[:, None]
    assert away.any() and float(err[away].max()) < 1 / 255
    assert float(err.max()) < 0.5


def test_constant_image_stays_constant_without_seams():
    net = _conv_net(3)
    x = torch.full((1, 3, 120, 150), 0.4)
    with torch.inference_mode():
        ref = net(x)
        out = run_tiled(net, x, tile=32, overlap=16, multiple=8)
    inner = out[..., 4:-4, 4:-4]                          # image borders see the model's own zero padding
    assert float((inner - ref[..., 4:4 + 1, 4:4 + 1]).abs().max()) < 1e-5


def test_blend_is_smooth_where_windows_disagree():
    # every window answers with its own mean: the blend must ramp between them, never jump
    x = torch.linspace(0, 1, 200).view(1, 1, 1, 200).expand(1, 3, 64, 200).contiguous()
    out = run_tiled(lambda t: t.mean(dim=(-2, -1), keepdim=True).expand_as(t), x, tile=64, overlap=32, multiple=8)
    step = (out[..., 1:] - out[..., :-1]).abs().max()
    xs, size = window_layout(200, 64, 32, 8)
    jump = max(abs(float(x[..., a:a + size].mean() - x[..., b:b + size].mean())) for a, b in zip(xs, xs[1:]))
    ramp = 32 - 2 * 8
    assert float(step) <= jump * math.pi / (2 * ramp) * 1.05 + 1e-6     # the raised cosine's steepest slope


def test_uint8_output_is_the_rounded_float_output():
    net = _conv_net(2)
    x = torch.rand(1, 3, 50, 70)
    with torch.inference_mode():
        f = run_tiled(net, x, tile=32, overlap=8, multiple=8)
        u = run_tiled(net, x, tile=32, overlap=8, multiple=8, out_dtype=torch.uint8)
    assert u.dtype == torch.uint8
    assert torch.equal(u, (f.clamp(0, 1) * 255).round().to(torch.uint8))


def test_batches_of_images_and_windows_match_single_runs():
    net = _conv_net(2)
    x = torch.rand(2, 3, 70, 90)
    with torch.inference_mode():
        together = run_tiled(net, x, tile=32, overlap=8, multiple=8, batch=6)
        alone = torch.cat([run_tiled(net, x[i:i + 1], tile=32, overlap=8, multiple=8) for i in range(2)])
    assert float((together - alone).abs().max()) < 1e-6


def test_progress_callback_counts_calls():
    seen = []
    run_tiled(lambda t: t, torch.rand(1, 3, 100, 100), tile=32, overlap=8, multiple=8, batch=2,
              on_window=lambda done, total: seen.append((done, total)))
    n = len(window_layout(100, 32, 8, 8)[0]) ** 2
    assert seen[-1] == (math.ceil(n / 2), math.ceil(n / 2))


def test_video_windows_play_one_way():
    frames = 5
    calls = [0]

    def fn(t):
        # frames brighten over time; every other call returns them reversed, as a video model may
        seq = torch.stack([t + 0.1 * k for k in range(frames)], dim=1)
        calls[0] += 1
        return seq.flip(1) if calls[0] % 2 == 0 else seq

    x = torch.rand(1, 3, 90, 120) * 0.5
    ref = torch.stack([x + 0.1 * k for k in range(frames)], dim=1)
    out = run_tiled(fn, x, tile=40, overlap=16, multiple=8)
    assert calls[0] > 4 and out.shape == (1, frames, 3, 90, 120)
    assert float((out - ref).abs().max()) < 1e-5
    mixed = run_tiled(fn, x, tile=40, overlap=16, multiple=8, align_time=False)
    assert float((mixed - ref).abs().max()) > 0.1                       # without alignment the windows disagree


def test_padding_of_tiny_images():
    x = torch.rand(1, 3, 3, 5)
    seen = []
    out = run_tiled(lambda t: seen.append(tuple(t.shape)) or t * 2, x, tile=64, multiple=8, min_size=32)
    assert seen == [(1, 3, 32, 32)] and torch.allclose(out, x * 2)
    assert pad_to(torch.rand(2, 3, 4, 4), 8, 12).shape == (2, 3, 8, 12)


def test_bad_arguments():
    with pytest.raises(UsageError, match="overlap"):
        run_tiled(lambda t: t, torch.rand(1, 3, 100, 100), tile=32, overlap=32)
    with pytest.raises(UsageError, match="expected an image batch"):
        run_tiled(lambda t: t, torch.rand(3, 10, 10))
    with pytest.raises(UsageError, match="fn must map"):
        run_tiled(lambda t: t[..., :-1], torch.rand(1, 3, 16, 16), tile=0)
