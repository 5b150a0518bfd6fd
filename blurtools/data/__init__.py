"""blurtools.data: the HDF5 pack layout, torch datasets over packs and sample sets, joint augmentation.

Example:
    >>> from blurtools.data import Augment, open_dataset, pack_sets
    >>> pack_sets(["sets/gopro7"], "train.h5")
    >>> ds = open_dataset("train.h5", patch=256, augment=Augment())
"""

from blurtools.data.augment import Augment, Plan, center_crop_box, random_crop_box, sample_rng
from blurtools.data.datasets import H5Dataset, SampleSetDataset, open_dataset, select_frames
from blurtools.data.h5layout import FORMAT, open_pack, pack_info, verify_pack
from blurtools.data.h5pack import COMPRESSIONS, pack_sets

__all__ = [
    "Augment", "Plan", "center_crop_box", "random_crop_box", "sample_rng",
    "H5Dataset", "SampleSetDataset", "open_dataset", "select_frames",
    "FORMAT", "open_pack", "pack_info", "verify_pack", "COMPRESSIONS", "pack_sets",
]
