"""Operating point at a chosen specificity: known answers on synthetic scores."""

from __future__ import annotations

import math
import socket
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp
from anomalib.data import ImageBatch

from anomalib_ea2d.post_processing.specificity_post_processor import SpecificityPostProcessor, threshold_at_fpr


@pytest.mark.parametrize("fpr", [0.0, 0.05, 0.1, 0.33])
def test_threshold_flags_the_target_fraction_of_normal_scores(fpr: float) -> None:
    scores = torch.randperm(200).float() / 7  # distinct values in random order
    threshold = threshold_at_fpr(scores, fpr)
    flagged = int((scores > threshold).sum())
    assert flagged == math.floor(fpr * 200)
    assert threshold in scores  # a score, so lowering it any further flags one more image


def _batch(labels: list[int], scores: list[float], maps: torch.Tensor) -> ImageBatch:
    n = len(labels)
    return ImageBatch(
        image=torch.zeros(n, 3, *maps.shape[-2:]),
        gt_label=torch.tensor(labels),
        pred_score=torch.tensor(scores),
        anomaly_map=maps,
    )


def test_post_processor_calibrates_on_normal_images_only() -> None:
    """20 normal images score 0..19, anomalous ones score 100+; 10 % FPR flags normals 18 and 19."""
    post = SpecificityPostProcessor(image_fpr=0.1, pixel_fpr=0.25)
    normal_maps = torch.arange(20 * 4.0).view(20, 2, 2)  # pixel values 0..79 on normal images
    post.on_validation_batch_end(None, None, _batch([0] * 10, list(range(10)), normal_maps[:10]))
    post.on_validation_batch_end(
        None,
        None,
        _batch(
            [0] * 10 + [1] * 5,
            [*range(10, 20), *[100.0] * 5],
            torch.cat([normal_maps[10:], torch.full((5, 2, 2), 1e3)]),
        ),
    )
    post.on_validation_epoch_end(None, None)
    assert float(post.image_threshold) == 17.0  # 18, 19 above: 2 of 20 normals = 10 %
    assert float(post.pixel_threshold) == 59.0  # 60..79 above: 20 of 80 normal pixels = 25 %

    test = _batch(
        [0, 0, 1, 1], [17.0, 18.0, 16.0, 150.0], torch.tensor([59.0, 60.0, 0.0, 999.0]).view(4, 1, 1).expand(4, 2, 2)
    )
    post.post_process_batch(test)
    assert test.pred_label.tolist() == [False, True, False, True]
    assert test.pred_mask[:, 0, 0].tolist() == [False, True, False, True]
    # normalised scores keep anomalib's convention: 0.5 at the threshold
    assert float(test.pred_score[0]) == pytest.approx(0.5)


def test_post_processor_settings_survive_a_checkpoint() -> None:
    post = SpecificityPostProcessor(image_fpr=0.02, pixel_fpr=0.01)
    restored = SpecificityPostProcessor()
    restored.load_checkpoint_config(post.checkpoint_config())
    assert (restored.image_fpr, restored.pixel_fpr) == (0.02, 0.01)
    with pytest.raises(ValueError, match="image_fpr must be in"):
        SpecificityPostProcessor(image_fpr=1.0)


@pytest.mark.parametrize(
    "device",
    [
        "meta",  # stands in for an accelerator on a CPU-only machine: any CPU/buffer mix-up raises
        pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")),
    ],
)
def test_the_operating_point_is_set_when_the_model_lives_on_another_device(device: str) -> None:
    """Lightning moves the post-processor's threshold buffers with the model; the collected scores stay on the CPU."""
    post = SpecificityPostProcessor(image_fpr=0.1, pixel_fpr=0.25).to(device)
    post.on_validation_batch_end(None, None, _batch([0] * 20, list(range(20)), torch.arange(80.0).view(20, 2, 2)))
    post.on_validation_epoch_end(None, None)
    assert post.image_threshold.device.type == device
    if device != "meta":
        assert float(post.image_threshold) == 17.0


def _rank_threshold(rank: int, port: int, shards: list[list[float]], results: Any) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        post = SpecificityPostProcessor(image_fpr=0.1, pixel_fpr=0.1)
        scores = shards[rank]
        post.on_validation_batch_end(None, None, _batch([0] * len(scores), scores, torch.rand(len(scores), 2, 2)))
        post.on_validation_epoch_end(None, None)
        results[rank] = float(post.image_threshold)
    finally:
        torch.distributed.destroy_process_group()


def test_every_ddp_process_sets_the_threshold_of_all_normal_validation_images() -> None:
    """Two processes that each saw half of the normal scores set the threshold of all of them."""
    shards = [list(range(0, 20)), list(range(100, 120))]  # a split that would give each process its own threshold
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_rank_threshold, args=(port, shards, results), nprocs=2, join=True)
    expected = threshold_at_fpr(torch.tensor([float(s) for shard in shards for s in shard]), 0.1)
    assert results[0] == results[1] == float(expected) == 115.0  # 116..119 above: 4 of 40
