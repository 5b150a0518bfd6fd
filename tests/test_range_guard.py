"""The deblur's range guard: halos and new clipping beyond the blurry input's local range are removed, detail
inside it is kept."""

import torch

from blurtools.ops.range_guard import limit_to_local_range, local_range


def _step(h=32, w=64, lo=0.2, hi=0.7):
    x = torch.full((1, 3, h, w), lo)
    x[..., w // 2:] = hi
    return x


def test_local_range_is_the_running_min_and_max():
    x = torch.rand(1, 2, 20, 30)
    lo, hi = local_range(x, 5)
    assert torch.equal(hi[0, 1, 10, 10], x[0, 1, 8:13, 8:13].max())
    assert torch.equal(lo[0, 0, 3, 7], x[0, 0, 1:6, 5:10].min())
    assert torch.equal(hi[0, 0, 0, 0], x[0, 0, :3, :3].max())        # borders replicate


def test_ringing_and_new_clipping_are_removed_detail_inside_the_range_kept():
    blurry = _step()
    ringing = blurry.clone()
    ringing[..., 28:32] = 0.0          # a dark halo before the edge, driven to black (new clipping)
    ringing[..., 32:36] = 1.0          # a bright one after it, to white
    ringing[0, 0, :, 40] = 0.75        # a red fringe within the margin: kept
    out = limit_to_local_range(ringing.clone(), blurry, window=9, margin=0.02)
    assert out.min() >= 0.2 - 0.02 - 1e-6 and out.max() <= 0.7 + 0.02 + 1e-6
    assert not ((out <= 0) | (out >= 1)).any()
    assert torch.allclose(out[0, 0, :, 40], torch.full((32,), 0.72))
    inside = blurry + 0.01 * torch.randn_like(blurry).clamp(-1, 1)
    assert torch.equal(limit_to_local_range(inside.clone(), blurry, 9, 0.02), inside.clamp(0, 1))
