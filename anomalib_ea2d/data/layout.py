"""Folder names of the sets this project writes: the prepared paper datasets and the synthetic brain sets.

Both are in anomalib's ``Folder`` layout, with the normal training images in :data:`TRAIN_DIR` and
the normal test images in :data:`TEST_NORMAL_DIR`. Their abnormal test images differ: a prepared
paper dataset (``python -m anomalib_ea2d.data.prepare``) keeps every abnormal class in
:data:`TEST_ABNORMAL_DIR`; the synthetic sets keep their lesions in :data:`TEST_LESION_DIR`, with
masks in :data:`LESION_MASK_DIR`. Each name is defined here only.
"""

TRAIN_DIR = "train/good"
"""Normal training images."""
TEST_NORMAL_DIR = "test/good"
"""Normal test images."""
TEST_ABNORMAL_DIR = "test/abnormal"
"""Abnormal test images of a prepared paper dataset."""
TEST_LESION_DIR = "test/lesion"
"""Test images (slices or volumes) with synthetic lesions."""
LESION_MASK_DIR = "ground_truth/lesion"
"""Masks of the synthetic lesions, under the file names of their images."""
MANIFEST_NAME = "manifest.json"
"""What a prepared or generated set records about itself (parameters, counts), at its root."""

__all__ = ["LESION_MASK_DIR", "MANIFEST_NAME", "TEST_ABNORMAL_DIR", "TEST_LESION_DIR", "TEST_NORMAL_DIR", "TRAIN_DIR"]
