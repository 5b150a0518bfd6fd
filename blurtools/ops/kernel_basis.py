"""The kernel-basis blur model: a non-uniform blur as per-pixel mixtures of a few basis kernels.

Carbajal, Vitoria, Delbracio, Musé, Lezama 2021, "Non-uniform blur kernel estimation via adaptive basis
decomposition": a non-uniform blur is written with B basis kernels k_b (one set per image) and per-pixel
mixing coefficients m_b(x),

    blurry_hat(x) = sum_b m_b(x) * (k_b conv sharp)(x)

The estimator is trained by reblurring the sharp image with the estimated kernels and comparing the
result with the blurry input (:func:`blurtools.losses.reblur.reblur_loss`); the restoration inverts the
same operator (Richardson-Lucy needs :meth:`KernelBasisOperator.adjoint`).

``conv`` is a true convolution (the kernel is flipped), the same convention as
``blurtools.ops.filters.fft_conv2d``. Borders are extended by reflection (replication for images smaller
than the kernel radius). Everything runs through FFTs of the padded image, so a 33x33 basis costs about
the same as a 3x3 one; it is differentiable in the image, the kernels and the mixing coefficients.

Example::

    >>> import torch
    >>> k = torch.zeros(1, 2, 5, 5); k[:, :, 2, 2] = 1      # two identity kernels
    >>> m = torch.full((1, 2, 8, 8), 0.5)
    >>> x = torch.rand(1, 3, 8, 8)
    >>> bool(torch.allclose(reblur(x, k, m), x, atol=1e-5))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from blurtools.errors import BlurtoolsError
from blurtools.ops.filters import next_fast_len


def _check(x: torch.Tensor, kernels: torch.Tensor, mixing: torch.Tensor, name: str) -> None:
    if x.dim() != 4:
        raise BlurtoolsError(f"{name}: image must be (B, C, H, W), got {tuple(x.shape)}")
    if kernels.dim() != 4 or kernels.shape[-1] != kernels.shape[-2] or kernels.shape[-1] % 2 == 0:
        raise BlurtoolsError(f"{name}: kernels must be (B, K, ks, ks) with odd ks, got {tuple(kernels.shape)}")
    b, _, h, w = x.shape
    if kernels.shape[0] != b:
        raise BlurtoolsError(f"{name}: {kernels.shape[0]} kernel sets for a batch of {b}")
    if mixing.shape != (b, kernels.shape[1], h, w):
        raise BlurtoolsError(f"{name}: mixing must be (B, K, H, W) = {(b, kernels.shape[1], h, w)}, "
                             f"got {tuple(mixing.shape)}")


def _pad(x: torch.Tensor, p: int) -> torch.Tensor:
    if p == 0:
        return x
    mode = "reflect" if min(x.shape[-2:]) > p else "replicate"
    return F.pad(x, (p, p, p, p), mode=mode)


class KernelBasisOperator:
    """The linear map A(x) = sum_b m_b * (k_b conv x) for fixed kernels and mixing, and its adjoint.

    Building the operator takes the kernels' FFTs once; applying it many times (Richardson-Lucy) then costs
    one image FFT and B inverse FFTs per channel for ``apply``, and B FFTs plus one inverse FFT for
    ``adjoint``.

    Args:
        kernels: (B, K, ks, ks), odd ks. Basis kernels; usually non-negative, each summing to 1.
        mixing: (B, K, H, W) per-pixel coefficients, usually summing to 1 over K.
    """

    def __init__(self, kernels: torch.Tensor, mixing: torch.Tensor):
        if kernels.dim() != 4 or mixing.dim() != 4:
            raise BlurtoolsError(f"KernelBasisOperator: kernels (B, K, ks, ks) and mixing (B, K, H, W) expected, "
                                 f"got {tuple(kernels.shape)} and {tuple(mixing.shape)}")
        self.kernels, self.mixing = kernels, mixing
        self.ks = kernels.shape[-1]
        self.p = self.ks // 2
        h, w = mixing.shape[-2:]
        self.hw = (h, w)
        self.fft_size = (next_fast_len(h + 2 * self.p), next_fast_len(w + 2 * self.p))
        self._k = torch.fft.rfft2(kernels, s=self.fft_size)                       # (B, K, Hf, Wf)
        self._kt = torch.fft.rfft2(torch.flip(kernels, dims=(-2, -1)), s=self.fft_size)

    def _crop(self, y: torch.Tensor) -> torch.Tensor:
        # Circular convolution of the padded image: rows 2p .. 2p+H-1 are free of wrap-around and centred.
        h, w = self.hw
        return y[..., 2 * self.p: 2 * self.p + h, 2 * self.p: 2 * self.p + w]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """A(x): (B, C, H, W) -> (B, C, H, W)."""
        _check(x, self.kernels, self.mixing, "reblur")
        spec = torch.fft.rfft2(_pad(x, self.p), s=self.fft_size)                  # (B, C, Hf, Wf)
        per_kernel = torch.fft.irfft2(spec.unsqueeze(2) * self._k.unsqueeze(1), s=self.fft_size)
        return (self._crop(per_kernel) * self.mixing.unsqueeze(1)).sum(2)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """A^T(y) = sum_b k_b correlated with (m_b y), up to the border extension: (B, C, H, W) -> (B, C, H, W)."""
        _check(y, self.kernels, self.mixing, "reblur adjoint")
        b, c, h, w = y.shape
        k = self.mixing.shape[1]
        z = (y.unsqueeze(2) * self.mixing.unsqueeze(1)).reshape(b, c * k, h, w)
        spec = torch.fft.rfft2(_pad(z, self.p), s=self.fft_size).reshape(b, c, k, *self._kt.shape[-2:])
        summed = (spec * self._kt.unsqueeze(1)).sum(2)
        return self._crop(torch.fft.irfft2(summed, s=self.fft_size))


def reblur(sharp: torch.Tensor, kernels: torch.Tensor, mixing: torch.Tensor) -> torch.Tensor:
    """Blur ``sharp`` with a kernel basis: sum_b mixing[:, b] * (kernels[:, b] conv sharp).

    Args:
        sharp: (B, C, H, W).
        kernels: (B, K, ks, ks), odd ks.
        mixing: (B, K, H, W).
    Returns:
        (B, C, H, W). A constant image stays constant when every kernel sums to 1 and the mixing
        coefficients sum to 1 at every pixel.
    """
    _check(sharp, kernels, mixing, "reblur")
    return KernelBasisOperator(kernels, mixing).apply(sharp)
