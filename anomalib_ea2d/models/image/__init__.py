"""Image models: EA2D (``ea2d/``)."""
