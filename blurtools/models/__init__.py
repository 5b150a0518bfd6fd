"""Network architectures, one per file with its citation header, and the registry that builds and loads them.

:data:`blurtools.models.registry.MODELS` maps the names users type (``--model``) to a
:class:`~blurtools.models.registry.ModelSpec` (class, training recipe, foreign file layouts);
:func:`~blurtools.models.registry.create` builds one, :func:`~blurtools.models.registry.load` reads a
checkpoint. Every model class states the contract of :mod:`blurtools.models.contract` (``kind``,
``frames``, ``pad_multiple``, ``receptive_field``) and records its constructor arguments as ``model_args``.
"""

from blurtools.models.bringing_alive import BringingAlive
from blurtools.models.contract import Model
from blurtools.models.deblurgan import DeblurGANGenerator
from blurtools.models.dm import DenseDeblurModule
from blurtools.models.jin import Jin
from blurtools.models.kernel_basis import KernelBasisNet
from blurtools.models.niu import NiuNet
from blurtools.models.registry import MODELS, Layout, Loaded, ModelSpec, create, load

__all__ = ["MODELS", "Layout", "Loaded", "Model", "ModelSpec", "create", "load", "BringingAlive",
           "DeblurGANGenerator", "DenseDeblurModule", "Jin", "KernelBasisNet", "NiuNet"]
