"""The phase-coded acquisition (Elmalem, Giryes, Marom 2020): B_c = (1/K) sum_k g^-1(S_k,c) conv h_c(psi_k).

Every instant of the exposure is convolved, per colour channel, with the PSF of the coded lens at that
instant of the focus sweep, in linear light; the results are averaged and the camera response maps the
mean back (the pipeline does that and the noise).

The convolution is linear, so the mean of K convolutions is computed in the Fourier domain:
``irfft( sum_k rfft(x_k) H_k ) / K`` -- one batched forward FFT of the window's frames, the PSF spectra
computed once per frame size and cached, and a single inverse FFT per channel instead of one per frame.
This is exactly ``fft_conv2d(x, psf).mean(0)`` (blurtools.ops.filters, same padding and alignment;
:func:`coded_exposure_reference` keeps that form and the tests hold the two together) at about a third
of the transforms.
"""

from __future__ import annotations

import logging
from typing import Dict, Tuple

import torch

from blurtools.errors import BlurtoolsError
from blurtools.ops.fft import irfft2, rfft2
from blurtools.ops.filters import fft_conv2d, next_fast_len
from blurtools.synth.exposure import Exposure

log = logging.getLogger(__name__)


def _check(x: torch.Tensor, psf: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise BlurtoolsError(f"coded exposure: frames must be (K, 3, H, W), got {tuple(x.shape)}")
    if psf.dim() != 4 or psf.shape[1] != 3 or psf.shape[0] != x.shape[0]:
        raise BlurtoolsError(f"coded exposure: PSF stack must be (K, 3, h, w) with K = {x.shape[0]} instants, "
                             f"got {tuple(psf.shape)}")


def coded_exposure_reference(x: torch.Tensor, psf: torch.Tensor, pad: str = "reflect") -> torch.Tensor:
    """Mean over instants of per-channel convolutions, with one batched ``fft_conv2d`` call.

    Args:
        x: (K, 3, H, W) linear light. psf: (K, 3, h, w), one PSF per instant and channel.
    Returns:
        (3, H, W).
    """
    _check(x, psf)
    return fft_conv2d(x, psf.to(x.dtype), mode="same", pad=pad).mean(dim=0)


class CodedExposure:
    """Applies a PSF stack to exposures; PSF spectra are cached per frame size and device.

    Args:
        stack: (K, 3, h, w) PSFs (one per instant), any device; moved to ``device``.
        pad: how frames are extended at the borders (``reflect`` like fft_conv2d's default, or ``zeros``).
        chunk: frames transformed per batched FFT call (bounds memory for long exposures).

    Example:
        >>> coder = CodedExposure(phase_psf_stack(sweep_psis(-4, 10, 7)))
        >>> blurry_linear = coder(torch.rand(7, 3, 64, 64))          # (3, 64, 64)
    """

    def __init__(self, stack: torch.Tensor, device: "torch.device | str" = "cpu", pad: str = "reflect",
                 chunk: int = 16):
        if stack.dim() != 4 or stack.shape[1] != 3:
            raise BlurtoolsError(f"PSF stack must be (K, 3, h, w), got {tuple(stack.shape)}")
        if pad not in ("reflect", "zeros", "replicate"):
            raise BlurtoolsError(f"coded exposure: unknown padding {pad!r}")
        self.device = torch.device(device)
        self.stack = stack.to(self.device, torch.float32)
        self.pad, self.chunk = pad, max(1, chunk)
        self._spectra: Dict[Tuple[int, int], torch.Tensor] = {}
        self._buffers: Dict[tuple, torch.Tensor] = {}  # work tensors reused between windows

    @property
    def instants(self) -> int:
        return int(self.stack.shape[0])

    def _geometry(self, h: int, w: int) -> Tuple[Tuple[int, int, int, int], int, int]:
        kh, kw = self.stack.shape[-2:]
        pads = (kw - 1 - (kw - 1) // 2, (kw - 1) // 2, kh - 1 - (kh - 1) // 2, (kh - 1) // 2)
        return pads, next_fast_len(h + kh - 1), next_fast_len(w + kw - 1)

    def _spectrum(self, h: int, w: int) -> torch.Tensor:
        if (h, w) not in self._spectra:
            _, fh, fw = self._geometry(h, w)
            self._spectra[(h, w)] = rfft2(self.stack, s=(fh, fw))
        return self._spectra[(h, w)]

    def _buffer(self, name: str, shape: tuple, dtype: torch.dtype, device: "torch.device | None" = None,
                zero: bool = False, tag: tuple = ()) -> torch.Tensor:
        """A work tensor kept between windows (a run's windows share one size): on the CPU, allocating and
        page-faulting ~85 MB per 720p window costs more than the transforms that fill it. One buffer per
        name; ``zero`` allocates it zeroed, and ``tag`` is part of what must match for it to be reused."""
        device = device or self.device
        key = (name, tuple(shape), dtype, device, tag)
        buf = self._buffers.get(key)
        if buf is None:
            for old in [k for k in self._buffers if k[0] == name]:
                del self._buffers[old]
            make = torch.zeros if zero else torch.empty
            buf = self._buffers[key] = make(shape, dtype=dtype, device=device)
        return buf

    def _padded(self, x: torch.Tensor, pads: Tuple[int, int, int, int], fh: int, fw: int) -> torch.Tensor:
        """The border-extended frames written straight into an (fh, fw) FFT buffer, zeros beyond.

        One copy instead of F.pad's plus the FFT's own zero-padding copy: on a 2-core CPU this is a
        quarter of a 720p window's time.
        """
        left, right, top, bottom = pads
        k, c, h, w = x.shape
        if self.pad == "reflect" and (max(left, right) >= w or max(top, bottom) >= h):
            mode = "replicate"  # as ops.filters does for images smaller than the PSF
        else:
            mode = self.pad
        hp, wp = h + top + bottom, w + left + right
        # zeroed once; the frame size is part of the key, so regions never written stay zero (and the
        # border bands of "zeros" padding need no writes at all)
        buf = self._buffer("padded", (k, c, fh, fw), x.dtype, x.device, zero=True, tag=(h, w))
        buf[..., top:top + h, left:left + w] = x
        body = buf[..., :hp, :]
        if mode == "reflect":  # mirror without repeating the edge sample, like F.pad(mode="reflect")
            body[..., :top, left:left + w] = x[..., 1:top + 1, :].flip(-2)
            body[..., top + h:, left:left + w] = x[..., h - 1 - bottom:h - 1, :].flip(-2)
            body[..., :, :left] = body[..., :, left + 1:2 * left + 1].flip(-1)
            body[..., :, left + w:wp] = body[..., :, left + w - 1 - right:left + w - 1].flip(-1)
        elif mode == "replicate":
            body[..., :top, left:left + w] = x[..., :1, :]
            body[..., top + h:, left:left + w] = x[..., h - 1:, :]
            body[..., :, :left] = body[..., :, left:left + 1]
            body[..., :, left + w:wp] = body[..., :, left + w - 1:left + w]
        return buf

    def apply(self, x: torch.Tensor, first: int = 0) -> torch.Tensor:
        """Sum over the given instants (not yet divided by K) of frame conv PSF, in the Fourier domain.

        Args:
            x: (k, 3, H, W) linear frames for instants ``first .. first + k - 1``.
        Returns:
            complex spectrum sum (3, fh, fw//2+1); pass the total to :meth:`finish`.
        """
        k = x.shape[0]
        if first + k > self.instants:
            raise BlurtoolsError(f"coded exposure: instants {first}..{first + k - 1} exceed the stack's {self.instants}")
        h, w = x.shape[-2:]
        pads, fh, fw = self._geometry(h, w)
        padded = self._padded(x.to(self.device, torch.float32), pads, fh, fw)
        spec = rfft2(padded, out=self._buffer("spectrum", padded.shape[:-1] + (fw // 2 + 1,), torch.complex64))
        psf = self._spectrum(h, w)[first:first + k]
        if spec.device.type == "cpu":
            # einsum multiplies and sums over instants without materialising the (k, 3, fh, fw) product
            return torch.einsum("kchw,kchw->chw", spec, psf)
        return (spec * psf).sum(dim=0)  # on CUDA the plain product is ~9x faster than a complex einsum

    def finish(self, total: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Inverse FFT of an accumulated spectrum, cropped to (3, h, w), divided by K."""
        kh, kw = self.stack.shape[-2:]
        _, fh, fw = self._geometry(h, w)
        hp, wp = h + kh - 1, w + kw - 1
        out = self._buffer("image", total.shape[:-1] + (fw,), torch.float32, total.device)
        return irfft2(total, s=(fh, fw), out=out)[..., kh - 1:hp, kw - 1:wp] / self.instants

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(K, 3, H, W) linear frames -> (3, H, W) coded blurry image in linear light."""
        _check(x, self.stack)
        h, w = x.shape[-2:]
        total = None
        for i in range(0, x.shape[0], self.chunk):
            part = self.apply(x[i:i + self.chunk], i)
            total = part if total is None else total + part
        return self.finish(total, h, w)

    def render(self, exposure: Exposure) -> torch.Tensor:
        """The pipeline's render hook: stream the exposure's dense frames through the coded lens."""
        if exposure.length != self.instants:
            raise BlurtoolsError(f"the exposure has {exposure.length} instants but the PSF stack {self.instants}")
        total, buf, first, h, w = None, [], 0, 0, 0
        for frame in exposure.dense():
            buf.append(frame)
            if len(buf) == self.chunk:
                x = torch.stack(buf)
                h, w = x.shape[-2:]
                part = self.apply(x, first)
                total = part if total is None else total + part
                first += len(buf)
                buf = []
        if buf:
            x = torch.stack(buf)
            h, w = x.shape[-2:]
            part = self.apply(x, first)
            total = part if total is None else total + part
            first += len(buf)
        if first != self.instants:
            raise BlurtoolsError(f"the exposure produced {first} frames, expected {self.instants}")
        return self.finish(total, h, w).clamp_min(0.0)


def normalize_stack(stack: torch.Tensor) -> torch.Tensor:
    """Scale every (instant, channel) PSF to sum 1 (light lost to a measured mask is not kept)."""
    s = stack.sum(dim=(-2, -1), keepdim=True)
    if bool((s <= 0).any()):
        raise BlurtoolsError("PSF stack has an instant/channel that sums to zero or less")
    return stack / s
