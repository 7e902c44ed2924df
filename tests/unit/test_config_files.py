"""Finding the bundled configs: the packaged copy first, the checkout's ``configs/`` else, clear errors otherwise.

The installed-wheel side is exercised end to end by ``tests/integration/test_wheel.py``; here the two
locations are pointed at temporary folders.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from anomalib_ea2d import config_files
from anomalib_ea2d.demo import load_config

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _configs(folder: Path, *names: str) -> Path:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"name: {name}\n")
    return folder


def test_checkout_configs_are_found_without_a_packaged_copy() -> None:
    assert not config_files.PACKAGED_DIR.exists()  # a checkout has no second copy
    assert config_files.config_dir() == REPO_CONFIGS
    assert config_files.bundled_config("data/oct2017") == REPO_CONFIGS / "data" / "oct2017.yaml"
    assert config_files.find_config("benchmark/smoke.yaml") == REPO_CONFIGS / "benchmark" / "smoke.yaml"


def test_packaged_copy_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = _configs(tmp_path / "package" / "configs", "demo.yaml", "data/demo.yaml")
    monkeypatch.setattr(config_files, "PACKAGED_DIR", packaged)
    assert config_files.config_dir() == packaged
    assert config_files.bundled_config("demo") == packaged / "demo.yaml"
    assert config_files.available_configs("data") == ["demo.yaml"]


def test_a_configs_folder_without_a_project_beside_it_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in site-packages, where another distribution may have installed a top-level ``configs``.
    monkeypatch.setattr(config_files, "PACKAGED_DIR", tmp_path / "site" / "anomalib_ea2d" / "configs")
    monkeypatch.setattr(config_files, "CHECKOUT_DIR", _configs(tmp_path / "site" / "configs", "oct2017.yaml"))
    with pytest.raises(FileNotFoundError, match=r"'oct2017' not found; the configs folder .* is missing: reinstall"):
        config_files.bundled_config("oct2017")


def test_unknown_names_list_the_bundled_choices_of_their_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"'benchmark/huge' not found; pass one of .*benchmark/smoke\.yaml"):
        config_files.bundled_config("benchmark/huge")
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(FileNotFoundError, match=r"neither a file nor a bundled config; .*synthetic_brain\.yaml"):
        config_files.find_config(missing)
    assert config_files.find_config(_configs(tmp_path, "mine.yaml") / "mine.yaml") == tmp_path / "mine.yaml"


def test_command_prints_paths_and_reports_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert config_files.main([]) == 0
    assert capsys.readouterr().out.strip() == str(REPO_CONFIGS)
    assert config_files.main(["oct2017", "data/oct2017"]) == 0
    assert capsys.readouterr().out.split() == [
        str(REPO_CONFIGS / "oct2017.yaml"),
        str(REPO_CONFIGS / "data/oct2017.yaml"),
    ]
    assert config_files.main(["nope"]) == 2
    assert "'nope' not found" in capsys.readouterr().err


def test_demo_config_names_a_missing_section_file(tmp_path: Path) -> None:
    recipe = _configs(tmp_path, "recipe.yaml") / "recipe.yaml"
    recipe.write_text("model: {class_path: anomalib_ea2d.EA2D}\ndata: data/gone.yaml\n")
    with pytest.raises(FileNotFoundError, match=r"reads its 'data' section from .*gone\.yaml, which does not exist"):
        load_config(recipe)
