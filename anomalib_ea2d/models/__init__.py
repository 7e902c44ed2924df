"""Models, laid out as anomalib lays out its own: ``image/ea2d/`` (EA2D) and ``components/`` (layers any model can use).

``image/ea2d/`` is the folder anomalib would take as ``anomalib/models/image/ea2d/``; ``components/``
holds what is not EA2D's own (the timm ResNet encoder with local weights, frozen BatchNorm
statistics, BatchNorm folding, the image score of an anomaly map) and imports nothing from it.
"""
