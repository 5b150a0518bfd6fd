"""Per-model training recipes: ``RECIPES[spec.recipe]`` trains the model of ``blurtools.models.MODELS[name]``."""

from typing import List, Tuple

from blurtools.errors import UsageError
from blurtools.models import MODELS
from blurtools.train.recipe import Recipe

from blurtools.train.recipes.bringing_alive import RECIPE as BRINGING_ALIVE
from blurtools.train.recipes.deblurgan import RECIPE as DEBLURGAN
from blurtools.train.recipes.deblurgan_v2 import RECIPE as DEBLURGAN_V2
from blurtools.train.recipes.dm import RECIPE as DM
from blurtools.train.recipes.jin import RECIPE as JIN
from blurtools.train.recipes.jin2018 import CASCADE as JIN2018, CENTRE as JIN2018_CENTRE
from blurtools.train.recipes.kernel_basis import RECIPE as KERNEL_BASIS
from blurtools.train.recipes.nafnet import RECIPE as NAFNET
from blurtools.train.recipes.niu import RECIPE as NIU
from blurtools.train.recipes.two_heads import RECIPE as TWO_HEADS

RECIPES = {
    "dm": DM,
    "deblurgan": DEBLURGAN,
    "kernel-basis": KERNEL_BASIS,
    "jin": JIN,
    "bringing-alive": BRINGING_ALIVE,
    "niu": NIU,
    "deblurgan-v2": DEBLURGAN_V2,
    "nafnet": NAFNET,
    "two-heads": TWO_HEADS,
    "jin2018-centre": JIN2018_CENTRE,
    "jin2018": JIN2018,
}


def trainable_names() -> List[str]:
    """The models ``blurtools train --model`` takes: the registered models that name a recipe."""
    return sorted(name for name, spec in MODELS.items() if spec.recipe is not None)


def lookup_model(name: str) -> Tuple[type, Recipe]:
    """(architecture class, recipe) of model ``name``; a UsageError listing the choices otherwise."""
    spec = MODELS.get(name)
    if spec is None or spec.recipe is None:
        raise UsageError(f"--model {name}: unknown model; choose one of {', '.join(trainable_names())}")
    return spec.cls, RECIPES[spec.recipe]
