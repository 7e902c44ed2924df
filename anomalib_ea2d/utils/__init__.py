"""Utilities for any entry point: ``quiet`` (silence chatty loggers and warnings while a block runs)."""
