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

import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from anomalib_ea2d.data.generators.anatomy import (
    FIELD_OF_VIEW_MM,
    _load_atlas,
    _rotation,
    _sampling_coordinates,
    _smooth_noise,
)
from anomalib_ea2d.data.generators.synthetic_brain import (
    MANIFEST_NAME,
    MASK_DIR,
    NORMALISED_P99,
    TEST_ABNORMAL_DIR,
    TEST_NORMAL_DIR,
    TRAIN_DIR,
)

logger = logging.getLogger(__name__)

VOLUME_GENERATOR_VERSION = 1
_SPLITS = (
    ("train", TRAIN_DIR, False),
    ("test_normal", TEST_NORMAL_DIR, False),
    ("test_abnormal", TEST_ABNORMAL_DIR, True),
)
_SPLIT_NAMES = ("train", "test_normal", "test_abnormal")  # stream index of each split, as in the 2-D generator


@dataclass(frozen=True)
class SyntheticVolumeParams:
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

    def __post_init__(self) -> None:
        for name in ("lesions_per_volume", "lesion_radius_mm"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        ok = (
            self.volume_size >= 16
            and min(self.num_train, self.num_test_normal, self.num_test_abnormal) >= 1
            and 1 <= self.lesions_per_volume[0] <= self.lesions_per_volume[1]
            and 0 < self.lesion_radius_mm[0] <= self.lesion_radius_mm[1] <= 30
        )
        if not ok:
            msg = f"Invalid synthetic volume parameters {self}: need volume_size >= 16, counts >= 1, ordered ranges."
            raise ValueError(msg)

    def digest(self) -> str:
        """Short hash of the parameters and the generator version; the cache key."""
        payload = json.dumps({"version": VOLUME_GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _draw_lesions_3d(
    rng: np.random.Generator,
    tissue: np.ndarray,
    brain: np.ndarray,
    wm: np.ndarray,
    params: SyntheticVolumeParams,
    spacing: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint 3-D lesions into ``tissue`` (white matter = 1); return it and the lesion mask."""
    out, mask = tissue.copy(), np.zeros(brain.shape, bool)
    depth = ndimage.distance_transform_edt(brain) * spacing
    count = int(rng.integers(params.lesions_per_volume[0], params.lesions_per_volume[1] + 1))
    for _ in range(count):
        axes_mm = rng.uniform(*params.lesion_radius_mm, size=3)
        allowed = depth > axes_mm.max() * 1.3 + spacing
        if not allowed.any():
            allowed = depth >= depth.max()
        weights = np.where(allowed, wm**2 + 0.02, 0.0).ravel()
        centre = np.array(np.unravel_index(int(rng.choice(weights.size, p=weights / weights.sum())), brain.shape))
        reach = math.ceil(axes_mm.max() * 1.6 / spacing) + 1
        low, high = np.maximum(centre - reach, 0), np.minimum(centre + reach + 1, brain.shape)
        box = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
        offsets = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(low, high, strict=True)], indexing="ij"))
        offsets = (offsets - centre[:, None, None, None]).reshape(3, -1) * spacing
        local = _rotation(*rng.uniform(0, math.pi, size=3)).T @ offsets
        distance = np.sqrt(((local / axes_mm[:, None]) ** 2).sum(0)).reshape(high - low)
        distance = distance - 0.3 * _smooth_noise(rng, distance.shape, max(axes_mm.min() * 0.4 / spacing, 0.7))
        t = np.clip((1.2 - distance) / 0.4, 0.0, 1.0)
        alpha = t * t * (3 - 2 * t) * brain[box] * rng.uniform(0.8, 1.0)
        hyper = wm[tuple(centre)] < 0.6 or rng.random() < 0.5
        level = rng.uniform(1.1, 1.3) if hyper else rng.uniform(0.35, 0.6)
        texture = 1.0 + rng.uniform(0.05, 0.1) * _smooth_noise(rng, distance.shape, max(1.2 / spacing, 0.6))
        out[box] = out[box] * (1 - alpha) + alpha * level * texture
        mask[box] |= (distance <= 1.0) & brain[box]
    return out, mask


def synthesize_volume(
    params: SyntheticVolumeParams, split: str, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render subject ``index`` of ``split`` as ``(volume int16, lesion mask uint8, RAS affine)``, axes (x, y, z)."""
    size = params.volume_size
    spacing = FIELD_OF_VIEW_MM / size
    atlas = _load_atlas((0.0, 1.0))
    rng = np.random.default_rng([params.seed, _SPLIT_NAMES.index(split), index])
    rng.uniform(0.1, 0.9, size=5)  # the 2-D generator's slice positions; keeps the pose/deformation draws aligned
    z_lo, z_hi = (z - atlas.centre[2] for z in atlas.z_limits)
    offsets = np.arange(math.floor((z_lo - 6) / spacing), math.ceil((z_hi + 6) / spacing) + 1) * spacing
    coords = _sampling_coordinates(rng, atlas, offsets, size).reshape(3, -1)
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
        tissue, mask = _draw_lesions_3d(rng, tissue, brain, wm, params, spacing)
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


def _up_to_date(root: Path, params: SyntheticVolumeParams) -> bool:
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return False
    counts = manifest.get("counts", {})
    return manifest.get("digest") == params.digest() and all(
        len(list((root / folder).glob("*.nii.gz"))) == n for folder, n in counts.items()
    )


def generate_synthetic_brain_volumes(
    root: str | Path, params: SyntheticVolumeParams | None = None, *, force: bool = False
) -> Path:
    """Write the volumes under ``root`` unless an identical set is there; built in a sibling folder, then swapped in.

    Raises:
        FileExistsError: ``root`` is not empty and holds no manifest of this generator.
    """
    params, root = params or SyntheticVolumeParams(), Path(root)
    if not force and _up_to_date(root, params):
        return root
    if root.exists() and any(root.iterdir()) and not (root / MANIFEST_NAME).is_file():
        msg = (
            f"Refusing to write synthetic volumes into {root}: it is not empty and has no {MANIFEST_NAME}; "
            "use an empty folder."
        )
        raise FileExistsError(msg)
    start = time.perf_counter()
    staging = root.parent / f".{root.name}.tmp-{params.digest()}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    counts: dict[str, int] = {}
    totals = {
        "train": params.num_train,
        "test_normal": params.num_test_normal,
        "test_abnormal": params.num_test_abnormal,
    }
    for split, folder, lesions in _SPLITS:
        (staging / folder).mkdir(parents=True)
        if lesions:
            (staging / MASK_DIR).mkdir(parents=True)
        for index in range(totals[split]):
            volume, mask, affine = synthesize_volume(params, split, index)
            name = f"{split}_s{index:03d}.nii.gz"
            nib.save(nib.Nifti1Image(volume, affine), staging / folder / name)
            if lesions:
                nib.save(nib.Nifti1Image(mask, affine), staging / MASK_DIR / name)
        counts[folder] = totals[split]
        if lesions:
            counts[MASK_DIR] = totals[split]
    manifest = {
        "generator": __name__,
        "version": VOLUME_GENERATOR_VERSION,
        "digest": params.digest(),
        "params": asdict(params),
        "counts": counts,
        "generation_seconds": round(time.perf_counter() - start, 2),
        "note": "Lesions are synthetic (software test signal), not real pathology.",
    }
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_NAME).unlink(missing_ok=True)
    for top in ("train", "test", "ground_truth"):
        shutil.rmtree(root / top, ignore_errors=True)
        (staging / top).rename(root / top)
    (staging / MANIFEST_NAME).rename(root / MANIFEST_NAME)
    shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        "Generated synthetic brain volumes (%s) in %.1f s at %s.", params.digest(), manifest["generation_seconds"], root
    )
    return root


__all__ = ["SyntheticVolumeParams", "generate_synthetic_brain_volumes", "synthesize_volume"]
