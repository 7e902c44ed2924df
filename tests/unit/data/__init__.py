"""Tests of ``anomalib_ea2d.data``, one module per source module."""
