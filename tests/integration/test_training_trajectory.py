"""EA2D's training recipe against the reference training loop, trained through a real anomalib ``Engine``.

``trajectory_seed0.pt`` of the parity fixture (``tests/fixtures/parity``, or ``$EA2D_PARITY_DIR``)
holds four input batches and, for both encoder-BatchNorm settings, the reference loop's loss and
gradient norm at every step and digests of every weight and BatchNorm statistic after every step.
Here the same seed-0 weights (rebuilt by ``tests.helpers.reference_weights``) train through
``Engine.fit`` (the path a user takes) with the recipe in ``EA2D``'s init-arg defaults, in float64,
and a callback records the same quantities *during* training. This checks in one go the optimizer
groups and learning rates, weight decay, gradient clipping, BatchNorm momentum, the loss and the
encoder's train/eval state; changing any of them makes it fail (see ``test_a_changed_recipe_is_caught``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from anomalib.data import ImageBatch
from anomalib.engine import Engine
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader

from anomalib_ea2d import EA2D, convert_reference_state_dict
from tests.conftest import DEFAULT_PARITY_DIR
from tests.helpers.reference_weights import build_reference_state_dict, load_reference_keys

SETTINGS = {"bn_frozen": True, "bn_batchstats": False}
"""Trajectory name -> ``freeze_encoder_bn``."""
TRAJECTORY_FILE = "trajectory_seed0.pt"
RTOL = 1e-4
DRIFT_LIMIT = 1e-5
"""Steps where the reference drifts from itself by more than this are chaotic: weights not compared there."""


@pytest.fixture(scope="module")
def trajectory(parity_dir: Path) -> dict[str, Any]:
    """The parity folder's training trajectory, or the committed one if that folder holds inference outputs only."""
    found = [
        folder / TRAJECTORY_FILE for folder in (parity_dir, DEFAULT_PARITY_DIR) if (folder / TRAJECTORY_FILE).is_file()
    ]
    if not found:
        pytest.fail(
            f"no training trajectory {TRAJECTORY_FILE} in {parity_dir} nor in {DEFAULT_PARITY_DIR}", pytrace=False
        )
    return torch.load(found[0], weights_only=False)


@pytest.fixture(scope="module")
def reference_state(parity_keys_file: Path, trajectory: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The seeded reference weights the trajectory starts from, rebuilt from the fixture's key list."""
    keys = [name for name, _, _ in load_reference_keys(parity_keys_file)]
    if keys != trajectory["keys"]:
        pytest.fail(f"the trajectory's keys are not those of {parity_keys_file}", pytrace=False)
    return build_reference_state_dict(trajectory["meta"]["seed"], parity_keys_file)


def digest(tensor: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
    """``[sum(w), sum(w^2), sum(d), sum(d^2), sum(w0 d)]`` with ``d = w - w0``, as the fixture defines it."""
    if not tensor.is_floating_point():
        return torch.tensor([float(tensor.sum()), math.nan, math.nan, math.nan, math.nan], dtype=torch.float64)
    w, w0 = tensor.double(), initial.double()
    d = w - w0
    return torch.stack([w.sum(), (w * w).sum(), d.sum(), (d * d).sum(), (w0 * d).sum()])


class TrajectoryRecorder(Callback):
    """Record, while the trainer trains, each step's loss, gradient norm and weight digests."""

    def __init__(self, initial: dict[str, torch.Tensor]) -> None:
        self.initial = initial
        self.losses: list[float] = []
        self.grad_norms: list[float] = []
        self.digests: list[dict[str, torch.Tensor]] = []

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer: Any) -> None:
        del trainer, optimizer  # called before the recipe's clipping: the norm the reference logs
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self.grad_norms.append(float(torch.nn.utils.get_total_norm(grads)))

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        del trainer, batch, batch_idx
        self.losses.append(float(outputs["loss"]))
        state = pl_module.model.state_dict()
        self.digests.append({name: digest(state[name], self.initial[name]) for name in self.initial})


def _loader(trajectory: dict[str, Any]) -> DataLoader:
    batches = [batch.double() for batch in trajectory["batches"]]
    return DataLoader(batches, batch_size=None, shuffle=False, collate_fn=lambda image: ImageBatch(image=image))


def train_through_engine(
    trajectory: dict[str, Any], reference_state: dict[str, torch.Tensor], root: Path, **recipe: Any
) -> TrajectoryRecorder:
    """Train the seed-0 reference weights for the fixture's steps with ``Engine.fit`` in float64."""
    model = EA2D(backbone="resnet50", pre_trained=False, pre_processor=False, evaluator=False, **recipe)
    model.model.load_state_dict(convert_reference_state_dict(reference_state))
    initial = {name: tensor.detach().clone().double() for name, tensor in model.model.state_dict().items()}
    recorder = TrajectoryRecorder(initial)
    engine = Engine(
        default_root_dir=root,
        max_steps=len(trajectory["batches"]),
        precision="64-true",
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[recorder],
    )
    engine.fit(model=model, train_dataloaders=_loader(trajectory))
    return recorder


def reproducible_steps(expected: dict[str, Any]) -> list[int]:
    """Steps after which the reference reproduces its own weights within ``DRIFT_LIMIT``."""
    drift = expected["self_check"]["weights_rel"].amax(dim=1)
    return [step for step, value in enumerate(drift.tolist()) if value <= DRIFT_LIMIT]


def gradient_steps(expected: dict[str, Any], steps: int) -> list[int]:
    """Steps whose gradient norm is comparable: the first, and those starting from reproducible weights.

    A step's gradient comes from the weights left by the step before; where the reference cannot
    reproduce those itself, its gradient norm is no more reproducible than they are.
    """
    return [0, *(step + 1 for step in reproducible_steps(expected) if step + 1 < steps)]


def digest_mismatches(
    recorder: TrajectoryRecorder, expected: dict[str, Any], keys: list[str], steps: list[int]
) -> list[str]:
    """Tensors whose digest after a reproducible step differs from the reference's by more than ``RTOL``."""
    ours = convert_reference_state_dict({key: torch.tensor(index) for index, key in enumerate(keys)})
    problems = []
    for step in steps:
        for name, index in ours.items():
            wanted, actual = expected["digest"][step, int(index)], recorder.digests[step][name]
            finite = torch.isfinite(wanted)
            error = (actual[finite] - wanted[finite]).abs()
            # sum(d) and sum(w0 d) can cancel to ~0: their scale is the size of d, not of the sum.
            scale = wanted[finite].abs()
            if finite.all():
                scale = torch.maximum(scale, torch.tensor([0, 0, 1, 0, 1], dtype=scale.dtype) * wanted[3].sqrt())
            if bool((error > RTOL * scale).any()):
                problems.append(f"step {step + 1} {name}: ours {actual.tolist()} reference {wanted.tolist()}")
    return problems


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_engine_fit_follows_the_reference_trajectory(
    trajectory: dict[str, Any], reference_state: dict[str, torch.Tensor], tmp_path: Path, setting: str
) -> None:
    expected = trajectory[setting]
    recorder = train_through_engine(trajectory, reference_state, tmp_path, freeze_encoder_bn=SETTINGS[setting])
    steps = len(trajectory["batches"])
    assert len(recorder.losses) == steps
    torch.testing.assert_close(torch.tensor(recorder.losses, dtype=torch.float64), expected["loss"], rtol=RTOL, atol=0)
    norms = gradient_steps(expected, steps)
    torch.testing.assert_close(
        torch.tensor(recorder.grad_norms, dtype=torch.float64)[norms], expected["grad_norm"][norms], rtol=RTOL, atol=0
    )
    compared = reproducible_steps(expected)
    assert compared, "the fixture marks no step as reproducible"
    problems = digest_mismatches(recorder, expected, trajectory["keys"], compared)
    assert not problems, f"{len(problems)} tensors off the reference trajectory:\n" + "\n".join(problems[:10])


@pytest.mark.parametrize(("change", "value"), [("weight_decay", 0.0), ("encoder_lr", 2e-5)])
def test_a_changed_recipe_is_caught(
    trajectory: dict[str, Any],
    reference_state: dict[str, torch.Tensor],
    tmp_path: Path,
    change: str,
    value: Any,
) -> None:
    """The comparison is sharp enough to see a small recipe change after one step."""
    expected = trajectory["bn_frozen"]
    short = {**trajectory, "batches": trajectory["batches"][:1]}
    recipe = {"freeze_encoder_bn": True, change: value}
    recorder = train_through_engine(short, reference_state, tmp_path, **recipe)
    losses_match = torch.allclose(torch.tensor(recorder.losses, dtype=torch.float64), expected["loss"][:1], rtol=RTOL)
    problems = digest_mismatches(recorder, expected, trajectory["keys"], [0])
    assert problems or not losses_match, f"changing {change} to {value} went unnoticed"
