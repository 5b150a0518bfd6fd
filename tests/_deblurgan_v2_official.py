"""DeblurGAN-v2 (MobileNet FPN) in the authors' released layout, and a plain functional reference of it.

``official_file(seed)`` builds what ``fpn_mobilenet.h5`` holds: ``{'model': state_dict}`` with DataParallel's
``module.`` prefix, the backbone stored twice (``fpn.features.N`` and ``fpn.encK.M``, the same tensors),
the unused backbone tail (blocks 16-18), and running statistics for every norm layer; values seeded.

``reference(sd, x)`` computes the authors' inference on (1, 3, H, W) in [-1, 1] (H, W multiples of 32)
straight from those key names, with the norm layers in training mode as the authors run them
(``F.batch_norm(training=True)``: the statistics of the image itself).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

# (expansion, channels, blocks, stride) of MobileNet-v2, then its 1x1 head of 1280 channels
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
ENC = ((0, 2), (2, 4), (4, 7), (7, 11), (11, 16))


def _block_layers() -> List[Tuple[int, List[Tuple[str, tuple]]]]:
    """Per backbone block: [(conv or bn index, shape)] in the authors' Sequential numbering."""
    blocks = [[("0", (32, 3, 3, 3)), ("1", (32,))]]
    cin = 32
    for t, c, n, s in STAGES:
        for i in range(n):
            hid = cin * t
            if t == 1:
                layers = [("conv.0", (hid, 1, 3, 3)), ("conv.1", (hid,)), ("conv.3", (c, hid, 1, 1)), ("conv.4", (c,))]
            else:
                layers = [("conv.0", (hid, cin, 1, 1)), ("conv.1", (hid,)), ("conv.3", (hid, 1, 3, 3)), ("conv.4", (hid,)),
                          ("conv.6", (c, hid, 1, 1)), ("conv.7", (c,))]
            blocks.append(layers)
            cin = c
    blocks.append([("0", (1280, 320, 1, 1)), ("1", (1280,))])
    return blocks


def _bn(sd: Dict[str, torch.Tensor], name: str, ch: int, g: torch.Generator, affine: bool = True) -> None:
    if affine:
        sd[f"{name}.weight"] = 0.5 + torch.rand(ch, generator=g)
        sd[f"{name}.bias"] = 0.1 * torch.randn(ch, generator=g)
    sd[f"{name}.running_mean"] = torch.randn(ch, generator=g)
    sd[f"{name}.running_var"] = 0.5 + torch.rand(ch, generator=g)
    sd[f"{name}.num_batches_tracked"] = torch.tensor(1000)


def _conv(sd, name, shape, g, bias=False):
    fan_in = shape[1] * shape[2] * shape[3]
    sd[f"{name}.weight"] = torch.randn(*shape, generator=g) * (2.0 / fan_in) ** 0.5
    if bias:
        sd[f"{name}.bias"] = 0.1 * torch.randn(shape[0], generator=g)


def official_file(seed: int = 0, width: int = 64, fpn: int = 128, norm: str = "instance") -> Dict[str, object]:
    """``{'model': state_dict}`` as the authors' training script saves it (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    sd: Dict[str, torch.Tensor] = {}
    for b, layers in enumerate(_block_layers()):
        for idx, shape in layers:
            name = f"fpn.features.{b}.{idx}"
            _conv(sd, name, shape, g) if len(shape) == 4 else _bn(sd, name, shape[0], g)
    for level, (a, z) in enumerate(ENC):   # the same tensors under their second name
        for b in range(a, z):
            for key in [k for k in list(sd) if k.startswith(f"fpn.features.{b}.")]:
                sd[key.replace(f"fpn.features.{b}.", f"fpn.enc{level}.{b - a}.")] = sd[key]
    for i in (1, 2, 3):
        _conv(sd, f"fpn.td{i}.0", (fpn, fpn, 3, 3), g, bias=True)
        _bn(sd, f"fpn.td{i}.1", fpn, g, affine=norm == "batch")
    for level, cin in enumerate((16, 24, 32, 64, 160)):
        _conv(sd, f"fpn.lateral{level}", (fpn // 2 if level == 0 else fpn, cin, 1, 1), g)
    for i in (1, 2, 3, 4):
        _conv(sd, f"head{i}.block0", (width, fpn, 3, 3), g)
        _conv(sd, f"head{i}.block1", (width, width, 3, 3), g)
    _conv(sd, "smooth.0", (width, 4 * width, 3, 3), g, bias=True)
    _bn(sd, "smooth.1", width, g, affine=norm == "batch")
    _conv(sd, "smooth2.0", (width // 2, width, 3, 3), g, bias=True)
    _bn(sd, "smooth2.1", width // 2, g, affine=norm == "batch")
    _conv(sd, "final", (3, width // 2, 3, 3), g, bias=True)
    return {"model": {f"module.{k}": v for k, v in sd.items()}}


def _norm(sd, name, x):
    return F.batch_norm(x, sd[f"{name}.running_mean"].clone(), sd[f"{name}.running_var"].clone(),
                        sd.get(f"{name}.weight"), sd.get(f"{name}.bias"), training=True, eps=1e-5)


def _backbone_block(sd, b, x, stride, skip, expand):
    p = f"fpn.features.{b}.conv"
    y = x
    if expand:
        y = F.relu6(_norm(sd, f"{p}.1", F.conv2d(y, sd[f"{p}.0.weight"])))
    dw, dn, pw, pn = (("3", "4", "6", "7") if expand else ("0", "1", "3", "4"))
    w = sd[f"{p}.{dw}.weight"]
    y = F.relu6(_norm(sd, f"{p}.{dn}", F.conv2d(y, w, stride=stride, padding=1, groups=w.shape[0])))
    y = _norm(sd, f"{p}.{pn}", F.conv2d(y, sd[f"{p}.{pw}.weight"]))
    return x + y if skip else y


def _td(sd, name, x):
    return F.relu(_norm(sd, f"{name}.1", F.conv2d(x, sd[f"{name}.0.weight"], sd[f"{name}.0.bias"], padding=1)))


def reference(model_sd: Dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The authors' generator (training-mode norms) on (1, 3, H, W) in [-1, 1], H, W multiples of 32."""
    sd = {k[len("module."):]: v for k, v in model_sd.items()}
    up = lambda t, s: F.interpolate(t, scale_factor=s, mode="nearest")  # noqa: E731
    h = F.relu6(_norm(sd, "fpn.features.0.1", F.conv2d(x, sd["fpn.features.0.0.weight"], stride=2, padding=1)))
    enc, b, cin = [], 1, 32
    for t, c, n, s in STAGES[:6]:
        for i in range(n):
            if b < 16:
                h = _backbone_block(sd, b, h, s if i == 0 else 1, (s if i == 0 else 1) == 1 and cin == c, t != 1)
                if b + 1 in (2, 4, 7, 11, 16):
                    enc.append(h)
            b, cin = b + 1, c
    lat = [F.conv2d(e, sd[f"fpn.lateral{i}.weight"]) for i, e in enumerate(enc)]
    m4 = lat[4]
    m3 = _td(sd, "fpn.td1", lat[3] + up(m4, 2))
    m2 = _td(sd, "fpn.td2", lat[2] + up(m3, 2))
    m1 = _td(sd, "fpn.td3", lat[1] + up(m2, 2))
    head = lambda i, t: F.relu(F.conv2d(F.relu(F.conv2d(t, sd[f"head{i}.block0.weight"], padding=1)),  # noqa: E731
                                        sd[f"head{i}.block1.weight"], padding=1))
    cat = torch.cat([up(head(4, m4), 8), up(head(3, m3), 4), up(head(2, m2), 2), head(1, m1)], 1)
    sm = up(_td(sd, "smooth", cat), 2)
    sm = up(_td(sd, "smooth2", sm + lat[0]), 2)
    return torch.clamp(torch.tanh(F.conv2d(sm, sd["final.weight"], sd["final.bias"], padding=1)) + x, -1, 1)


def authors_predict(top: Dict[str, object], image: torch.Tensor) -> torch.Tensor:
    """The authors' predictor on (1, 3, h, w) in [0, 1]: to [-1, 1], zero pad to (side // 32 + 1) * 32, crop, back."""
    h, w = image.shape[-2:]
    x = F.pad(image * 2 - 1, (0, (w // 32 + 1) * 32 - w, 0, (h // 32 + 1) * 32 - h))
    with torch.no_grad():
        return (reference(top["model"], x)[..., :h, :w] + 1) / 2
