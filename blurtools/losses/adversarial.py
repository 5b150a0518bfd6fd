"""Adversarial losses: WGAN-GP and the non-saturating (BCE) GAN loss.

WGAN-GP: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (critic loss
D(fake) - D(real) + lambda (||grad D(x_hat)||_2 - 1)^2, lambda = 10; generator loss -D(fake)), the
variant DeblurGAN (Kupyn et al. 2018) trains with. Non-saturating GAN: Goodfellow et al. 2014 with the
generator maximising log D(fake).

The critic / discriminator is any ``nn.Module`` mapping a (B, ...) batch to scores of shape (B,) or
(B, ...) (a PatchGAN map); scores are averaged per sample. Discriminator outputs are raw logits (no
sigmoid). Critic-side losses detach ``fake`` themselves, so callers can pass the generator output as is.

Label noise (``label_noise=p``): for a random fraction p of the samples of a critic batch, the roles of
real and fake are swapped, i.e. that sample's real image is scored as fake and its fake one as real.
It keeps the critic from becoming over-confident early (p = 0.1 is the usual choice). Randomness comes from
the optional ``torch.Generator`` so a seeded run repeats.

Example::

    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1))
    out = wgan_gp_critic_loss(critic, real, fake, gp_weight=10.0)
    out["loss"].backward()
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError


def _check(real: torch.Tensor, fake: torch.Tensor, name: str) -> None:
    if real.shape != fake.shape:
        raise BlurtoolsError(f"{name}: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ in shape")
    if real.dim() < 2 or real.shape[0] < 1:
        raise BlurtoolsError(f"{name}: expected a (B, ...) batch, got {tuple(real.shape)}")


def critic_scores(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Score per sample: the critic output averaged over everything but the batch axis, shape (B,)."""
    s = critic(x)
    return s.reshape(s.shape[0], -1).mean(1)


def _rand(n: int, device: torch.device, generator: Optional[torch.Generator]) -> torch.Tensor:
    # Draw on the generator's own device, then move: a CPU generator can seed a CUDA run.
    gdev = generator.device if generator is not None else device
    return torch.rand(n, generator=generator, device=gdev).to(device)


def label_swap_mask(batch: int, p: float, device: torch.device,
                    generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Bool mask (batch,), True for the samples whose real/fake roles are swapped (each with probability p)."""
    if not 0.0 <= p <= 1.0:
        raise BlurtoolsError(f"label noise must be a probability in [0, 1], got {p}")
    if p == 0.0:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    return _rand(batch, device, generator) < p


def _swap(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor):
    m = mask.view(-1, *([1] * (real.dim() - 1)))
    return torch.where(m, fake, real), torch.where(m, real, fake)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """WGAN-GP penalty mean((||grad_x D(x_hat)||_2 - 1)^2), x_hat = a real + (1 - a) fake, a ~ U(0, 1) per sample.

    Differentiable with respect to the critic's parameters (create_graph), 0-dim result.
    """
    _check(real, fake, "gradient_penalty")
    b = real.shape[0]
    alpha = _rand(b, real.device, generator).to(real.dtype).view(b, *([1] * (real.dim() - 1)))
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic_scores(critic, x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.reshape(b, -1).norm(2, dim=1)
    return (norm - 1.0).pow(2).mean()


def wgan_gp_critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gp_weight: float = 10.0,
                        label_noise: float = 0.0,
                        generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """WGAN-GP critic objective.

    Args:
        real, fake: (B, ...) batches of the same shape; ``fake`` is detached here.
        gp_weight: lambda of the gradient penalty (10 in Gulrajani et al. and DeblurGAN).
        label_noise: probability of swapping a sample's real and fake roles (see the module docstring).
    Returns:
        {"loss": mean D(fake) - mean D(real) + gp_weight * gp, "wasserstein": mean D(real) - mean D(fake)
        (on the unswapped pairs' roles, the quantity to watch), "gp": the penalty}.
    """
    _check(real, fake, "wgan_gp_critic_loss")
    real, fake = real.detach(), fake.detach()
    mask = label_swap_mask(real.shape[0], label_noise, real.device, generator)
    as_real, as_fake = _swap(real, fake, mask)
    d_real = critic_scores(critic, as_real)
    d_fake = critic_scores(critic, as_fake)
    gp = gradient_penalty(critic, real, fake, generator) if gp_weight > 0 else d_real.new_zeros(())
    loss = d_fake.mean() - d_real.mean() + gp_weight * gp
    sign = torch.where(mask, -1.0, 1.0).to(d_real.dtype)
    return {"loss": loss, "wasserstein": (sign * (d_real - d_fake)).mean().detach(), "gp": gp.detach()}


def wgan_generator_loss(critic: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """Generator side of WGAN: -mean D(fake). Gradients flow into ``fake`` (and the critic, if not frozen)."""
    return -critic_scores(critic, fake).mean()


def bce_discriminator_loss(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor, label_noise: float = 0.0,
                           generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """Standard GAN discriminator loss on logits: softplus(-D(real)) + softplus(D(fake)), i.e. BCE with labels 1/0.

    ``fake`` is detached; ``label_noise`` swaps real and fake roles for that fraction of samples. Returns
    {"loss", "d_real": mean sigmoid D(real), "d_fake": mean sigmoid D(fake)}.
    """
    _check(real, fake, "bce_discriminator_loss")
    real, fake = real.detach(), fake.detach()
    mask = label_swap_mask(real.shape[0], label_noise, real.device, generator)
    as_real, as_fake = _swap(real, fake, mask)
    lr_ = disc(as_real)
    lf_ = disc(as_fake)
    loss = F.softplus(-lr_).mean() + F.softplus(lf_).mean()
    return {"loss": loss, "d_real": torch.sigmoid(lr_).mean().detach(), "d_fake": torch.sigmoid(lf_).mean().detach()}


def bce_generator_loss(disc: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss on logits: mean softplus(-D(fake)) = -log sigmoid D(fake)."""
    return F.softplus(-disc(fake)).mean()
