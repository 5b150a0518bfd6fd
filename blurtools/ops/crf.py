"""Camera response functions: display (sRGB-encoded) values <-> linear light.

A blurry photograph integrates *light*, so frames are averaged after ``to_linear`` and mapped back with
``from_linear`` (the blur model B = g((1/N) sum g^-1(S_i)), g the camera response). Values are floats in [0, 1], any shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from blurtools.errors import UsageError


@dataclass(frozen=True)
class Crf:
    """A camera response ``g``: ``kind`` is ``linear``, ``gamma`` (with ``gamma``) or ``srgb``."""

    kind: str
    gamma: float = 2.2

    def __str__(self) -> str:
        return f"gamma:{self.gamma:g}" if self.kind == "gamma" else self.kind


CRFS = {"linear": Crf("linear"), "gamma": Crf("gamma", 2.2), "srgb": Crf("srgb")}


def parse_crf(spec: "str | Crf") -> Crf:
    """Parse ``linear``, ``gamma``, ``gamma:G`` or ``srgb`` into a :class:`Crf`.

    Example:
        >>> parse_crf("gamma:2.4")
        Crf(kind='gamma', gamma=2.4)
    """
    if isinstance(spec, Crf):
        return spec
    text = str(spec).strip().lower()
    if text in CRFS:
        return CRFS[text]
    if text.startswith("gamma:"):
        try:
            g = float(text.split(":", 1)[1])
        except ValueError:
            raise UsageError(f"--crf {spec}: expected gamma:G with G a number, e.g. gamma:2.2") from None
        if not g > 0:
            raise UsageError(f"--crf {spec}: the gamma must be positive")
        return Crf("gamma", g)
    raise UsageError(f"--crf {spec}: expected one of linear, gamma, gamma:G, srgb")


def to_linear(x: torch.Tensor, crf: "str | Crf" = "gamma") -> torch.Tensor:
    """Map display values in [0, 1] to linear light in [0, 1] (the inverse response ``g^-1``)."""
    c = parse_crf(crf)
    x = x.clamp(0, 1)
    if c.kind == "linear":
        return x
    if c.kind == "gamma":
        return x.pow(c.gamma)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).pow(2.4))


def from_linear(x: torch.Tensor, crf: "str | Crf" = "gamma") -> torch.Tensor:
    """Map linear light in [0, 1] to display values in [0, 1] (the response ``g``)."""
    c = parse_crf(crf)
    x = x.clamp(0, 1)
    if c.kind == "linear":
        return x
    if c.kind == "gamma":
        return x.pow(1.0 / c.gamma)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(0.0031308).pow(1 / 2.4) - 0.055)
