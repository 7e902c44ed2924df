"""Inference graphs with BatchNorm folded into the preceding convolution.

In eval mode a BatchNorm is a per-channel affine map, so ``bn(conv(x))`` equals one convolution
with scaled weights and a shifted bias. :func:`fold_batchnorms` traces a module with ``torch.fx``
and replaces every ``conv -> bn`` pair (also ``conv -> nearest/bilinear upsample -> bn``, since
such upsampling commutes with a per-channel affine map) by a :class:`ConvBatchNorm2d` call. The
graph shares the original modules; the folded weights are cached per convolution and recomputed
whenever a source tensor changes (its version counter or storage), so training,
``load_state_dict`` or ``.to()`` never leave them stale. The cache costs about one copy of the
folded convolution weights. Folding saves one memory pass per BatchNorm; the outputs agree with
the unfolded module to float rounding (about 1e-6).
"""

from __future__ import annotations

import logging

import torch
from torch import fx, nn

logger = logging.getLogger(__name__)

FOLDABLE_UPSAMPLING = ("nearest", "bilinear")
"""Upsampling modes that commute with a per-channel affine map (each output is a convex combination)."""


class ConvBatchNorm2d(nn.Module):
    """``bn(mid(conv(x)))`` for an eval-mode BatchNorm, computed as one convolution with folded weights.

    The modules are held in a plain list, so they are not registered twice in the graph that uses
    this wrapper. Without autograd the folded weights are cached and recomputed only when a
    parameter or running statistic changed (in place or replaced); with autograd they are
    recomputed on every call, so gradients reach the original parameters.

    Args:
        conv: The convolution.
        batchnorm: The BatchNorm that follows it (with affine parameters and running statistics).
        upsample: An optional nearest/bilinear ``nn.Upsample`` between the two.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> conv, bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4).eval()
        >>> x = torch.randn(1, 3, 8, 8)
        >>> torch.allclose(ConvBatchNorm2d(conv, bn)(x), bn(conv(x)), atol=1e-6)
        True
    """

    def __init__(self, conv: nn.Conv2d, batchnorm: nn.BatchNorm2d, upsample: nn.Module | None = None) -> None:
        super().__init__()
        self.parts: list[nn.Module | None] = [conv, batchnorm, upsample]
        self._cache: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    def _sources(self) -> list[torch.Tensor]:
        conv, batchnorm, _ = self.parts
        tensors = [conv.weight, batchnorm.weight, batchnorm.bias, batchnorm.running_mean, batchnorm.running_var]
        return tensors if conv.bias is None else [*tensors, conv.bias]

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The folded convolution weight and bias (cached when autograd is off)."""
        conv, batchnorm, _ = self.parts
        assert isinstance(conv, nn.Conv2d)
        assert isinstance(batchnorm, nn.BatchNorm2d)
        cacheable = not torch.is_grad_enabled()
        if cacheable:
            key = (batchnorm.eps, *(_state(tensor) for tensor in self._sources()))
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1], self._cache[2]
        scale = batchnorm.weight * torch.rsqrt(batchnorm.running_var + batchnorm.eps)
        shift = batchnorm.bias - batchnorm.running_mean * scale
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        weight = conv.weight * scale.reshape(-1, 1, 1, 1)
        if cacheable:
            # Stored channels-last, the layout of the fast path's features: no conversion per call.
            weight = weight.contiguous(memory_format=torch.channels_last)
            self._cache = (key, weight, shift)
        return weight, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve with the folded weights (then upsample, if any)."""
        conv, _, upsample = self.parts
        assert isinstance(conv, nn.Conv2d)
        weight, shift = self.folded()
        out = conv._conv_forward(x, weight, shift)  # noqa: SLF001
        return out if upsample is None else upsample(out)


def _state(tensor: torch.Tensor) -> tuple:
    """What identifies a tensor's current values: storage, in-place version, dtype and device."""
    return (tensor.data_ptr(), tensor._version, tensor.dtype, tensor.device)  # noqa: SLF001


def _is_foldable_batchnorm(module: nn.Module) -> bool:
    return (
        type(module) is nn.BatchNorm2d
        and module.affine
        and module.track_running_stats
        and module.running_mean is not None
        and module.running_var is not None
    )


def _is_foldable_upsample(module: nn.Module) -> bool:
    return isinstance(module, nn.Upsample) and module.mode in FOLDABLE_UPSAMPLING


class _LeafTracer(fx.Tracer):
    """fx tracer that keeps the given module types as opaque calls."""

    def __init__(self, leaves: tuple[type[nn.Module], ...]) -> None:
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self.leaves) or super().is_leaf_module(m, module_qualified_name)


def fold_batchnorms(module: nn.Module, leaves: tuple[type[nn.Module], ...] = ()) -> tuple[fx.GraphModule, int]:
    """Trace ``module`` and fold every eval-mode BatchNorm into the convolution before it.

    Args:
        module: Module to trace; it must be traceable by ``torch.fx`` (ResNets are).
        leaves: Module types kept as opaque calls (e.g. ones with data-dependent control flow).

    Returns:
        The traced graph module (sharing ``module``'s submodules and parameters) and the number of
        folded pairs. The graph is only valid while every BatchNorm is in eval mode.

    Raises:
        torch.fx.proxy.TraceError: If the module cannot be traced.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
        >>> graph, folded = fold_batchnorms(net)
        >>> x = torch.randn(2, 3, 16, 16)
        >>> folded, torch.allclose(graph(x), net(x), atol=1e-6)
        (1, True)
    """
    tracer = _LeafTracer(leaves)
    graph = tracer.trace(module)
    traced = fx.GraphModule(tracer.root, graph, module.__class__.__name__)
    modules = dict(traced.named_modules())
    folded = 0
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or not _is_foldable_batchnorm(modules[node.target]):
            continue
        producer, upsample = node.args[0], None
        if not isinstance(producer, fx.Node) or producer.op != "call_module" or len(producer.users) != 1:
            continue
        if _is_foldable_upsample(modules[producer.target]):
            upsample, producer = producer, producer.args[0]
            if not isinstance(producer, fx.Node) or producer.op != "call_module" or len(producer.users) != 1:
                continue
        conv = modules[producer.target]
        if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros":
            continue
        name = f"folded_{folded}"
        traced.add_submodule(
            name, ConvBatchNorm2d(conv, modules[node.target], None if upsample is None else modules[upsample.target])
        )
        with traced.graph.inserting_before(node):
            replacement = traced.graph.call_module(name, producer.args)
        node.replace_all_uses_with(replacement)
        traced.graph.erase_node(node)
        if upsample is not None:
            traced.graph.erase_node(upsample)
        traced.graph.erase_node(producer)
        folded += 1
    traced.graph.lint()
    traced.recompile()
    return traced, folded


class FoldedGraphCache:
    """Lazily built BatchNorm-folded graphs of submodules, rebuilt when a submodule is replaced.

    The cache is keyed by the identity of every module inside each source module, so swapping a
    submodule (or deep-copying the owner) triggers a new trace; parameter updates need nothing, as
    the graphs read the live parameters. A module that cannot be traced is used as it is (same
    outputs, without folding) after one logged warning.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)).eval()
        >>> cache = FoldedGraphCache()
        >>> x = torch.randn(1, 3, 8, 8)
        >>> torch.allclose(cache.get(net)(x), net(x), atol=1e-6), cache.get(net) is cache.get(net)
        (True, True)
    """

    def __init__(self, leaves: tuple[type[nn.Module], ...] = ()) -> None:
        self.leaves = leaves
        self._entries: dict[int, tuple[tuple[int, ...], nn.Module]] = {}

    def get(self, module: nn.Module) -> nn.Module:
        """Folded graph of ``module`` (or ``module`` itself if it cannot be traced)."""
        signature = tuple(id(m) for m in module.modules())
        entry = self._entries.get(id(module))
        if entry is not None and entry[0] == signature:
            return entry[1]
        try:
            graph: nn.Module = fold_batchnorms(module, self.leaves)[0]
        except Exception as error:  # noqa: BLE001 - any tracing failure only costs speed
            logger.warning(
                "Could not fold BatchNorms of %s for fast inference (%s: %s); using it unfolded (same outputs).",
                type(module).__name__,
                type(error).__name__,
                error,
            )
            graph = module
        self._entries[id(module)] = (signature, graph)
        return graph

    def clear(self) -> None:
        """Drop every cached graph."""
        self._entries.clear()

    def __deepcopy__(self, memo: dict) -> FoldedGraphCache:
        # A copy of the owner has other modules: start empty rather than copy graphs of the old ones.
        return FoldedGraphCache(self.leaves)

    def __getstate__(self) -> dict:
        return {"leaves": self.leaves}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["leaves"])
