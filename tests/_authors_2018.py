"""Independent references for the tests of the 2018 releases: the authors' file layouts and formulas.

The key names and shapes of Jin et al.'s four released files and of DeblurGAN's ``latest_net_G.pth``
(PyTorch 0.3: every InstanceNorm carries ``running_mean``/``running_var``) are written out here from the
authors' code, and their forward passes re-implemented with plain ``torch.nn.functional`` calls straight
on the state dicts, one colour at a time as the authors do, so the tests compare blurtools' modules with
something that shares none of their code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from _legacy_files import save_legacy, seeded_state

Shapes = Dict[str, Tuple[int, ...]]
JIN_FILES = ("center_v3.pth", "F35_N8.pth", "F26_N9_from_F35_N8.pth", "F17_N9_from_F26_N9_from_F35_N8.pth")


def _norm(p: str, ch: int, affine: bool = True) -> Shapes:
    out = {f"{p}.weight": (ch,), f"{p}.bias": (ch,)} if affine else {}
    return {**out, f"{p}.running_mean": (ch,), f"{p}.running_var": (ch,)}


def _block(p: str, ch: int) -> Shapes:
    return {**_norm(f"{p}.norm1", ch), **_norm(f"{p}.norm2", ch), **_norm(f"{p}.norm4", ch),
            f"{p}.conv1.weight": (ch, ch, 1, 1), f"{p}.conv2.weight": (ch, ch, 3, 3), f"{p}.conv4.weight": (ch, ch, 3, 3)}


def _fuse(p: str, cin: int, cout: int) -> Shapes:
    return {**_norm(f"{p}.norm1", cin), **_norm(f"{p}.norm2", cin), f"{p}.conv1.weight": (cout, cin, 1, 1),
            f"{p}.conv2.weight": (cout, cin, 3, 3)}


def centre_shapes() -> Shapes:
    s: Shapes = {"conv1_B.weight": (144, 16, 5, 5), "conv2.weight": (64, 3, 3, 3), **_norm("norm3", 64),
                 "conv3.weight": (3, 64, 3, 3)}
    for g in range(1, 5):
        for i in range(3):
            s.update(_block(f"LocalGrad{g}.{i}", 144))
        s.update(_fuse(f"fuse{g}.0", 144, 16))
    s.update(_block("GlobalGrad.0", 64))
    return s


def pair_shapes(prefix: str, n: int) -> Shapes:
    p = prefix
    s: Shapes = {f"{p}.conv1_B.weight": (64, 25, 5, 5), f"{p}.conv1_S1.weight": (32, 25, 5, 5),
                 f"{p}.conv1_S2.weight": (32, 25, 5, 5), f"{p}.conv2.weight": (32, 3, 3, 3), **_norm(f"{p}.norm3", 32),
                 f"{p}.conv3.weight": (3, 32, 3, 3), **_fuse(f"{p}.GlobalGrad.0", 32, 32)}
    for g, count in ((1, n), (2, 4), (3, n)):
        for i in range(count):
            s.update(_block(f"{p}.LocalGrad{g}.{i}", 128))
        s.update(_fuse(f"{p}.fuse{g}.0", 128, 25))
    return s


def jin_states(seed: int) -> Tuple[Dict[str, torch.Tensor], ...]:
    """Seeded state dicts of the four released networks, in the order of ``JIN_FILES``."""
    return (seeded_state(centre_shapes(), seed),
            seeded_state({**pair_shapes("generateFrame3", 4), **pair_shapes("generateFrame5", 4)}, seed + 1),
            seeded_state(pair_shapes("generateFrame2_6", 2), seed + 2),
            seeded_state(pair_shapes("generateFrame1_7", 2), seed + 3))


def write_jin_release(folder: Path, seed: int = 5) -> Tuple[Dict[str, torch.Tensor], ...]:
    """The four files as distributed, ``{'state_dict_G': sd}`` in the legacy format; returns the states."""
    folder.mkdir(parents=True, exist_ok=True)
    states = jin_states(seed)
    for name, sd in zip(JIN_FILES, states):
        save_legacy({"state_dict_G": sd}, folder / name)
    return states


def _a(x: torch.Tensor, sd: Dict[str, torch.Tensor], p: str) -> torch.Tensor:
    return F.relu(F.instance_norm(x, weight=sd.get(f"{p}.weight"), bias=sd.get(f"{p}.bias"), eps=1e-5))


def _res(x, sd, p, d2=1, d4=1):
    short = F.conv2d(_a(x, sd, f"{p}.norm1"), sd[f"{p}.conv1.weight"])
    long = F.conv2d(_a(x, sd, f"{p}.norm2"), sd[f"{p}.conv2.weight"], padding=d2, dilation=d2)
    long = F.conv2d(_a(long, sd, f"{p}.norm4"), sd[f"{p}.conv4.weight"], padding=d4, dilation=d4)
    return x + short + long


def _fu(x, sd, p):
    return (F.conv2d(_a(x, sd, f"{p}.norm1"), sd[f"{p}.conv1.weight"])
            + F.conv2d(_a(x, sd, f"{p}.norm2"), sd[f"{p}.conv2.weight"], padding=1))


def _reshuffle(x: torch.Tensor, r: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, c, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4).reshape(b, c * r * r, h // r, w // r)


def jin_centre_ref(sd, y):
    """The authors' centre network on y (B, 3, H, W), sides multiples of 4."""
    groups = [[(1, 1)] * 3, [(1, 2), (2, 4), (4, 8)], [(8, 4), (4, 2), (2, 1)], [(1, 1)] * 3]
    colours = []
    for c in range(3):
        y0 = _reshuffle(y[:, c:c + 1], 4)
        f = F.conv2d(y0, sd["conv1_B.weight"], padding=2)
        acc = y0
        for g, dil in enumerate(groups, 1):
            for i, (d2, d4) in enumerate(dil):
                f = _res(f, sd, f"LocalGrad{g}.{i}", d2, d4)
            acc = acc + _fu(f, sd, f"fuse{g}.0")
        colours.append(F.pixel_shuffle(acc, 4))
    out = F.conv2d(torch.cat(colours, 1), sd["conv2.weight"], padding=1)
    out = _res(out, sd, "GlobalGrad.0")
    return F.conv2d(_a(out, sd, "norm3"), sd["conv3.weight"], padding=1) + y


def jin_pair_ref(sd, p, n, y, s1, s2):
    """The authors' pair network ``p`` (N8_IN for n = 4, N9_IN for n = 2): the residual, before its reference."""
    groups = [[(1, 1)] * n, [(1, 2), (4, 8), (8, 4), (2, 1)], [(1, 1)] * n]
    colours = []
    for c in range(3):
        r = [_reshuffle(t[:, c:c + 1], 5) for t in (y, s1, s2)]
        f = torch.cat([F.conv2d(r[0], sd[f"{p}.conv1_B.weight"], padding=2),
                       F.conv2d(r[1], sd[f"{p}.conv1_S1.weight"], padding=2),
                       F.conv2d(r[2], sd[f"{p}.conv1_S2.weight"], padding=2)], 1)
        acc = r[2]
        for g, dil in enumerate(groups, 1):
            for i, (d2, d4) in enumerate(dil):
                f = _res(f, sd, f"{p}.LocalGrad{g}.{i}", d2, d4)
            acc = acc + _fu(f, sd, f"{p}.fuse{g}.0")
        colours.append(F.pixel_shuffle(acc, 5))
    out = _fu(F.conv2d(torch.cat(colours, 1), sd[f"{p}.conv2.weight"], padding=1), sd, f"{p}.GlobalGrad.0")
    return F.conv2d(_a(out, sd, f"{p}.norm3"), sd[f"{p}.conv3.weight"], padding=1)


def jin_cascade_ref(states, y):
    """The authors' demo: frames x1 ... x7 of y (B, 3, H, W), sides multiples of 20, stacked (B, 7, 3, H, W)."""
    c, p35, p26, p17 = states
    x4 = jin_centre_ref(c, y)
    x3 = jin_pair_ref(p35, "generateFrame3", 4, y, x4, x4) + x4
    x5 = jin_pair_ref(p35, "generateFrame5", 4, y, x3, x4) + x4
    x2 = jin_pair_ref(p26, "generateFrame2_6", 2, y, x4, x3) + x3
    x6 = jin_pair_ref(p26, "generateFrame2_6", 2, y, x4, x5) + x5
    x1 = jin_pair_ref(p17, "generateFrame1_7", 2, y, x3, x2) + x2
    x7 = jin_pair_ref(p17, "generateFrame1_7", 2, y, x5, x6) + x6
    return torch.stack([x1, x2, x3, x4, x5, x6, x7], 1)


def deblurgan_shapes(ngf: int = 64, blocks: int = 9) -> Shapes:
    """``latest_net_G.pth``: the 2018 ResnetGenerator with dropout (second conv at conv_block.6)."""
    s: Shapes = {"model.1.weight": (ngf, 3, 7, 7), "model.1.bias": (ngf,), **_norm("model.2", ngf, False),
                 "model.4.weight": (2 * ngf, ngf, 3, 3), "model.4.bias": (2 * ngf,), **_norm("model.5", 2 * ngf, False),
                 "model.7.weight": (4 * ngf, 2 * ngf, 3, 3), "model.7.bias": (4 * ngf,), **_norm("model.8", 4 * ngf, False)}
    for i in range(10, 10 + blocks):
        for conv, norm in ((1, 2), (6, 7)):
            s.update({f"model.{i}.conv_block.{conv}.weight": (4 * ngf, 4 * ngf, 3, 3),
                      f"model.{i}.conv_block.{conv}.bias": (4 * ngf,), **_norm(f"model.{i}.conv_block.{norm}", 4 * ngf, False)})
    j = 10 + blocks
    s.update({f"model.{j}.weight": (4 * ngf, 2 * ngf, 3, 3), f"model.{j}.bias": (2 * ngf,),
              **_norm(f"model.{j + 1}", 2 * ngf, False), f"model.{j + 3}.weight": (2 * ngf, ngf, 3, 3),
              f"model.{j + 3}.bias": (ngf,), **_norm(f"model.{j + 4}", ngf, False),
              f"model.{j + 7}.weight": (3, ngf, 7, 7), f"model.{j + 7}.bias": (3,)})
    return s


def deblurgan_ref(sd, x01, blocks: int = 9):
    """The authors' generator with --learn_residual on x01 (B, 3, H, W) in [0, 1], sides multiples of 4, in [0, 1]."""
    def cna(h, i, **kw):
        return F.relu(F.instance_norm(F.conv2d(h, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], **kw)))

    x = (x01 - 0.5) / 0.5
    h = cna(F.pad(x, (3,) * 4, mode="reflect"), 1)
    h = cna(cna(h, 4, stride=2, padding=1), 7, stride=2, padding=1)
    for i in range(10, 10 + blocks):
        p = f"model.{i}.conv_block"
        r = F.relu(F.instance_norm(F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), sd[f"{p}.1.weight"], sd[f"{p}.1.bias"])))
        h = h + F.instance_norm(F.conv2d(F.pad(r, (1,) * 4, mode="reflect"), sd[f"{p}.6.weight"], sd[f"{p}.6.bias"]))
    j = 10 + blocks
    for i in (j, j + 3):
        h = F.relu(F.instance_norm(F.conv_transpose2d(h, sd[f"model.{i}.weight"], sd[f"model.{i}.bias"], stride=2,
                                                      padding=1, output_padding=1)))
    h = torch.tanh(F.conv2d(F.pad(h, (3,) * 4, mode="reflect"), sd[f"model.{j + 7}.weight"], sd[f"model.{j + 7}.bias"]))
    return (torch.clamp(x + h, -1, 1) + 1) / 2


def write_deblurgan_release(path: Path, seed: int = 7) -> Dict[str, torch.Tensor]:
    sd = seeded_state(deblurgan_shapes(), seed)
    save_legacy(sd, path)
    return sd
