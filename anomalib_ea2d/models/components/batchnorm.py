"""BatchNorm whose statistics are frozen for good: the ``freeze_encoder_bn`` recipe switch.

The paper's OCT2017 recipe trains with the encoder's BatchNorms in eval mode: they normalise with
their running statistics and never update them, while their affine weight and bias keep training.
Setting ``module.eval()`` once is not enough under Lightning: the trainer does not call
``.train()`` on the model when fitting starts, and its evaluation loops put every module's
``training`` flag back directly. So the freeze lives in the layer itself:
:class:`FrozenStatisticsBatchNorm2d` normalises with its running statistics whatever its mode, and
:func:`freeze_batchnorm_statistics` swaps it in for every BatchNorm of a module.

It deliberately is not a ``torch.nn.modules.batchnorm._BatchNorm``: code that converts or re-tunes
every BatchNorm (``SyncBatchNorm.convert_sync_batchnorm`` under ``--trainer.sync_batchnorm``, a
momentum change) leaves it alone. Its state-dict entries are a BatchNorm's, so checkpoints load
either way.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812


class FrozenStatisticsBatchNorm2d(nn.Module):
    """A ``BatchNorm2d`` that always normalises with its running statistics and never updates them.

    The affine ``weight`` and ``bias`` stay trainable parameters (unlike torchvision's
    ``FrozenBatchNorm2d``), as in a BatchNorm kept in eval mode during training.

    Args:
        batchnorm: The BatchNorm to freeze; its parameters and buffers are shared, not copied.

    Example:
        >>> import torch
        >>> bn = torch.nn.BatchNorm2d(4).eval()
        >>> frozen = FrozenStatisticsBatchNorm2d(bn).train()
        >>> x = torch.randn(2, 4, 8, 8)
        >>> torch.equal(frozen(x), bn(x)), int(frozen.num_batches_tracked)
        (True, 0)
    """

    def __init__(self, batchnorm: nn.BatchNorm2d) -> None:
        super().__init__()
        if batchnorm.running_mean is None or batchnorm.running_var is None:
            msg = f"Cannot freeze the statistics of {batchnorm}: it tracks no running statistics."
            raise ValueError(msg)
        self.num_features = batchnorm.num_features
        self.eps = batchnorm.eps
        self.weight = batchnorm.weight
        self.bias = batchnorm.bias
        self.register_buffer("running_mean", batchnorm.running_mean)
        self.register_buffer("running_var", batchnorm.running_var)
        self.register_buffer("num_batches_tracked", batchnorm.num_batches_tracked)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` with the running statistics (in train and eval mode alike)."""
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )

    def extra_repr(self) -> str:
        """Size, eps, and that the statistics are frozen."""
        return f"{self.num_features}, eps={self.eps}, statistics frozen"


def freeze_batchnorm_statistics(module: nn.Module) -> int:
    """Replace every ``BatchNorm2d`` inside ``module`` by a :class:`FrozenStatisticsBatchNorm2d`.

    Args:
        module: The module to change in place (e.g. an encoder).

    Returns:
        How many BatchNorms were frozen.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        >>> freeze_batchnorm_statistics(net), type(net[1]).__name__
        (1, 'FrozenStatisticsBatchNorm2d')
    """
    targets = [
        (parent, name, child)
        for parent in module.modules()
        for name, child in parent.named_children()
        if isinstance(child, nn.BatchNorm2d)
    ]
    for parent, name, child in targets:
        setattr(parent, name, FrozenStatisticsBatchNorm2d(child))
    return len(targets)


def set_batchnorm_momentum(module: nn.Module, momentum: float) -> None:
    """Set the momentum of every (unfrozen) BatchNorm inside ``module``.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.BatchNorm2d(8))
        >>> set_batchnorm_momentum(net, 0.01); net[0].momentum
        0.01
    """
    if not 0.0 <= momentum <= 1.0:
        msg = f"bn_momentum must be in [0, 1], got {momentum}; fix it in the model's init args."
        raise ValueError(msg)
    for child in module.modules():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):  # noqa: SLF001
            child.momentum = momentum


__all__ = ["FrozenStatisticsBatchNorm2d", "freeze_batchnorm_statistics", "set_batchnorm_momentum"]
