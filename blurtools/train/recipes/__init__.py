"""Per-model training recipes: ``RECIPES[spec.recipe]`` trains the model of ``blurtools.models.MODELS[name]``."""

from blurtools.train.recipes.bringing_alive import RECIPE as BRINGING_ALIVE
from blurtools.train.recipes.deblurgan import RECIPE as DEBLURGAN
from blurtools.train.recipes.dm import RECIPE as DM
from blurtools.train.recipes.jin import RECIPE as JIN
from blurtools.train.recipes.kernel_basis import RECIPE as KERNEL_BASIS
from blurtools.train.recipes.niu import RECIPE as NIU

RECIPES = {
    "dm": DM,
    "deblurgan": DEBLURGAN,
    "kernel-basis": KERNEL_BASIS,
    "jin": JIN,
    "bringing-alive": BRINGING_ALIVE,
    "niu": NIU,
}
