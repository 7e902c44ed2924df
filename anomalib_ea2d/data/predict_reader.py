"""Plain ``anomalib predict --data <folder or file>`` read and checked with the medical-image reader.

anomalib's ``Engine.predict`` wraps a plain path in its own ``PredictDataset``;
:func:`read_predict_paths_with_medical_reader` (called from the EA2D model's ``setup`` through
:mod:`anomalib_ea2d.guards`) swaps each predict dataloader over exactly such a dataset for one over
:class:`~anomalib_ea2d.data.medical_folder.MedicalPredictDataset`, so 16-bit images keep their range
and all unusable files are listed before predicting. A dataset chosen by the user is left alone.
"""

from __future__ import annotations

import logging

from anomalib.data import PredictDataset
from lightning.pytorch import Trainer
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader

from anomalib_ea2d.data.medical_folder import MedicalPredictDataset

logger = logging.getLogger(__name__)


def read_predict_paths_with_medical_reader(trainer: Trainer | None) -> None:
    """Make ``anomalib predict --data <folder or file>`` read and check its images with the medical-image reader.

    anomalib's ``Engine.predict`` wraps a plain path in its ``PredictDataset``, whose Pillow reader
    stops at a corrupt file with a bare ``UnidentifiedImageError`` and clips 16-bit images to 8 bits.
    Called from the model's ``setup`` (after the trainer has its predict dataloaders, before it builds
    them), this replaces each dataloader over exactly that dataset by one over
    :meth:`MedicalPredictDataset.from_predict_dataset`: same files, order, batch size and collation;
    8-bit images give the same tensors; unusable files are listed in one error before predicting.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> read_predict_paths_with_medical_reader(Trainer(logger=False, enable_progress_bar=False))
    """
    if trainer is None or trainer.state.fn != TrainerFn.PREDICTING:
        return
    source = trainer.predict_loop._data_source  # noqa: SLF001 - where Trainer.predict keeps the dataloaders given
    instance = source.instance
    if isinstance(instance, DataLoader):
        source.instance = _medical_loader(instance)
    elif isinstance(instance, list):
        source.instance = [_medical_loader(item) if isinstance(item, DataLoader) else item for item in instance]


def _medical_loader(loader: DataLoader) -> DataLoader:
    if type(loader.dataset) is not PredictDataset:  # a dataset chosen by the user (or already ours) stays
        return loader
    dataset = MedicalPredictDataset.from_predict_dataset(loader.dataset)
    logger.info("EA2D predict: %d images read with the medical-image reader (all checked).", len(dataset))
    return DataLoader(
        dataset,
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
    )


__all__ = ["read_predict_paths_with_medical_reader"]
