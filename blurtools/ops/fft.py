"""Real 2-D FFTs at the speed the device offers: pocketfft threads on the CPU, cuFFT on CUDA.

On the CPU, pocketfft (the FFT inside scipy.fft) with one thread per torch thread, writing into a buffer
that is reused, is faster than torch's MKL path for the large batched transforms of phase-code (timings in
``blurtools/weights/MODEL_CARD.md``, Speed). Callers that transform many same-sized stacks (phase-code's
CodedExposure) pass ``out``; one-off transforms of changing sizes (fft_conv2d, deconvolution) stay on
torch.fft.

The functions take and return torch tensors with ``torch.fft.rfft2`` / ``irfft2`` semantics (last two
axes; ``s`` zero-pads or crops the input; "backward" normalisation; float32 <-> complex64, float64 <->
complex128). CPU tensors that need no gradient go to pocketfft without copies on either side; tensors
that carry autograd, live on CUDA, or have other dtypes go to torch.fft unchanged.

    spec = rfft2(x, s=(fh, fw))                  # (..., fh, fw // 2 + 1) complex
    y = irfft2(spec, s=(fh, fw))                 # (..., fh, fw) real
    rfft2(frames, out=spectrum_buffer)           # reuse one buffer across a run
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

_HOST_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)

try:  # pocketfft's own binding: the public scipy.fft functions cannot write into a given buffer
    from scipy.fft._pocketfft import pypocketfft as _pocketfft
except ImportError:  # pragma: no cover - depends on the scipy build
    _pocketfft = None


def _on_host(x: torch.Tensor) -> bool:
    if x.device.type != "cpu" or x.dtype not in _HOST_DTYPES:
        return False
    return not (x.requires_grad and torch.is_grad_enabled())


def _numpy(x: torch.Tensor):
    return x.detach().resolve_conj().resolve_neg().numpy()


def _size(x: torch.Tensor, s: Optional[Sequence[int]], last: int) -> Tuple[int, int]:
    return (int(x.shape[-2]), last) if s is None else (int(s[0]), int(s[1]))


def _check_out(out: torch.Tensor, shape: tuple, dtype: torch.dtype) -> None:
    if tuple(out.shape) != shape or out.dtype != dtype or not out.is_contiguous():
        raise ValueError(f"fft: out must be a contiguous {dtype} tensor of shape {shape}, "
                         f"got {out.dtype} {tuple(out.shape)}")


def rfft2(x: torch.Tensor, s: Optional[Sequence[int]] = None, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``torch.fft.rfft2(x, s=s)`` over the last two axes; pocketfft on the CPU.

    Args:
        x: (..., H, W) real. s: (fh, fw) transform size (default (H, W)).
        out: optional (..., fh, fw // 2 + 1) complex buffer to write into (returned).
    """
    if not _on_host(x) or x.is_complex():
        return torch.fft.rfft2(x, s=s, out=out)
    import scipy.fft

    fh, fw = _size(x, s, int(x.shape[-1]))
    shape = tuple(x.shape[:-2]) + (fh, fw // 2 + 1)
    threads = torch.get_num_threads()
    if (fh, fw) != tuple(x.shape[-2:]) or _pocketfft is None:
        spec = torch.from_numpy(scipy.fft.rfft2(_numpy(x), s=(fh, fw), workers=threads))
        if out is None:
            return spec
        _check_out(out, shape, spec.dtype)
        return out.copy_(spec)
    cdtype = torch.complex64 if x.dtype == torch.float32 else torch.complex128
    if out is None:
        out = torch.empty(shape, dtype=cdtype)
    _check_out(out, shape, cdtype)
    _pocketfft.r2c(_numpy(x), axes=[x.dim() - 2, x.dim() - 1], forward=True, inorm=0, out=out.numpy(),
                   nthreads=threads)
    return out


def irfft2(spec: torch.Tensor, s: Optional[Sequence[int]] = None, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``torch.fft.irfft2(spec, s=s)`` over the last two axes; pocketfft on the CPU.

    Args:
        spec: (..., fh, fw // 2 + 1) complex. s: (fh, fw) output size (default (fh, 2 * (last - 1))).
        out: optional (..., fh, fw) real buffer to write into (returned).
    """
    if not _on_host(spec) or not spec.is_complex():
        return torch.fft.irfft2(spec, s=s, out=out)
    import scipy.fft

    fh, fw = _size(spec, s, 2 * (int(spec.shape[-1]) - 1))
    shape = tuple(spec.shape[:-2]) + (fh, fw)
    rdtype = torch.float32 if spec.dtype == torch.complex64 else torch.float64
    threads = torch.get_num_threads()
    if fh != spec.shape[-2] or fw // 2 + 1 != spec.shape[-1] or _pocketfft is None:
        y = torch.from_numpy(scipy.fft.irfft2(_numpy(spec), s=(fh, fw), workers=threads))
        if out is None:
            return y
        _check_out(out, shape, rdtype)
        return out.copy_(y)
    if out is None:
        out = torch.empty(shape, dtype=rdtype)
    _check_out(out, shape, rdtype)
    _pocketfft.c2r(_numpy(spec), axes=[spec.dim() - 2, spec.dim() - 1], lastsize=fw, forward=False, inorm=2,
                   out=out.numpy(), nthreads=threads)
    return out
