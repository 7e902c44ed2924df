"""Picture of a predicted NIfTI anomaly map over its volume (one slice), for reports and quick checks.

    python -m anomalib_ea2d.visualization.volume_overlay VOLUME MAP out.png [--mask MASK] [--axis axial] [--slice K]

The slice is cut in the patient's frame like :class:`~anomalib_ea2d.data.MedicalVolumes` cuts it;
by default the one where the map is largest. Left: the slice (percentile-scaled) with the lesion
mask's outline if given; right: the map in colour over the slice's foreground, where it reaches
``--threshold`` (default 0: everywhere; anomalib's normalised maps put the decision threshold at 0.5).

Example:
    >>> import tempfile, numpy as np, nibabel as nib
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> data = np.random.default_rng(0).random((16, 16, 8)).astype(np.float32)
    >>> nib.save(nib.Nifti1Image(data, np.eye(4)), folder / "v.nii.gz")
    >>> heat = np.zeros_like(data); heat[4:8, 4:8, 5] = 0.9
    >>> nib.save(nib.Nifti1Image(heat, np.eye(4)), folder / "m.nii.gz")
    >>> save_overlay(folder / "v.nii.gz", folder / "m.nii.gz", folder / "o.png")  # the slice where the map peaks
    5
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from anomalib_ea2d.data.volumes.intensity import percentile_window, to_unit
from anomalib_ea2d.data.volumes.orientation import SliceGeometry
from anomalib_ea2d.data.volumes.records import open_volume


def save_overlay(
    volume: str | Path,
    anomaly_map: str | Path,
    out: str | Path,
    mask: str | Path | None = None,
    axis: str = "axial",
    index: int | None = None,
    threshold: float = 0.0,
) -> int:
    """Save the picture and return the slice index shown."""
    import matplotlib as mpl  # noqa: PLC0415 - only needed for pictures

    mpl.use("Agg")
    from matplotlib import pyplot as plt  # noqa: PLC0415

    source, heat = open_volume(volume), open_volume(anomaly_map)
    geometry = SliceGeometry.from_affine(source.affine, source.shape, axis)
    heat_geometry = SliceGeometry.from_affine(heat.affine, heat.shape, axis)
    heat_values = heat.read_array()
    if index is None:
        per_slice = heat_values.max(axis=tuple(a for a in range(3) if a != heat_geometry.stored_axis))
        index = int(np.argmax(per_slice[::-1] if heat_geometry.flip_slices else per_slice))
    plane = source.read_slice(geometry, index)
    foreground = plane[plane > plane.min()]
    image = to_unit(plane, percentile_window(foreground, (0.5, 99.5))) if foreground.size else plane
    heat_plane = heat_geometry.read(heat_values, index)
    figure, axes = plt.subplots(1, 2, figsize=(8, 4.3))
    for ax in axes:
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    if mask is not None:
        lesion = open_volume(mask).read_slice(geometry, index) > 0
        if lesion.any():
            axes[0].contour(lesion, levels=[0.5], colors="lime", linewidths=1)
    shown = np.ma.masked_where((heat_plane < threshold) | (plane <= plane.min()), heat_plane)
    picture = axes[1].imshow(shown, cmap="jet", vmin=0, vmax=1, alpha=0.6)
    figure.colorbar(picture, ax=axes[1], fraction=0.046, pad=0.04)
    axes[0].set_title(f"{Path(volume).name}, {axis} slice {index}" + (" (mask outline)" if mask else ""), fontsize=9)
    axes[1].set_title("anomaly map" + (f" >= {threshold:g}" if threshold > 0 else " (0.5 = threshold)"), fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return index


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description="Picture of a NIfTI anomaly map over its volume.")
    parser.add_argument("volume", type=Path)
    parser.add_argument("anomaly_map", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mask", type=Path)
    parser.add_argument("--axis", default="axial", choices=["axial", "coronal", "sagittal"])
    parser.add_argument("--slice", type=int, dest="index")
    parser.add_argument("--threshold", type=float, default=0.0)
    args = parser.parse_args(argv)
    index = save_overlay(args.volume, args.anomaly_map, args.out, args.mask, args.axis, args.index, args.threshold)
    print(f"Wrote {args.out} ({args.axis} slice {index}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["save_overlay"]
