"""Inference back-ends of the benchmark: torch eager, OpenVINO FP32 and OpenVINO INT8.

Each back-end is a prediction function ``images -> {field: tensor}`` over the full anomalib graph
(pre-processing, model, post-processing), so the studies time and score them alike. The OpenVINO
models are anomalib exports (INT8 by post-training quantisation with a datamodule), compiled for a
static input shape with FP32 inference precision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from anomalib.deploy import CompressionType
from torch import nn

from anomalib_ea2d.pipelines.benchmark.config import BACKENDS

Predictor = Callable[[torch.Tensor], dict[str, torch.Tensor]]
"""A back-end: a batch of images in, anomalib's prediction fields out."""

PREDICTION_FIELDS = ("pred_score", "pred_label", "anomaly_map", "pred_mask")

logger = logging.getLogger(__name__)


def torch_predict(module: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of an anomalib module's full forward (pre-processing, model, post-processing)."""
    with torch.inference_mode():
        output = module(images)
    return {key: value for key, value in output._asdict().items() if value is not None}


def _output_name(output: Any) -> str:  # noqa: ANN401
    """The anomalib field name of an OpenVINO output (a tensor may carry several names after compilation)."""
    names = output.get_names()
    return next((field for field in PREDICTION_FIELDS if field in names), output.get_any_name())


class OpenVINOModel:
    """A compiled OpenVINO model of an anomalib export, reshaped to a static input shape.

    Args:
        xml: Path of the exported ``model.xml``.
        shape: ``(batch, channels, height, width)`` the model is reshaped and compiled for.
        threads: ``INFERENCE_NUM_THREADS``.
        precision: ``INFERENCE_PRECISION_HINT`` (``"f32"``: no bf16 even where the CPU has it).
        properties: More compile properties (e.g. ``{"PERF_COUNT": True}`` for per-layer times).
    """

    def __init__(
        self,
        xml: Path,
        shape: Sequence[int],
        threads: int,
        precision: str = "f32",
        properties: dict[str, Any] | None = None,
    ) -> None:
        import openvino as ov  # noqa: PLC0415

        core = ov.Core()
        model = core.read_model(str(xml))
        model.reshape({model.input(0).get_any_name(): list(shape)})
        self.compiled = core.compile_model(
            model,
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": precision,
                "INFERENCE_NUM_THREADS": threads,
                "PERFORMANCE_HINT": "LATENCY",
                **(properties or {}),
            },
        )
        self.request = self.compiled.create_infer_request()
        self.names = [_output_name(output) for output in self.compiled.outputs]
        self.shape = tuple(shape)

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the model on a batch of the compiled shape."""
        result = self.request.infer({0: images.numpy()})
        return {name: torch.from_numpy(np.asarray(result[index])) for index, name in enumerate(self.names)}


def openvino_predictor(xml: Path, image_shape: Sequence[int], threads: int) -> Predictor:
    """Predictions of an OpenVINO export at any batch size (compiled once per batch size, on first use)."""
    compiled: dict[int, OpenVINOModel] = {}

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = images.shape[0]
        if batch not in compiled:
            compiled[batch] = OpenVINOModel(xml, (batch, *image_shape), threads)
        return compiled[batch](images)

    return predict


def export_openvino(module: Any, root: Path, int8: bool, datamodule: Any = None) -> Path:  # noqa: ANN401
    """Export an anomalib module to OpenVINO under ``root`` (INT8: post-training quantisation on ``datamodule``)."""
    return Path(
        module.to_openvino(
            export_root=root,
            compression_type=CompressionType.INT8_PTQ if int8 else None,
            datamodule=datamodule if int8 else None,
        )
    )


def size_mib(*paths: Path) -> float:
    """Size on disk of files, in MiB."""
    return sum(path.stat().st_size for path in paths) / 2**20


def build_predictors(
    module: Any,  # noqa: ANN401
    backends: Sequence[str],
    work: Path,
    image_shape: Sequence[int],
    datamodule: Any,  # noqa: ANN401
) -> tuple[dict[str, Predictor], dict[str, float]]:
    """One prediction function per back-end (exporting the OpenVINO models under ``work``) and each one's size on disk.

    Args:
        module: A trained anomalib module in eval mode.
        backends: Back-ends (:data:`~anomalib_ea2d.pipelines.benchmark.config.BACKENDS`).
        work: Folder of the exported files.
        image_shape: ``(channels, height, width)`` of the inputs.
        datamodule: Calibration data of INT8 quantisation.

    Returns:
        Predictors by back-end, and sizes on disk in MiB keyed ``torch_size_mib``/``<backend>_size_mib``.
        A back-end whose export fails gets no predictor and an ``<backend>_error`` entry
        (one sentence) instead of its size; the failure is logged.
        (A model that OpenVINO then fails to compile raises on its first prediction.)
    """
    threads = torch.get_num_threads()
    torch_file = work / "model_state_dict.pt"
    torch.save(module.model.state_dict(), torch_file)
    sizes = {"torch_size_mib": size_mib(torch_file)}
    predictors: dict[str, Predictor] = {}
    for backend in backends:
        if backend not in BACKENDS:
            msg = f"Unknown backend {backend!r}; choose from {', '.join(BACKENDS)}."
            raise ValueError(msg)
        if backend == "torch":
            predictors[backend] = lambda images: torch_predict(module, images)
            continue
        try:
            xml = export_openvino(module, work / backend, int8=backend == "openvino-int8", datamodule=datamodule)
        except Exception as error:  # noqa: BLE001 - reported in the results, the other back-ends still run
            reason = " ".join(str(error).split())[:200]
            sizes[f"{backend}_error"] = f"{type(error).__name__}: {reason}"
            logger.warning("%s export of %s failed, not timed: %s", backend, type(module).__name__, reason)
            continue
        sizes[f"{backend}_size_mib"] = size_mib(xml, xml.with_suffix(".bin"))
        predictors[backend] = openvino_predictor(xml, image_shape, threads)
    return predictors, sizes


__all__ = [
    "OpenVINOModel",
    "Predictor",
    "build_predictors",
    "export_openvino",
    "openvino_predictor",
    "size_mib",
    "torch_predict",
]
