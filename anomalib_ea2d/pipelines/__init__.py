"""Pipelines built on anomalib's Engine: ``benchmark/`` (``python -m anomalib_ea2d.pipelines.benchmark``)."""
