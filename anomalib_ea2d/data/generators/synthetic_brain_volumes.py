"""Volume output of the synthetic brain generator: NIfTI volumes and 3-D lesion masks in the MedicalVolumes layout.

The subjects are those of :mod:`anomalib_ea2d.data.generators.synthetic_brain`: subject ``i`` of a split takes
its pose and elastic deformation of the MNI152 template from the same random stream as the 2-D
generator's subject ``i``, but the whole brain is rendered as one isotropic volume (field of view
210 mm in-plane, the brain's full height axially, RAS affine). Abnormal subjects get one to three
**synthetic 3-D lesions**: irregular ellipsoids with soft edges and texture, hyper- or
hypo-intense, centred deep inside the brain and mostly in white matter, drawn into the tissue before
contrast, bias field and Rician noise. Masks are the lesions' half-strength surfaces, saved under the
same file names. The lesions are a software test signal, not a model of disease (see ``docs/data.md``).

Layout (``MedicalVolumes(normal_dir="train/good", abnormal_dir="test/lesion",
normal_test_dir="test/good", mask_dir="ground_truth/lesion")``)::

    root/manifest.json  root/train/good/*.nii.gz  root/test/good/*.nii.gz
    root/test/lesion/*.nii.gz  root/ground_truth/lesion/*.nii.gz

Example:
    >>> import tempfile
    >>> params = SyntheticVolumeParams(volume_size=32, num_train=1, num_test_normal=1, num_test_abnormal=1)
    >>> root = generate_synthetic_brain_volumes(tempfile.mkdtemp(), params)
    >>> sorted(p.name for p in (root / "ground_truth" / "lesion").iterdir())
    ['test_abnormal_s000.nii.gz']
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import nibabel as nib
import numpy as np
from scipy import ndimage

from anomalib_ea2d.data.generators.anatomy import FIELD_OF_VIEW_MM, load_atlas, sampling_coordinates
from anomalib_ea2d.data.generators.cache import (
    SPLIT_NAMES,
    SPLITS,
    GeneratorParams,
    check_writable,
    is_up_to_date,
    staging_folder,
    swap_in,
)
from anomalib_ea2d.data.generators.lesions import draw_lesions_3d
from anomalib_ea2d.data.generators.synthetic_brain import NORMALISED_P99
from anomalib_ea2d.data.layout import LESION_MASK_DIR

logger = logging.getLogger(__name__)

VOLUME_GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SyntheticVolumeParams(GeneratorParams):
    """Parameters of the synthetic brain volumes; every field enters the cache hash.

    Args:
        seed: Seed of all random draws (the 2-D generator's ``seed``: same subjects).
        volume_size: In-plane voxels over the 210 mm field of view (isotropic voxels).
        num_train: Normal training volumes.
        num_test_normal: Normal test volumes.
        num_test_abnormal: Test volumes with lesions.
        lesions_per_volume: Inclusive range of lesions per abnormal volume.
        lesion_radius_mm: Range of the lesions' semi-axes in millimetres.

    Example:
        >>> SyntheticVolumeParams(volume_size=64).digest() != SyntheticVolumeParams().digest()
        True
    """

    seed: int = 0
    volume_size: int = 96
    num_train: int = 20
    num_test_normal: int = 10
    num_test_abnormal: int = 10
    lesions_per_volume: tuple[int, int] = (1, 3)
    lesion_radius_mm: tuple[float, float] = (5.0, 12.0)

    VERSION: ClassVar[int] = VOLUME_GENERATOR_VERSION
    FILE_PATTERN: ClassVar[str] = "*.nii.gz"
    PAIRS: ClassVar[tuple[str, ...]] = ("lesions_per_volume", "lesion_radius_mm")

    def __post_init__(self) -> None:
        self.store_pairs()
        ok = (
            self.volume_size >= 16
            and min(self.num_train, self.num_test_normal, self.num_test_abnormal) >= 1
            and 1 <= self.lesions_per_volume[0] <= self.lesions_per_volume[1]
            and 0 < self.lesion_radius_mm[0] <= self.lesion_radius_mm[1] <= 30
        )
        if not ok:
            msg = f"Invalid synthetic volume parameters {self}: need volume_size >= 16, counts >= 1, ordered ranges."
            raise ValueError(msg)


def synthesize_volume(
    params: SyntheticVolumeParams, split: str, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render subject ``index`` of ``split`` as ``(volume int16, lesion mask uint8, RAS affine)``, axes (x, y, z)."""
    size = params.volume_size
    spacing = FIELD_OF_VIEW_MM / size
    atlas = load_atlas((0.0, 1.0))
    rng = np.random.default_rng([params.seed, SPLIT_NAMES.index(split), index])
    rng.uniform(0.1, 0.9, size=5)  # the 2-D generator's slice positions; keeps the pose/deformation draws aligned
    z_lo, z_hi = (z - atlas.centre[2] for z in atlas.z_limits)
    offsets = np.arange(math.floor((z_lo - 6) / spacing), math.ceil((z_hi + 6) / spacing) + 1) * spacing
    coords = sampling_coordinates(rng, atlas, offsets, size).reshape(3, -1)
    shape = (len(offsets), size, size)
    soft_brain = np.clip(ndimage.map_coordinates(atlas.mask, coords, order=1, cval=0.0), 0, 1)
    inside = soft_brain > 0
    t1, wm = np.zeros_like(soft_brain), np.zeros_like(soft_brain)
    t1[inside] = ndimage.map_coordinates(atlas.t1_coeffs, coords[:, inside], order=3, prefilter=False, cval=0.0)
    wm[inside] = np.clip(ndimage.map_coordinates(atlas.wm, coords[:, inside], order=1, cval=0.0), 0, 1)
    soft_brain, t1, wm = soft_brain.reshape(shape), t1.reshape(shape), wm.reshape(shape)
    brain = soft_brain > 0.5
    t1 = np.clip(t1, 0, None) * soft_brain
    core_wm = (wm > 0.9) & brain
    tissue = t1 / max(
        float(np.median(t1[core_wm])) if core_wm.sum() > 10 else float(np.percentile(t1[brain], 95)), 1e-6
    )
    mask = np.zeros(shape, bool)
    if split == "test_abnormal":
        tissue, mask = draw_lesions_3d(
            rng, tissue, brain, wm, params.lesions_per_volume, params.lesion_radius_mm, spacing
        )
    gamma = rng.uniform(0.8, 1.25)
    xyz = (coords.reshape(3, *shape) - atlas.centre[:, None, None, None]) / 80.0
    terms = [xyz[0], xyz[1], xyz[2], xyz[0] * xyz[1], xyz[0] * xyz[2], xyz[1] * xyz[2], xyz[0] ** 2, xyz[1] ** 2]
    bias = np.exp(np.clip(sum(rng.normal(0, 0.08) * term for term in terms), -0.3, 0.3))
    sigma = rng.uniform(0.01, 0.03)
    signal = np.power(tissue, gamma) * bias
    signal = np.hypot(signal + rng.standard_normal(shape) * sigma, rng.standard_normal(shape) * sigma) * soft_brain
    values = np.clip(signal * NORMALISED_P99 / float(np.percentile(signal[brain & ~mask], 99)), 0, 1)
    # (slice, row, column) with rows anterior→posterior → (x, y, z) in RAS order.
    to_ras = lambda a: np.ascontiguousarray(a.transpose(2, 1, 0)[:, ::-1, :])  # noqa: E731
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = [-(size - 1) / 2 * spacing, -(size - 1) / 2 * spacing, offsets[0]]
    return to_ras(np.round(values * 1000).astype(np.int16)), to_ras(mask.astype(np.uint8)), affine


def generate_synthetic_brain_volumes(
    root: str | Path, params: SyntheticVolumeParams | None = None, *, force: bool = False
) -> Path:
    """Write the volumes under ``root`` unless an identical set is there; built in a sibling folder, then swapped in.

    Raises:
        FileExistsError: ``root`` is not empty and holds no manifest of this generator.
    """
    params, root = params or SyntheticVolumeParams(), Path(root)
    if not force and is_up_to_date(root, params):
        return root
    check_writable(root, "synthetic volumes")
    start = time.perf_counter()
    staging = staging_folder(root, params)
    counts: dict[str, int] = {}
    totals = {
        "train": params.num_train,
        "test_normal": params.num_test_normal,
        "test_abnormal": params.num_test_abnormal,
    }
    for split, folder, lesions in SPLITS:
        (staging / folder).mkdir(parents=True)
        if lesions:
            (staging / LESION_MASK_DIR).mkdir(parents=True)
        for index in range(totals[split]):
            volume, mask, affine = synthesize_volume(params, split, index)
            name = f"{split}_s{index:03d}.nii.gz"
            nib.save(nib.Nifti1Image(volume, affine), staging / folder / name)
            if lesions:
                nib.save(nib.Nifti1Image(mask, affine), staging / LESION_MASK_DIR / name)
        counts[folder] = totals[split]
        if lesions:
            counts[LESION_MASK_DIR] = totals[split]
    manifest = {
        "generator": __name__,
        "version": VOLUME_GENERATOR_VERSION,
        "digest": params.digest(),
        "params": params.to_dict(),
        "counts": counts,
        "generation_seconds": round(time.perf_counter() - start, 2),
        "note": "Lesions are synthetic (software test signal), not real pathology.",
    }
    swap_in(staging, root, manifest)
    logger.info(
        "Generated synthetic brain volumes (%s) in %.1f s at %s.", params.digest(), manifest["generation_seconds"], root
    )
    return root


__all__ = ["SyntheticVolumeParams", "generate_synthetic_brain_volumes", "synthesize_volume"]
