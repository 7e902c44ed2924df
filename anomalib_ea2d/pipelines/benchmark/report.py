"""Report writing of the benchmark, shared by every study: CSV, JSON, markdown tables, plots, ``report.md``.

A study hands its results over as rows (CSV), objects (JSON) and :class:`Table` objects; this
module writes them as ``<study>.md`` and the named files, and :func:`write_report` collects the
studies' markdown into ``report.md`` next to the machine description and the command.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_ORDER: tuple[str, ...] = ("compare", "goals", "scaling", "ablation", "gpu")
"""Order of the studies' sections in ``report.md``."""


def fmt(value: object, digits: int = 3) -> str:
    """A table cell: floats with ``digits`` decimals, ``n/a`` for NaN.

    Example:
        >>> fmt(0.12345), fmt(float("nan")), fmt(7)
        ('0.123', 'n/a', '7')
    """
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}f}"
    return str(value)


def fmt_range(value: float, low: float, high: float, digits: int = 0) -> str:
    """A median with its range, ``"value [low-high]"``.

    Example:
        >>> fmt_range(12.4, 10.0, 15.6)
        '12 [10-16]'
    """
    return f"{fmt(value, digits)} [{fmt(low, digits)}-{fmt(high, digits)}]"


@dataclass
class Table:
    """A markdown table with an optional caption paragraph above it.

    Example:
        >>> print(Table(["a", "b"], [["1", "2"]], caption="Numbers.").markdown())
        Numbers.
        <BLANKLINE>
        | a | b |
        | --- | --- |
        | 1 | 2 |
    """

    header: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    caption: str = ""

    def markdown(self) -> str:
        """The caption, a blank line and the table."""
        lines = [f"{self.caption}\n"] if self.caption else []
        lines += ["| " + " | ".join(self.header) + " |", "| " + " | ".join("---" for _ in self.header) + " |"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Point:
    """One marker of a scatter plot."""

    x: float
    y: float
    label: str
    marker: str = "o"
    colour: str = "C0"


def mean_std(rows: Sequence[Mapping[str, Any]], group_by: Sequence[str], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Mean and sample standard deviation of ``keys`` over the rows of each ``group_by`` group (first-seen order).

    Each entry holds the group's values, ``runs``, ``<key>`` (mean) and ``<key>_std`` (NaN for one run).

    Example:
        >>> rows = [{"model": "a", "auc": 0.5}, {"model": "a", "auc": 0.7}, {"model": "b", "auc": 0.9}]
        >>> summary = mean_std(rows, ["model"], ["auc"])
        >>> [(e["model"], e["runs"], round(e["auc"], 2), round(e["auc_std"], 3)) for e in summary]
        [('a', 2, 0.6, 0.141), ('b', 1, 0.9, nan)]
    """
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[key] for key in group_by), []).append(row)
    summary = []
    for values, members in groups.items():
        entry: dict[str, Any] = {**dict(zip(group_by, values, strict=True)), "runs": len(members)}
        for key in keys:
            numbers = [float(member[key]) for member in members]
            entry[key] = statistics.fmean(numbers)
            entry[f"{key}_std"] = statistics.stdev(numbers) if len(numbers) > 1 else math.nan
        summary.append(entry)
    return summary


def fmt_mean_std(entry: Mapping[str, Any], key: str, digits: int = 3) -> str:
    """A ``mean +- std`` cell of a :func:`mean_std` entry (only the mean for a single run).

    Example:
        >>> fmt_mean_std({"auc": 0.61234, "auc_std": 0.0321}, "auc")
        '0.612 +- 0.032'
        >>> fmt_mean_std({"auc": 0.5, "auc_std": float("nan")}, "auc")
        '0.500'
    """
    std = entry[f"{key}_std"]
    mean = fmt(float(entry[key]), digits)
    return mean if math.isnan(std) else f"{mean} +- {fmt(float(std), digits)}"


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows as a CSV file, one column per key (in first-seen order)."""
    import pandas as pd  # noqa: PLC0415

    pd.DataFrame(list(rows)).to_csv(path, index=False)


def write_study(
    output: Path,
    study: str,
    tables: Sequence[Table],
    csv: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    json_files: Mapping[str, Any] | None = None,
) -> None:
    """Write a study's results: ``<study>.md`` (its tables) and the named CSV and JSON files under ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    for name, rows in (csv or {}).items():
        write_csv(output / name, rows)
    for name, content in (json_files or {}).items():
        (output / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    text = "\n\n".join(table.markdown() for table in tables) + "\n"
    (output / f"{study}.md").write_text(text, encoding="utf-8")


def write_scatter(path: Path, points: Sequence[Point], xlabel: str, ylabel: str, title: str, log_x: bool) -> None:
    """A scatter plot with one legend entry per point, as a PNG file."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for point in points:
        axes.scatter(point.x, point.y, marker=point.marker, color=point.colour, label=point.label)
    if log_x:
        axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(output: Path, info: dict[str, Any], commands: Sequence[str], seconds: dict[str, float]) -> Path:
    """Collect the studies' markdown files under ``output`` into ``report.md``, after the machine and commands."""
    sections = [
        "# EA2D benchmark report",
        "",
        "## Machine",
        "",
        Table(["item", "value"], [[key, str(value)] for key, value in info.items()]).markdown(),
        "",
        "## Commands",
        "",
        "```bash",
        *commands,
        "```",
        "",
        "Wall time per study (s): " + ", ".join(f"{name} {value:.0f}" for name, value in seconds.items()),
    ]
    for study in REPORT_ORDER:
        path = output / f"{study}.md"
        if path.is_file():
            sections += ["", f"## {study}", "", path.read_text(encoding="utf-8")]
    report = output / "report.md"
    report.write_text("\n".join(sections) + "\n", encoding="utf-8")
    return report


__all__ = [
    "fmt_mean_std",
    "mean_std",
    "REPORT_ORDER",
    "Point",
    "Table",
    "fmt",
    "fmt_range",
    "write_csv",
    "write_report",
    "write_scatter",
    "write_study",
]
