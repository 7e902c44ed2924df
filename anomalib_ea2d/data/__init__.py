"""Data for EA2D: the synthetic brain-MRI demo set and the paper datasets' reference splits.

Public API::

    from anomalib_ea2d.data import SyntheticBrainMRI            # anomalib datamodule (demo set)
    from anomalib_ea2d.data import SyntheticBrainParams, generate_synthetic_brain
    from anomalib_ea2d.data import prepare_dataset, PAPER_DATASETS  # OCT2017, APTOS 2019, ISIC2018, Br35H
    from anomalib_ea2d.data import MedicalFolder, MedicalPredictDataset  # 16-bit aware Folder, checked at setup

Modules: ``synthetic_brain`` (generator) and ``synthetic_brain_mri`` (its datamodule); ``oct2017``,
``aptos2019``, ``isic2018``, ``br35h`` (one per paper dataset) with ``splits`` (their shared split
writer), ``fundus`` (the APTOS fundus crop) and ``prepare`` (dispatch and command line);
``medical_folder`` and ``image_io`` (medical image reading).

The paper datasets are prepared once into anomalib ``Folder`` layout
(``python -m anomalib_ea2d.data.prepare oct2017 --raw RAW --out OUT``) and trained with the configs in
``configs/`` (EA2D's recipes) or ``configs/data/`` (any anomalib model). Attributes are imported on
first use, so the preparation CLI does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.data.aptos2019 import prepare_aptos2019
    from anomalib_ea2d.data.br35h import prepare_br35h
    from anomalib_ea2d.data.image_io import read_medical_image, read_medical_mask
    from anomalib_ea2d.data.isic2018 import prepare_isic2018
    from anomalib_ea2d.data.medical_folder import MedicalFolder, MedicalPredictDataset
    from anomalib_ea2d.data.oct2017 import prepare_oct2017
    from anomalib_ea2d.data.prepare import PAPER_DATASETS, prepare_dataset
    from anomalib_ea2d.data.splits import PreparedSplit
    from anomalib_ea2d.data.synthetic_brain import SyntheticBrainParams, generate_synthetic_brain
    from anomalib_ea2d.data.synthetic_brain_mri import SyntheticBrainMRI

_EXPORTS = {
    "MedicalFolder": "anomalib_ea2d.data.medical_folder",
    "MedicalPredictDataset": "anomalib_ea2d.data.medical_folder",
    "read_medical_image": "anomalib_ea2d.data.image_io",
    "read_medical_mask": "anomalib_ea2d.data.image_io",
    "SyntheticBrainMRI": "anomalib_ea2d.data.synthetic_brain_mri",
    "SyntheticBrainParams": "anomalib_ea2d.data.synthetic_brain",
    "generate_synthetic_brain": "anomalib_ea2d.data.synthetic_brain",
    "PAPER_DATASETS": "anomalib_ea2d.data.prepare",
    "PreparedSplit": "anomalib_ea2d.data.splits",
    "prepare_dataset": "anomalib_ea2d.data.prepare",
    "prepare_oct2017": "anomalib_ea2d.data.oct2017",
    "prepare_aptos2019": "anomalib_ea2d.data.aptos2019",
    "prepare_isic2018": "anomalib_ea2d.data.isic2018",
    "prepare_br35h": "anomalib_ea2d.data.br35h",
}

__all__ = [
    "MedicalFolder",
    "MedicalPredictDataset",
    "PAPER_DATASETS",
    "PreparedSplit",
    "SyntheticBrainMRI",
    "SyntheticBrainParams",
    "generate_synthetic_brain",
    "prepare_aptos2019",
    "prepare_br35h",
    "prepare_dataset",
    "prepare_isic2018",
    "prepare_oct2017",
    "read_medical_image",
    "read_medical_mask",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
