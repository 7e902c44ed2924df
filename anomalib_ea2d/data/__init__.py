"""Data for EA2D and any anomalib model: medical images and volumes, the synthetic demo sets, the paper datasets.

Public API::

    from anomalib_ea2d.data import SyntheticBrainMRI            # anomalib datamodule (demo set)
    from anomalib_ea2d.data import SyntheticBrainParams, generate_synthetic_brain
    from anomalib_ea2d.data import prepare_dataset, PAPER_DATASETS  # OCT2017, APTOS 2019, ISIC2018, Br35H
    from anomalib_ea2d.data import MedicalFolder, MedicalPredictDataset  # 16-bit aware Folder, checked at setup

Laid out like anomalib's ``data``: ``datamodules/`` (:class:`MedicalFolder`, :class:`SyntheticBrainMRI`),
``datasets/`` (:class:`MedicalFolderDataset`, :class:`MedicalPredictDataset`), ``readers/`` (16-bit and
float images, mask pairing, what ``anomalib predict --data <path>`` reads), ``generators/`` (the
synthetic brain slices and volumes), ``volumes/`` (NIfTI and DICOM volumes: :class:`MedicalVolumes`,
its readers and dataset), ``prepare/`` (the paper datasets' splits: one module per dataset, the
shared split writer, ``python -m anomalib_ea2d.data.prepare``) and ``layout`` (the folder names the
generated and prepared sets share).

The paper datasets are prepared once into anomalib ``Folder`` layout
(``python -m anomalib_ea2d.data.prepare oct2017 --raw RAW --out OUT``) and trained with the configs in
``configs/`` (EA2D's recipes) or ``configs/data/`` (any anomalib model). Attributes are imported on
first use, so the preparation CLI does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.data.datamodules.medical_folder import MedicalFolder
    from anomalib_ea2d.data.datamodules.synthetic_brain_mri import SyntheticBrainMRI
    from anomalib_ea2d.data.datasets.medical_folder import MedicalFolderDataset, MedicalPredictDataset
    from anomalib_ea2d.data.generators.synthetic_brain import SyntheticBrainParams, generate_synthetic_brain
    from anomalib_ea2d.data.prepare import PAPER_DATASETS, prepare_dataset
    from anomalib_ea2d.data.prepare.aptos2019 import prepare_aptos2019
    from anomalib_ea2d.data.prepare.br35h import prepare_br35h
    from anomalib_ea2d.data.prepare.isic2018 import prepare_isic2018
    from anomalib_ea2d.data.prepare.oct2017 import prepare_oct2017
    from anomalib_ea2d.data.prepare.splits import PreparedSplit
    from anomalib_ea2d.data.readers.image import read_medical_image, read_medical_mask
    from anomalib_ea2d.data.volumes import MedicalVolumes

_EXPORTS = {
    "MedicalFolder": "anomalib_ea2d.data.datamodules.medical_folder",
    "MedicalVolumes": "anomalib_ea2d.data.volumes",
    "MedicalFolderDataset": "anomalib_ea2d.data.datasets.medical_folder",
    "MedicalPredictDataset": "anomalib_ea2d.data.datasets.medical_folder",
    "read_medical_image": "anomalib_ea2d.data.readers.image",
    "read_medical_mask": "anomalib_ea2d.data.readers.image",
    "SyntheticBrainMRI": "anomalib_ea2d.data.datamodules.synthetic_brain_mri",
    "SyntheticBrainParams": "anomalib_ea2d.data.generators.synthetic_brain",
    "generate_synthetic_brain": "anomalib_ea2d.data.generators.synthetic_brain",
    "PAPER_DATASETS": "anomalib_ea2d.data.prepare",
    "PreparedSplit": "anomalib_ea2d.data.prepare.splits",
    "prepare_dataset": "anomalib_ea2d.data.prepare",
    "prepare_oct2017": "anomalib_ea2d.data.prepare.oct2017",
    "prepare_aptos2019": "anomalib_ea2d.data.prepare.aptos2019",
    "prepare_isic2018": "anomalib_ea2d.data.prepare.isic2018",
    "prepare_br35h": "anomalib_ea2d.data.prepare.br35h",
}

__all__ = [
    "MedicalFolder",
    "MedicalFolderDataset",
    "MedicalPredictDataset",
    "MedicalVolumes",
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
