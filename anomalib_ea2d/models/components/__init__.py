"""Model building blocks that work for any model, none of them EA2D's own.

Modules: ``backbone`` (timm ResNet feature extractor with ImageNet or local weights, offline
checks), ``batchnorm`` (BatchNorm with frozen statistics, momentum), ``fusion`` (BatchNorm folded
into the convolution before it, for inference).
"""
