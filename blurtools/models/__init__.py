"""Network architectures, one per file with its citation header.

``ARCHS`` maps the names users type (``--model``) to classes. ``kind`` is "image" (deblurring: one sharp
image) or "video" (a sequence of sharp frames from one blurry image).
"""

from blurtools.models.bringing_alive import BringingAlive
from blurtools.models.deblurgan import DeblurGANGenerator
from blurtools.models.dm import DenseDeblurModule
from blurtools.models.jin import Jin
from blurtools.models.kernel_basis import KernelBasisNet
from blurtools.models.niu import NiuNet

ARCHS = {
    "dm": DenseDeblurModule,
    "deblurgan": DeblurGANGenerator,
    "kernel-basis": KernelBasisNet,
    "jin": Jin,
    "bringing-alive": BringingAlive,
    "niu": NiuNet,
}

__all__ = ["ARCHS", "BringingAlive", "DeblurGANGenerator", "DenseDeblurModule", "Jin", "KernelBasisNet", "NiuNet"]
