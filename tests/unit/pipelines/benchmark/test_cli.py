"""The benchmark command line: overrides reach the settings a run would use (``--print-config`` runs nothing)."""

from __future__ import annotations

import json

import pytest

from anomalib_ea2d.pipelines.benchmark.cli import main


def test_encoder_arms_and_seeds_override_the_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoder", "--seeds", "1", "--arms", "ea2d_random", "ea2d_in_domain", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)["encoder"]
    assert printed["seeds"] == [1]
    assert printed["arms"] == ["ea2d_random", "ea2d_in_domain"]


def test_an_unknown_arm_is_refused_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["encoder", "--arms", "ea2d_imagenet", "--print-config"])
    assert stopped.value.code == 2
    assert "ea2d_in_domain" in capsys.readouterr().err


def test_pretrain_steps_override_the_preset_and_refuse_a_negative_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoder", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["encoder"]["pretrain_steps"] is None  # the demo's
    assert main(["encoder", "--pretrain-steps", "150", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["encoder"]["pretrain_steps"] == 150
    with pytest.raises(SystemExit) as stopped:
        main(["encoder", "--pretrain-steps", "-1", "--print-config"])
    assert stopped.value.code == 2
    assert "--pretrain-steps -1 is not valid" in capsys.readouterr().err


def test_the_encoder_study_runs_on_the_cpu_unless_told_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encoder", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["encoder"]["accelerator"] == "cpu"
    assert main(["encoder", "--accelerator", "gpu", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["encoder"]["accelerator"] == "gpu"
    with pytest.raises(SystemExit) as stopped:
        main(["encoder", "--accelerator", "tpu", "--print-config"])
    assert stopped.value.code == 2
    assert "tpu" in capsys.readouterr().err
