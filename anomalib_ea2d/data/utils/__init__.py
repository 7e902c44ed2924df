"""Data utilities shared by the datamodules: splits that keep groups of images together."""

from anomalib_ea2d.data.utils.split import file_groups, partition_groups, split_by_group

__all__ = ["file_groups", "partition_groups", "split_by_group"]
