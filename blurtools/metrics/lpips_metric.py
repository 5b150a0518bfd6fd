"""LPIPS (Zhang et al. 2018) through the ``lpips`` package (0.1.4), with no network access ever.

The small linear heads ship inside the lpips wheel. The ImageNet trunks come from torchvision's
cache, ``torch.hub.get_dir()/checkpoints/`` (i.e. ``$TORCH_HOME/hub/checkpoints/``):
``alexnet-owt-7be5be79.pth`` for net="alex", ``vgg16-397923af.pth`` for net="vgg". We check the file is
there before building, because torchvision would otherwise try to download it; when it is present
torchvision loads it from disk. A missing file raises BlurtoolsError naming the file and the folder.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.metrics._common import check_pair

log = logging.getLogger(__name__)

LPIPS_NETS = ("alex", "vgg")

#: torchvision's cache file name of the ImageNet trunk each LPIPS net uses.
TRUNK_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


def trunk_checkpoint_dir() -> Path:
    """Where torchvision looks for trunk weights: ``torch.hub.get_dir()/checkpoints`` (honours TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def trunk_path(net: str) -> Path:
    """Full path of the trunk weights file for ``net`` ("alex" or "vgg")."""
    if net not in TRUNK_FILES:
        raise UsageError(f"lpips: unknown net {net!r}; choose one of {', '.join(LPIPS_NETS)}")
    return trunk_checkpoint_dir() / TRUNK_FILES[net]


def _check_trunk(net: str) -> None:
    path = trunk_path(net)
    if not path.is_file():
        raise BlurtoolsError(
            f"{path}: LPIPS ({net}) needs the ImageNet trunk weights file {TRUNK_FILES[net]}, which is "
            f"missing. Put it in {path.parent}/ (set TORCH_HOME to use another cache); "
            "blurtools never downloads it."
        )


class LpipsMetric:
    """Per-image LPIPS v0.1 on [0, 1] RGB inputs.

    Args:
        net: "alex" (the usual choice in deblurring tables) or "vgg".
        device: where the network runs ("cpu", "cuda", "cuda:1", a torch.device). Inputs are moved
            there; results come back on the device of the inputs.
        random_trunk: build the trunk with random weights (``pnet_rand=True``) instead of the
            ImageNet weights; for tests, the numbers mean nothing. The linear heads are loaded either
            way.

    Raises:
        BlurtoolsError: the trunk weights file is not in ``torch.hub.get_dir()/checkpoints``.

    Example:
        >>> metric = LpipsMetric("alex", device="cpu")            # doctest: +SKIP
        >>> metric(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)).shape  # doctest: +SKIP
        torch.Size([2])
    """

    def __init__(self, net: str = "alex", device: str | torch.device = "cpu", random_trunk: bool = False):
        if net not in LPIPS_NETS:
            raise UsageError(f"lpips: unknown net {net!r}; choose one of {', '.join(LPIPS_NETS)}")
        if not random_trunk:
            _check_trunk(net)
        import lpips  # heavy (torchvision); only when LPIPS is asked for

        with warnings.catch_warnings():
            # torchvision warns that lpips uses the deprecated `pretrained=` argument.
            warnings.simplefilter("ignore", UserWarning)
            try:
                module = lpips.LPIPS(
                    net=net, version="0.1", verbose=False, pretrained=True, pnet_rand=random_trunk
                )
            except (RuntimeError, OSError, EOFError, ValueError) as e:
                where = trunk_path(net) if not random_trunk else f"lpips {net} heads"
                raise BlurtoolsError(f"{where}: could not load LPIPS weights: {e}") from e
        self._setup(module, net, device)

    @classmethod
    def from_module(cls, module: torch.nn.Module, device: str | torch.device = "cpu") -> "LpipsMetric":
        """Wrap an already built ``lpips.LPIPS`` module (e.g. one shared with a training loss)."""
        self = cls.__new__(cls)
        self._setup(module, getattr(module, "pnet_type", "custom"), device)
        return self

    def _setup(self, module: torch.nn.Module, net: str, device: str | torch.device) -> None:
        self.net = net
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        log.debug("LPIPS %s ready on %s", net, self.device)

    @torch.no_grad()
    def __call__(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """LPIPS distance per image.

        Args:
            pred, gt: float (B, 3, H, W) RGB in [0, 1] (gray C = 1 is repeated to 3 channels).

        Returns:
            (B,) float64 tensor on the inputs' device; 0 for identical images, larger is worse.
        """
        check_pair(pred, gt, "lpips")
        c = pred.shape[1]
        if c == 1:
            pred, gt = pred.expand(-1, 3, -1, -1), gt.expand(-1, 3, -1, -1)
        elif c != 3:
            raise UsageError(f"lpips: needs RGB (C=3) or gray (C=1) input, got C={c}")
        dtype = next(self.module.parameters()).dtype
        p = pred.to(device=self.device, dtype=dtype)
        g = gt.to(device=self.device, dtype=dtype)
        out = self.module(p, g, normalize=True)
        return out.reshape(out.shape[0]).to(device=pred.device, dtype=torch.float64)
