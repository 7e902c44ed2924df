"""Prepare the paper's reference splits from raw downloads: :func:`prepare_dataset` and its command line.

Usage::

    python -m anomalib_ea2d.data.prepare oct2017   --raw ~/raw/OCT2017   --out datasets/OCT2017
    python -m anomalib_ea2d.data.prepare aptos2019 --raw ~/raw/aptos2019 --out datasets/APTOS2019
    python -m anomalib_ea2d.data.prepare isic2018  --raw ~/raw/ISIC2018  --out datasets/ISIC2018
    python -m anomalib_ea2d.data.prepare br35h     --raw ~/raw/Br35H     --out datasets/Br35H

then train with the matching config, e.g.
``anomalib train --config configs/oct2017.yaml --data.root datasets/OCT2017`` (EA2D's recipe) or
``anomalib train --model ReverseDistillation --config configs/data/oct2017.yaml`` (any anomalib model).
Each dataset's split and raw layout are described in its module (:mod:`anomalib_ea2d.data.prepare.oct2017`,
:mod:`~anomalib_ea2d.data.prepare.aptos2019`, :mod:`~anomalib_ea2d.data.prepare.isic2018`,
:mod:`~anomalib_ea2d.data.prepare.br35h`); the output layout in :mod:`anomalib_ea2d.data.prepare.splits`.

Example:
    >>> from anomalib_ea2d.data.prepare import PAPER_DATASETS
    >>> PAPER_DATASETS["aptos2019"]
    SplitCounts(train_normal=1000, test_normal=805, test_abnormal=1857)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from anomalib_ea2d.data.prepare import aptos2019, br35h, isic2018, oct2017
from anomalib_ea2d.data.prepare.splits import PreparedSplit, SplitCounts

PREPARERS: dict[str, Callable[..., PreparedSplit]] = {
    "oct2017": oct2017.prepare_oct2017,
    "aptos2019": aptos2019.prepare_aptos2019,
    "isic2018": isic2018.prepare_isic2018,
    "br35h": br35h.prepare_br35h,
}
"""Dataset key -> its ``prepare_*`` function."""

PAPER_DATASETS: dict[str, SplitCounts] = {
    "oct2017": oct2017.PAPER_COUNTS,
    "aptos2019": aptos2019.PAPER_COUNTS,
    "isic2018": isic2018.PAPER_COUNTS,
    "br35h": br35h.PAPER_COUNTS,
}
"""The paper's split sizes, checked after preparation unless ``expected_counts=None``."""


def prepare_dataset(name: str, raw: str | Path, out: str | Path, **kwargs: Any) -> PreparedSplit:  # noqa: ANN401
    """Prepare one of the paper datasets by key (``oct2017``, ``aptos2019``, ``isic2018``, ``br35h``).

    Args:
        name: Dataset key.
        raw: Raw download folder.
        out: Output folder.
        **kwargs: Options of the matching ``prepare_*`` function.

    Returns:
        The prepared split.

    Example:
        >>> from anomalib_ea2d.data import prepare_dataset
        >>> prepare_dataset("br35h", "raw/Br35H", "datasets/Br35H")  # doctest: +SKIP
    """
    key = name.lower()
    if key not in PREPARERS:
        msg = f"Unknown dataset {name!r}; choose one of {sorted(PREPARERS)}."
        raise ValueError(msg)
    return PREPARERS[key](raw, out, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the preparation command."""
    parser = argparse.ArgumentParser(
        prog="python -m anomalib_ea2d.data.prepare",
        description="Build the EA2D paper's one-class split of a dataset in anomalib Folder layout.",
    )
    parser.add_argument("dataset", choices=sorted(PAPER_DATASETS), help="which dataset to prepare")
    parser.add_argument("--raw", type=Path, required=True, help="folder of the raw download")
    parser.add_argument("--out", type=Path, required=True, help="output folder (data.init_args.root of the config)")
    parser.add_argument(
        "--no-count-check",
        action="store_true",
        help="do not require the paper's image counts (for custom subsets)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier preparation in --out")
    parser.add_argument(
        "--link",
        choices=["copy", "hardlink", "symlink"],
        default="copy",
        help="how to place unchanged images (oct2017, isic2018, br35h); default copy",
    )
    parser.add_argument("--include-val", action="store_true", help="oct2017: add val/ to the test set")
    parser.add_argument("--seed", type=int, default=1, help="aptos2019: seed of the training draw (default 1)")
    parser.add_argument(
        "--train-list",
        type=Path,
        help="aptos2019: text file of training id_codes (one a line) instead of the random draw",
    )
    parser.add_argument("--workers", type=int, help="aptos2019: processes for cropping (default: CPU cores, max 8)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    kwargs: dict[str, Any] = {"overwrite": args.overwrite}
    if args.no_count_check:
        kwargs["expected_counts"] = None
    if args.dataset == "aptos2019":
        kwargs["seed"] = args.seed
        kwargs["workers"] = args.workers
        if args.train_list is not None:
            kwargs["train_ids"] = [line.strip() for line in args.train_list.read_text().splitlines() if line.strip()]
    else:
        kwargs["link"] = args.link
    if args.dataset == "oct2017":
        kwargs["include_val"] = args.include_val
    try:
        split = prepare_dataset(args.dataset, args.raw, args.out, **kwargs)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    counts = split.counts
    sys.stdout.write(
        f"{args.dataset}: {counts.train_normal} train, {counts.test_normal} normal test, "
        f"{counts.test_abnormal} abnormal test images in {split.root}\n"
        f"train with: anomalib train --config configs/{args.dataset}.yaml --data.root {split.root}\n",
    )
    return 0
