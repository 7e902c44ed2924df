"""The run report's page: one self-contained HTML file from prepared tables and pictures.

Every picture is embedded as a base64 PNG, the style sheet is inline and nothing is fetched, so the
file opens offline in any browser; the only links point at files next to it (NIfTI maps of volumes).
Sections, each an element with its ``id``: ``settings``, ``data``, ``metrics``, ``curves``,
``histograms``, ``errors`` (top false positives and false negatives) and ``volumes``.

Example:
    >>> page = render_html(ReportContent(title="EA2D test run"))
    >>> all(f'id="{section}"' in page for section in SECTIONS)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

from anomalib_ea2d.visualization.report.plots import data_uri

SECTIONS = ("settings", "data", "metrics", "curves", "histograms", "errors", "volumes")
"""The ``id`` of every section of the page, in order."""

STYLE = """
body{font-family:system-ui,'Segoe UI',sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:2px}h3{font-size:14px;margin:14px 0 6px}
h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}.note{color:#555;font-size:13px}
.cases{display:flex;flex-wrap:wrap;gap:10px}
.case{font-size:12px;width:200px;overflow-wrap:anywhere}.case img{display:block}
.wrong{color:#b00020;font-weight:600}.grid{display:flex;gap:36px;flex-wrap:wrap}img.plot{max-width:100%}
"""


@dataclass
class MetricRow:
    """A metric as logged by the run and as recomputed by the report from its arrays.

    Attributes:
        name: Logged name, e.g. ``image_AUROC``.
        logged: The value the trainer logged (``None`` if it logged none).
        report: The value from the report's arrays (``None`` where not recomputed).
        note: Where the report's value comes from.
    """

    name: str
    logged: float | None
    report: float | None = None
    note: str = ""


@dataclass
class Case:
    """One test image shown as a thumbnail (a false positive or false negative)."""

    name: str
    score: float
    png: bytes
    normalized_score: float | None = None


@dataclass
class VolumeRow:
    """One tested volume: scores, label, decision, its map file and a mid-lesion overlay."""

    name: str
    score: float
    normalized_score: float | None
    prediction: int | None
    label: int | None
    slices: int
    map_href: str | None = None
    overlay: bytes | None = None
    overlay_note: str = ""


@dataclass
class ReportContent:
    """Everything the page shows, prepared (numbers, texts, PNG bytes)."""

    title: str
    subtitle: str = ""
    settings: list[tuple[str, str]] = field(default_factory=list)
    hyperparameters: list[tuple[str, str]] = field(default_factory=list)
    data: list[tuple[str, str]] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    curves: bytes | None = None
    curves_note: str = ""
    histograms: bytes | None = None
    histograms_note: str = ""
    false_positives: list[Case] = field(default_factory=list)
    false_negatives: list[Case] = field(default_factory=list)
    errors_note: str = ""
    volumes: list[VolumeRow] = field(default_factory=list)
    volumes_note: str = ""


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for a table cell: ``digits`` decimals, ``-`` for missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _pairs(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>" for key, value in rows)
    return f"<table>{cells}</table>"


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>' if text else ""


def _image(png: bytes | None, alt: str, missing: str) -> str:
    if png is None:
        return _note(missing)
    return f'<img class="plot" alt="{escape(alt)}" src="{data_uri(png)}">'


def _metrics(rows: list[MetricRow]) -> str:
    if not rows:
        return _note("The run logged no test metrics.")
    body = "".join(
        f"<tr><td>{escape(row.name)}</td><td class=num>{fmt(row.logged)}</td>"
        f"<td class=num>{fmt(row.report)}</td><td>{escape(row.note)}</td></tr>"
        for row in rows
    )
    return f"<table><tr><th>metric</th><th>logged</th><th>this report</th><th>report's source</th></tr>{body}</table>"


def _cases(title: str, cases: list[Case], empty: str) -> str:
    if not cases:
        return f"<h3>{escape(title)}</h3>" + _note(empty)
    items = "".join(
        f'<div class="case"><img alt="{escape(case.name)}" src="{data_uri(case.png)}">'
        f"{escape(case.name)}<br>raw score {case.score:.4g}"
        + (f", normalised {case.normalized_score:.3f}" if case.normalized_score is not None else "")
        + "</div>"
        for case in cases
    )
    return f'<h3>{escape(title)}</h3><div class="cases">{items}</div>'


def _label(value: int | None, names: tuple[str, str] = ("normal", "abnormal")) -> str:
    return "-" if value is None else names[int(value)]


def _volumes(rows: list[VolumeRow]) -> str:
    if not rows:
        return ""
    body = []
    for row in rows:
        wrong = row.prediction is not None and row.label is not None and row.prediction != row.label
        link = f'<a href="{escape(row.map_href)}">NIfTI map</a>' if row.map_href else "-"
        overlay = (
            f'<img alt="{escape(row.name)} overlay" src="{data_uri(row.overlay)}"><br>{escape(row.overlay_note)}'
            if row.overlay
            else escape(row.overlay_note or "-")
        )
        body.append(
            f"<tr><td>{escape(row.name)}</td><td class=num>{row.score:.4g}</td>"
            f"<td class=num>{fmt(row.normalized_score, 3)}</td><td>{_label(row.label)}</td>"
            f"<td{' class=wrong' if wrong else ''}>{_label(row.prediction, ('normal', 'flagged'))}</td>"
            f"<td class=num>{row.slices}</td><td>{link}</td><td>{overlay}</td></tr>"
        )
    header = "".join(
        f"<th>{name}</th>"
        for name in ("volume", "raw score", "normalised", "label", "decision", "slices", "map", "mid-lesion overlay")
    )
    return f"<table><tr>{header}</tr>{''.join(body)}</table>"


def render_html(content: ReportContent) -> str:
    """The whole page as one string."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(content.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(content.title)}</h1>",
        _note(content.subtitle),
        '<section id="settings"><h2>Run settings</h2>',
        _pairs(content.settings) if content.settings else _note("No settings recorded."),
        (
            f"<details><summary>model hyper-parameters ({len(content.hyperparameters)})</summary>"
            f"{_pairs(content.hyperparameters)}</details>"
            if content.hyperparameters
            else ""
        ),
        '</section><section id="data"><h2>Data</h2>',
        _pairs(content.data) if content.data else _note("No data summary recorded."),
        '</section><section id="metrics"><h2>Metrics</h2>',
        _metrics(content.metrics),
        _note(
            "logged: what the run logged (its metrics table, CSVs). this report: recomputed here from the "
            "raw scores the run kept; ranking metrics are computed on raw scores, before the post-processor."
        ),
        '</section><section id="curves"><h2>ROC and precision-recall curves</h2>',
        _image(
            content.curves,
            "ROC and precision-recall curves",
            "No curves: the test set needs normal and abnormal samples.",
        ),
        _note(content.curves_note),
        '</section><section id="histograms"><h2>Scores of normal and abnormal samples</h2>',
        _image(content.histograms, "score histograms", "No histograms: no labelled test scores."),
        _note(content.histograms_note),
        '</section><section id="errors"><h2>Top false positives and false negatives</h2>',
        _note(content.errors_note),
        _cases("False positives (normal, flagged; highest scores first)", content.false_positives, "None."),
        _cases("False negatives (abnormal, missed; lowest scores first)", content.false_negatives, "None."),
        '</section><section id="volumes"><h2>Volumes</h2>',
        _note(content.volumes_note),
        _volumes(content.volumes),
        "</section></body></html>",
    ]
    return "\n".join(part for part in parts if part)


__all__ = ["SECTIONS", "Case", "MetricRow", "ReportContent", "VolumeRow", "fmt", "render_html"]
