"""Generator of the synthetic brain-MRI demo set: axial T1 slices of simulated subjects, with synthetic lesions.

The anatomy is the MNI152 2009 (nonlinear, symmetric) T1 template that ships inside the ``nilearn``
wheel, together with its brain mask and white-matter probability map, so nothing is downloaded.
Each simulated *subject* is the template under a random smooth elastic deformation and a small
affine transform, imaged with a random contrast (gamma), a smooth multiplicative bias field and
Rician noise, then skull-stripped (background set to 0) and normalised per volume. A few axial slices
from a mid-brain range are taken from every subject, so training and test images come from
different subjects.

Abnormal test slices get one to three *synthetic* lesions: irregular ellipsoidal blobs with soft
edges and texture, hyper- or hypo-intense, inside the brain and mostly in white matter, together
with a binary ground-truth mask (the lesion's half-intensity contour). The lesions are drawn into the
tissue before contrast, bias field and noise, so they are imaged like the anatomy around them.

What the synthetic lesions mean: they are a *software test signal*, not a model of any disease. They
make pixel AUROC and PRO measurable and let a pipeline be checked end to end on a CPU in minutes.
Scores on this set say nothing about performance on real pathology; real lesions differ in shape,
location, mass effect and appearance across sequences. Use the paper datasets for that.

Everything is deterministic given :class:`SyntheticBrainParams` (subject ``i`` of a split always
gets the same random stream), and :func:`generate_synthetic_brain` caches the set on disk with a
manifest holding a hash of the parameters: the set is regenerated only when they change.

This module holds the parameters, the rendering of a subject's slices and the cached generator; the
template and the subjects' deformation are in :mod:`anomalib_ea2d.data.generators.anatomy`, the
lesion painting in :mod:`anomalib_ea2d.data.generators.lesions`, the cache (manifest, swap into
place) in :mod:`anomalib_ea2d.data.generators.cache`.

Example:
    >>> import tempfile
    >>> from anomalib_ea2d.data.generators.synthetic_brain import SyntheticBrainParams, generate_synthetic_brain
    >>> params = SyntheticBrainParams(image_size=64, num_train=4, num_test_normal=2, num_test_abnormal=2)
    >>> root = generate_synthetic_brain(tempfile.mkdtemp(), params)
    >>> len(list((root / "test" / "lesion").glob("*.png")))
    2
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image
from scipy import ndimage

from anomalib_ea2d.data.generators.anatomy import load_atlas, sampling_coordinates
from anomalib_ea2d.data.generators.cache import (
    SPLIT_NAMES,
    SPLITS,
    GeneratorParams,
    check_writable,
    is_up_to_date,
    staging_folder,
    swap_in,
)
from anomalib_ea2d.data.generators.lesions import draw_lesions
from anomalib_ea2d.data.layout import LESION_MASK_DIR

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 2
"""Bumped whenever the rendering changes, so cached sets made by older code are regenerated."""

SUBJECT_PATTERN = r"_s(\d+)_"
"""The subject of a generated slice in its file name (``train_s012_z040_2.png``: subject ``012``)."""

NORMALISED_P99 = 0.75
"""Grey value (in [0, 1]) that the 99th percentile of a lesion-free volume's brain voxels maps to."""


@dataclass(frozen=True)
class SyntheticBrainParams(GeneratorParams):
    """Parameters of the synthetic brain-MRI set; every field enters the cache hash.

    Args:
        seed: Seed of all random draws.
        image_size: Side of the square output slices in pixels (field of view 210 mm).
        num_train: Number of normal training slices.
        num_test_normal: Number of normal test slices.
        num_test_abnormal: Number of test slices with lesions.
        slices_per_subject: Axial slices taken from each simulated subject.
        lesions_per_image: Inclusive range of the number of lesions per abnormal slice.
        lesion_radius_mm: Range of the lesions' semi-axes in millimetres.
        slice_range: Axial range the slices are drawn from, as fractions of the brain's height
            (0 = lowest brain voxel of the template, 1 = vertex).

    Example:
        >>> SyntheticBrainParams(image_size=128).digest() != SyntheticBrainParams().digest()
        True
    """

    seed: int = 0
    image_size: int = 256
    num_train: int = 200
    num_test_normal: int = 100
    num_test_abnormal: int = 100
    slices_per_subject: int = 5
    lesions_per_image: tuple[int, int] = (1, 3)
    lesion_radius_mm: tuple[float, float] = (4.0, 11.0)
    slice_range: tuple[float, float] = (0.45, 0.75)

    VERSION: ClassVar[int] = GENERATOR_VERSION
    FILE_PATTERN: ClassVar[str] = "*.png"
    PAIRS: ClassVar[tuple[str, ...]] = ("lesions_per_image", "lesion_radius_mm", "slice_range")

    def __post_init__(self) -> None:
        self.store_pairs()  # lists (e.g. from YAML) stored as tuples, so hashing is stable
        self._validate()

    def _validate(self) -> None:
        checks = [
            (self.image_size >= 32, "image_size must be >= 32"),
            (min(self.num_train, self.num_test_normal, self.num_test_abnormal) >= 1, "every image count must be >= 1"),
            (self.slices_per_subject >= 1, "slices_per_subject must be >= 1"),
            (1 <= self.lesions_per_image[0] <= self.lesions_per_image[1], "lesions_per_image must be 1 <= low <= high"),
            (
                0 < self.lesion_radius_mm[0] <= self.lesion_radius_mm[1] <= 30,
                "lesion_radius_mm must be 0 < low <= high <= 30 mm",
            ),
            (0 <= self.slice_range[0] < self.slice_range[1] <= 1, "slice_range must be 0 <= low < high <= 1"),
        ]
        for ok, message in checks:
            if not ok:
                msg = f"Invalid synthetic brain parameters: {message}; got {self}."
                raise ValueError(msg)


@dataclass
class SubjectSlices:
    """Rendered slices of one simulated subject.

    Attributes:
        images: ``(n, S, S)`` uint8 slices as saved (with lesions for abnormal subjects).
        clean: ``(n, S, S)`` uint8 slices of the same subject and acquisition without lesions.
        lesion_masks: ``(n, S, S)`` bool ground truth (all False for normal subjects).
        brain: ``(n, S, S)`` bool brain masks.
        slice_mm: Axial position of each slice in template millimetres (voxel index).
    """

    images: np.ndarray
    clean: np.ndarray
    lesion_masks: np.ndarray
    brain: np.ndarray
    slice_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))


def synthesize_subject(
    params: SyntheticBrainParams,
    split: str,
    index: int,
    num_slices: int | None = None,
) -> SubjectSlices:
    """Render the slices of subject ``index`` of ``split`` (``train``, ``test_normal``, ``test_abnormal``).

    Args:
        params: Generation parameters.
        split: Which split the subject belongs to; only ``test_abnormal`` subjects get lesions.
        index: Subject number within the split; with the seed it fixes the random stream.
        num_slices: Number of slices (default ``params.slices_per_subject``).

    Returns:
        The rendered slices, with the lesion-free render of the same acquisition for comparison.

    Example:
        >>> from anomalib_ea2d.data.generators.synthetic_brain import SyntheticBrainParams, synthesize_subject
        >>> subject = synthesize_subject(SyntheticBrainParams(image_size=64), "test_abnormal", 0, num_slices=2)
        >>> subject.images.shape, bool(subject.lesion_masks.any(axis=(1, 2)).all())
        ((2, 64, 64), True)
    """
    names = list(SPLIT_NAMES)
    if split not in names:
        msg = f"Unknown synthetic brain split {split!r}; use one of {names}."
        raise ValueError(msg)
    with_lesions = split == "test_abnormal"
    n = params.slices_per_subject if num_slices is None else num_slices
    size = params.image_size
    atlas = load_atlas(params.slice_range)
    rng = np.random.default_rng([params.seed, names.index(split), index])

    # Stratified axial positions within the mid-brain slab.
    z_lo, z_hi = atlas.z_limits
    z = z_lo + (np.arange(n) + rng.uniform(0.1, 0.9, size=n)) * (z_hi - z_lo) / n
    coords = sampling_coordinates(rng, atlas, z - atlas.centre[2], size).reshape(3, -1)
    shape = (n, size, size)
    soft_brain = np.clip(ndimage.map_coordinates(atlas.mask, coords, order=1, cval=0.0), 0, 1)
    # Intensities are only needed where there is brain; skipping the background halves the work.
    inside = soft_brain > 0
    t1 = np.zeros_like(soft_brain)
    wm = np.zeros_like(soft_brain)
    t1[inside] = ndimage.map_coordinates(atlas.t1_coeffs, coords[:, inside], order=3, prefilter=False, cval=0.0)
    wm[inside] = np.clip(ndimage.map_coordinates(atlas.wm, coords[:, inside], order=1, cval=0.0), 0, 1)
    soft_brain, t1, wm = soft_brain.reshape(shape), t1.reshape(shape), wm.reshape(shape)
    brain = soft_brain > 0.5
    t1 = np.clip(t1, 0, None) * soft_brain

    # Tissue intensities relative to white matter, so contrasts below are in "white matter units".
    core_wm = (wm > 0.9) & brain
    wm_level = float(np.median(t1[core_wm])) if core_wm.sum() > 10 else float(np.percentile(t1[brain], 95))
    tissue = t1 / max(wm_level, 1e-6)

    lesioned = tissue.copy()
    masks = np.zeros(shape, dtype=bool)
    if with_lesions:
        for k in range(n):
            lesioned[k], masks[k] = draw_lesions(
                rng, tissue[k], brain[k], wm[k], params.lesions_per_image, params.lesion_radius_mm
            )

    # Acquisition: contrast (gamma), smooth bias field (quadratic in space), Rician noise, skull stripping.
    gamma = rng.uniform(0.8, 1.25)
    xyz = coords.reshape(3, *shape) - atlas.centre[:, None, None, None]
    xyz = xyz / 80.0
    terms = [xyz[0], xyz[1], xyz[2], xyz[0] * xyz[1], xyz[0] * xyz[2], xyz[1] * xyz[2], xyz[0] ** 2, xyz[1] ** 2]
    log_bias = sum(rng.normal(0, 0.08) * term for term in terms)
    bias = np.exp(np.clip(log_bias, -0.3, 0.3))
    sigma = rng.uniform(0.01, 0.03)
    noise_real = rng.standard_normal(shape) * sigma
    noise_imag = rng.standard_normal(shape) * sigma

    def acquire(values: np.ndarray) -> np.ndarray:
        signal = np.power(values, gamma) * bias
        return np.hypot(signal + noise_real, noise_imag) * soft_brain

    clean_signal = acquire(tissue)
    scale = NORMALISED_P99 / float(np.percentile(clean_signal[brain], 99))
    clean = _to_uint8(clean_signal * scale)
    images = _to_uint8(acquire(lesioned) * scale) if with_lesions else clean
    return SubjectSlices(images=images, clean=clean, lesion_masks=masks, brain=brain, slice_mm=z)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)


def _subjects(count: int, per_subject: int) -> Iterator[tuple[int, int]]:
    """Yield ``(subject index, number of slices)`` covering ``count`` slices."""
    for index in range(math.ceil(count / per_subject)):
        yield index, min(per_subject, count - index * per_subject)


def generate_synthetic_brain(
    root: str | Path,
    params: SyntheticBrainParams | None = None,
    *,
    force: bool = False,
) -> Path:
    """Generate the set under ``root`` unless an up-to-date copy is already there; return ``root``.

    Layout (anomalib ``Folder`` style; a mask has the same file name as its image)::

        root/manifest.json            parameters, their hash, counts, generation time
        root/train/good/*.png         normal training slices
        root/test/good/*.png          normal test slices
        root/test/lesion/*.png        test slices with synthetic lesions
        root/ground_truth/lesion/*.png  binary lesion masks (0/255)

    When the parameters change, the previous set is replaced. The set is built in a temporary
    sibling folder and moved into place, so an interrupted run never leaves a half-written set that
    looks complete. Only folders listed above (and the manifest) are ever deleted.

    Args:
        root: Folder of the set.
        params: Generation parameters (defaults: 200 train, 100 normal + 100 abnormal test, 256 px).
        force: Regenerate even if the cached set matches.

    Returns:
        ``root`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: ``root`` exists, is not empty and holds no synthetic-brain manifest.
    """
    params = params or SyntheticBrainParams()
    root = Path(root)
    if not force and is_up_to_date(root, params):
        return root
    check_writable(root, "the synthetic brain set")

    start = time.perf_counter()
    staging = staging_folder(root, params)
    counts: dict[str, int] = {}
    totals = {
        "train": params.num_train,
        "test_normal": params.num_test_normal,
        "test_abnormal": params.num_test_abnormal,
    }
    for split, folder, with_lesions in SPLITS:
        total = totals[split]
        out_dir = staging / folder
        out_dir.mkdir(parents=True)
        mask_dir = staging / LESION_MASK_DIR
        if with_lesions:
            mask_dir.mkdir(parents=True)
        for index, n in _subjects(total, params.slices_per_subject):
            subject = synthesize_subject(params, split, index, num_slices=n)
            for k in range(n):
                name = f"{split}_s{index:03d}_z{round(float(subject.slice_mm[k])):03d}_{k}.png"
                Image.fromarray(subject.images[k]).save(out_dir / name)
                if with_lesions:
                    Image.fromarray(subject.lesion_masks[k].astype(np.uint8) * 255).save(mask_dir / name)
        counts[folder] = total
        if with_lesions:
            counts[LESION_MASK_DIR] = total
    elapsed = time.perf_counter() - start
    manifest = {
        "generator": __name__,
        "version": GENERATOR_VERSION,
        "digest": params.digest(),
        "params": params.to_dict(),
        "counts": counts,
        "generation_seconds": round(elapsed, 2),
        "note": "Lesions are synthetic (software test signal), not real pathology.",
    }
    swap_in(staging, root, manifest)
    logger.info("Generated the synthetic brain set (%s) in %.1f s at %s.", params.digest(), elapsed, root)
    return root


__all__ = [
    "SUBJECT_PATTERN",
    "GENERATOR_VERSION",
    "NORMALISED_P99",
    "SubjectSlices",
    "SyntheticBrainParams",
    "generate_synthetic_brain",
    "is_up_to_date",
    "synthesize_subject",
]
