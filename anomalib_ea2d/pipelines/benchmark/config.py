"""Settings of the benchmark studies, filled from the preset YAML files of ``configs/benchmark/``.

The presets are bundled configs (:mod:`anomalib_ea2d.config_files`): read from the installed wheel,
or from the repository's ``configs/benchmark/`` in a source checkout.

A preset (``full.yaml``: the documented CPU run, ``smoke.yaml``: seconds, for the test suite) sets
every field of every study; the dataclasses below hold no sizes of their own, so each number has
one home. The speed goals' thresholds live in ``configs/benchmark/goal_thresholds.yaml``, which the
presets include by path. Files are read with jsonargparse, like every other config of the project:
an unknown key or a wrong type is an error naming the field.

Example:
    >>> configs = load_preset("smoke")
    >>> sorted(configs)
    ['ablation', 'compare', 'encoder', 'goals', 'gpu', 'scaling']
    >>> configs["goals"].thresholds.max_ea2d_over_rd > 0
    True
"""

from __future__ import annotations

from argparse import ArgumentError
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from anomalib_ea2d.config_files import config_dir

ModelName = Literal["ea2d", "patchcore", "reverse_distillation", "uninet"]
Backend = Literal["torch", "openvino-fp32", "openvino-int8"]
"""Torch eager, OpenVINO with FP32 inference precision, OpenVINO INT8 (post-training quantisation)."""
Ablation = Literal["full", "no_attention", "one_view", "no_contrastive", "frozen_encoder"]
EncoderArm = Literal[
    "zscore",
    "ea2d_random",
    "ea2d_in_domain",
    "ea2d_in_domain_calibrated",
    "ea2d_in_domain_simsiam",
    "reverse_distillation_random",
    "reverse_distillation_in_domain",
    "patchcore_random",
    "patchcore_in_domain",
]

MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
"""Models of the ``compare`` study, by their anomalib name."""
BACKENDS: tuple[str, ...] = get_args(Backend)
"""Inference back-ends of the ``compare`` study."""
ABLATIONS: tuple[str, ...] = get_args(Ablation)
"""EA2D variants of the ``ablation`` study."""
ENCODER_ARMS: tuple[str, ...] = get_args(EncoderArm)
"""Arms of the ``encoder`` study, in report order."""

PRESET_DIR = config_dir() / "benchmark"
"""Folder of the bundled preset files (in the installed package, or the checkout's ``configs/benchmark/``)."""


@dataclass(kw_only=True)
class DataSpec:
    """The synthetic brain-MRI set of a study (generated once, cached under ``root``).

    Attributes:
        root: Folder of the generated set (``None``: ``<output>/data/<folder_name()>``).
        image_size: Side of the slices; also the models' input size.
        num_train: Normal training slices.
        num_test_normal: Normal test slices.
        num_test_abnormal: Test slices with lesions.
        generation_seed: Seed of the generator.
    """

    root: Path | None = None
    image_size: int
    num_train: int
    num_test_normal: int
    num_test_abnormal: int
    generation_seed: int

    def folder_name(self) -> str:
        """Folder name of the default root, unique per set parameters."""
        return (
            f"synthetic_brain_{self.image_size}px_{self.num_train}_{self.num_test_normal}_"
            f"{self.num_test_abnormal}_seed{self.generation_seed}"
        )


@dataclass(kw_only=True)
class MedicalSettings:
    """The medical variant of every model in ``compare``: region of interest and operating point.

    Attributes:
        roi: :class:`~anomalib_ea2d.RegionOfInterest` settings (``threshold``, ``closing``, ``erosion``).
        image_fpr: Fraction of normal validation images the image threshold flags.
        pixel_fpr: Fraction of normal validation pixels the pixel threshold flags.
    """

    roi: dict[str, int | float]
    image_fpr: float
    pixel_fpr: float


@dataclass(kw_only=True)
class CompareConfig:
    """Settings of the ``compare`` study.

    Attributes:
        models: Models to compare.
        backbone: ResNet backbone of every model but UniNet.
        uninet_backbone: Teacher and student of UniNet (its bottleneck needs a ResNet-50-like width).
        train_steps: Optimizer steps of EA2D, Reverse Distillation and UniNet (PatchCore: one epoch).
        train_batch_size: Training batch size.
        eval_batch_size: Test batch size.
        seeds: Seeds of model initialisation and data order; accuracy is reported as mean +- std
            over them, speed is measured on the models of the first seed.
        medical: Settings of each model's second evaluation, with region of interest and operating point.
        batch_sizes: Batch sizes of the throughput measurements.
        backends: Inference back-ends.
        repeats: Timed repetitions per throughput measurement.
        warmup: Untimed calls before them.
        threads: CPU threads for torch and OpenVINO (``None``: all CPUs).
        data: The synthetic set.
    """

    models: tuple[ModelName, ...]
    backbone: str
    uninet_backbone: str
    train_steps: int
    train_batch_size: int
    eval_batch_size: int
    seeds: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    backends: tuple[Backend, ...]
    repeats: int
    warmup: int
    threads: int | None
    data: DataSpec
    medical: MedicalSettings

    def __post_init__(self) -> None:
        if not self.seeds:
            msg = "compare.seeds is empty (give at least one seed, e.g. [0, 1, 2])"
            raise ValueError(msg)


@dataclass(kw_only=True)
class ScalingConfig:
    """Settings of the ``scaling`` study (EA2D inference, eval mode, random weights).

    Attributes:
        backbone: ResNet backbone.
        sizes: Square input sizes at batch 1.
        batches: Batch sizes at ``batch_size_image`` px.
        batch_size_image: Input size of the batch sweep.
        repeats: Timed repetitions per point.
        threads: CPU threads (``None``: all CPUs).
    """

    backbone: str
    sizes: tuple[int, ...]
    batches: tuple[int, ...]
    batch_size_image: int
    repeats: int
    threads: int | None


@dataclass(kw_only=True)
class GoalThresholds:
    """The speed goals EA2D is held to (``configs/benchmark/goal_thresholds.yaml``).

    Attributes:
        max_ea2d_over_rd: Largest EA2D / Reverse Distillation torch eval latency ratio (EA2D as
            ``Engine.test``/``predict`` run it: the fused inference copy).
        max_time_per_flop_over_rd: Largest EA2D / Reverse Distillation time per FLOP, EA2D as
            ``Engine.test``/``predict`` run it.
        max_plain_time_per_flop_over_rd: The same for ``EA2DModel(...).eval()`` (the plain modules).
        min_openvino_fp32_fraction_of_peak: Smallest fraction of the measured FP32 peak that the
            OpenVINO FP32 export reaches.
        min_openvino_fp32_speedup: Smallest OpenVINO FP32 speed-up over torch eager.
        min_openvino_int8_speedup: Smallest OpenVINO INT8 speed-up over torch eager.
        max_lightning_over_plain: Largest Lightning/anomalib step time over a plain torch loop's.
    """

    max_ea2d_over_rd: float
    max_time_per_flop_over_rd: float
    max_plain_time_per_flop_over_rd: float
    min_openvino_fp32_fraction_of_peak: float
    min_openvino_fp32_speedup: float
    min_openvino_int8_speedup: float
    max_lightning_over_plain: float


@dataclass(kw_only=True)
class GoalsConfig:
    """Settings of the ``goals`` study.

    Attributes:
        backbone: Backbone of the inference ratios.
        image_size: Input size of the inference ratios.
        batch_size: Batch of the inference ratios.
        repeats: Interleaved timed repetitions of each inference variant.
        threads: CPU threads (the goals are stated for 2).
        train_backbone: Backbone of the training-overhead measurement.
        train_image_size: Input size of the training-overhead measurement.
        train_batch_size: Batch of the training-overhead measurement.
        train_steps: Timed steps of each training loop (after two untimed ones).
        gemm_size: Side of the square FP32 matrix product timed for the measured peak.
        conv1x1: ``(batch, channels, side)`` of the channels-last FP32 1x1 convolution timed for it.
        predict_images: Images in the folder ``Engine.predict`` is timed on (``anomalib predict``).
        predict_rounds: Timed ``Engine.predict`` runs per model, in alternation.
        data: The synthetic set (training batches).
        calibration: A small synthetic set whose validation (= test) split calibrates INT8 and
            the post-processing of the models timed in ``Engine.predict``.
        thresholds: The goals.
    """

    backbone: str
    image_size: int
    batch_size: int
    repeats: int
    threads: int | None
    train_backbone: str
    train_image_size: int
    train_batch_size: int
    train_steps: int
    gemm_size: int
    conv1x1: tuple[int, int, int]
    predict_images: int
    predict_rounds: int
    data: DataSpec
    calibration: DataSpec
    thresholds: GoalThresholds


@dataclass(kw_only=True)
class AblationConfig:
    """Settings of the ``ablation`` study.

    Attributes:
        variants: EA2D variants.
        seeds: Seeds of model initialisation and data order.
        backbone: ResNet backbone.
        train_steps: Optimizer steps of every run (the same budget).
        train_batch_size: Training batch size.
        eval_batch_size: Test batch size.
        threads: CPU threads.
        data: The synthetic set.
    """

    variants: tuple[Ablation, ...]
    seeds: tuple[int, ...]
    backbone: str
    train_steps: int
    train_batch_size: int
    eval_batch_size: int
    threads: int | None
    data: DataSpec


@dataclass(kw_only=True)
class EncoderConfig:
    """Settings of the ``encoder`` study: random vs in-domain encoder (see :mod:`.encoder`).

    The models, the data set and the pretraining phase are the slice demo's
    (``configs/synthetic_brain.yaml``); the fields below only override them.

    Attributes:
        arms: Arms to run (:data:`~anomalib_ea2d.pipelines.benchmark.encoder.ARMS`).
        seeds: Seeds of model initialisation, pretraining and data order.
        train_steps: Training steps of every model (``None``: the demo's).
        pretrain_steps: Steps of the pretraining phase (``None``: the demo's).
        threads: CPU threads.
        data: The synthetic set (``None``: the demo's).
        calibration_split_ratio: Share of the normal training slices the ``ea2d_in_domain_calibrated``
            arm holds out of pretraining and training to fit its map statistics on.
        accelerator: Lightning accelerator of every run (``"cpu"``; ``"gpu"`` on a CUDA machine).
    """

    arms: tuple[EncoderArm, ...]
    seeds: tuple[int, ...]
    train_steps: int | None
    pretrain_steps: int | None
    threads: int | None
    data: DataSpec | None
    calibration_split_ratio: float
    accelerator: str


@dataclass(kw_only=True)
class GpuConfig:
    """Settings of the ``gpu`` study (plain torch training step and eval throughput on one device).

    Attributes:
        device: Torch device (``"cuda"``; ``"cpu"`` for the smoke run).
        backbone: ResNet backbone.
        size: Square input size.
        batch: Training batch and largest eval batch (eval also runs at batch 1).
        steps: Timed calls per measurement (after ``max(2, steps // 4)`` warm-up calls).
        compile_backend: ``torch.compile`` backend of the compiled training step (``"inductor"``;
            ``"aot_eager"`` needs no C++ compiler, for the CPU smoke run).
        gemm_size: Side of the square matrix product timed for the device's peaks.
        conv1x1: ``(batch, channels, side)`` of the channels-last 1x1 convolution timed for them.
    """

    device: str
    backbone: str
    size: int
    batch: int
    steps: int
    compile_backend: str
    gemm_size: int
    conv1x1: tuple[int, int, int]


@dataclass(kw_only=True)
class Preset:
    """Every study's settings: the content of one preset file."""

    compare: CompareConfig
    scaling: ScalingConfig
    goals: GoalsConfig
    ablation: AblationConfig
    encoder: EncoderConfig
    gpu: GpuConfig


def preset_path(preset: str | Path) -> Path:
    """The YAML file of a preset: a name under :data:`PRESET_DIR` (``"full"``, ``"smoke"``) or a path.

    Raises:
        FileNotFoundError: No such file or bundled preset.
    """
    path = Path(preset)
    if path.suffix not in {".yaml", ".yml"}:
        path = PRESET_DIR / f"{preset}.yaml"
    if not path.is_file():
        msg = (
            f"Benchmark preset {str(preset)!r} not found ({path}); pass 'full', 'smoke' (the presets bundled "
            "with the package) or the path of a preset YAML file."
        )
        raise FileNotFoundError(msg)
    return path


def load_preset(preset: str | Path, data_root: Path | None = None) -> dict[str, Any]:
    """Study configurations of a preset, by study name.

    Args:
        preset: Preset name or YAML path (see :func:`preset_path`).
        data_root: Folder of the generated synthetic set of the studies that train (their
            ``data.root``; the goals study's INT8 calibration set keeps its own).

    Raises:
        ValueError: The file misses a field, has an unknown key or a value of the wrong type.
    """
    from jsonargparse import ArgumentParser  # noqa: PLC0415 - keeps `--help` fast

    path = preset_path(preset)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(Preset)
    try:
        configs = vars(parser.instantiate_classes(parser.parse_path(path)))
    except (ArgumentError, ValueError) as error:  # a wrong field, or a value a settings class refuses
        reason = " ".join(str(error).split())
        msg = f"Benchmark preset {path} is invalid: {reason}; fix that field (configs/benchmark/full.yaml sets all)."
        raise ValueError(msg) from error
    if data_root is not None:
        for study in ("compare", "goals", "ablation"):
            configs[study].data = replace(configs[study].data, root=data_root)
        if configs["encoder"].data is not None:
            configs["encoder"].data = replace(configs["encoder"].data, root=data_root)
    return configs
