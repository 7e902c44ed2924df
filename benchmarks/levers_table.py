"""Summarise a lever-study JSON-lines file (``benchmarks/levers.py``) as a markdown table, mean +- sd over seeds.

Rows are sorted by the validation half's image AUROC (the one to choose by); the test half's
numbers are reported next to it::

    .venv/bin/python benchmarks/levers_table.py results/levers.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anomalib_ea2d.pipelines.benchmark.report import Table, fmt_mean_std, mean_std

SETTING = ("steps", "image_size", "encoder_lr", "standardize_maps", "roi", "score_reduction")
VALUES = ("val_image_AUROC", "image_AUROC", "image_sensitivity_at_op", "image_specificity_at_op", "pixel_AUROC")


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for path in args.results for line in path.read_text().splitlines() if line.strip()]
    for row in rows:  # files of older versions of the study lack the newer columns
        row.setdefault("standardize_maps", False)
        row.setdefault("val_image_AUROC", float("nan"))
    summary = sorted(mean_std(rows, SETTING, VALUES), key=lambda entry: -entry["val_image_AUROC"])
    table = Table(header=[*SETTING, "seeds", *VALUES])
    for entry in summary:
        table.rows.append(
            [*(str(entry[key]) for key in SETTING), str(entry["runs"]), *(fmt_mean_std(entry, key) for key in VALUES)]
        )
    print(table.markdown())


if __name__ == "__main__":
    main()
