"""``index.html``: the page a person opens after ``score``, ``evaluate`` or ``demo``.

Self-contained and offline: inline CSS, no script or font from the network; images are the PNG
files the command wrote beside the page, linked by relative paths (the folder can be moved or
zipped). Every text taken from a report is HTML-escaped. A tiny inline script marks each image
``data-loaded="yes"`` once the browser has decoded it (``"no"`` if it failed): the tests read that
back from a real browser's DOM.

- ``score``: cases ranked by score (label, score, threshold, slice of the maximum, warnings),
  the failures, and per case the slice strip with the map overlaid, the slice-score curve, the
  overlay of the top slice and links to the NIfTI map and mask and the DICOM objects.
- ``evaluate``: image metrics of both scores, pixel AUROC, failures, and the plots (ROC,
  histograms, normality, montage).
- ``demo``: one such metric block per model with its plots, and a link to the scored volume's page.

Example:
    >>> write_score_page("scores", report)  # doctest: +SKIP
    PosixPath('scores/index.html')
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mama_monai.atomic import atomic_write

__all__ = ["write_demo_page", "write_evaluate_page", "write_score_page"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.92em}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.anomalous{background:#c62828;color:#fff;border-radius:3px;padding:0 .4em}.normal{background:#2e7d32;color:#fff;border-radius:3px;padding:0 .4em}
.failed{background:#555;color:#fff;border-radius:3px;padding:0 .4em}.meta{color:#555;font-size:.9em}
details{margin:.8em 0;border:1px solid #ddd;border-radius:4px;padding:.4em .8em}summary{cursor:pointer;font-weight:600}
img{max-width:min(100%,900px);height:auto;display:block;margin:.4em 0;border:1px solid #eee}.warn{color:#8a5a00}
"""
_SCRIPT = (
    "<script>document.querySelectorAll('img').forEach(function(i){function m(){i.dataset.loaded="
    "(i.complete&&i.naturalWidth>0)?'yes':'no';}if(i.complete){m();}else{i.addEventListener('load',m);"
    "i.addEventListener('error',m);}});</script>"
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return _e(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(src: str, alt: str) -> str:
    return f'<img src="{_e(src)}" alt="{_e(alt)}" loading="eager">'


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
        f"<body>{body}{_SCRIPT}</body></html>\n"
    )


def _write(folder: Path, text: str) -> Path:
    return atomic_write(folder / "index.html", lambda f: f.write(text.encode("utf-8")))


def _rel(path: str | os.PathLike, folder: Path) -> str:
    """``path`` (absolute, or relative to the working folder, as reports store plot paths) relative to ``folder``."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(folder))).as_posix()


def _case_section(case: dict[str, Any]) -> str:
    name = case["case"]
    links = [("anomaly map (NIfTI)", case.get("anomaly_map")), ("anomaly mask (NIfTI)", case.get("anomaly_mask"))]
    links += [(f"DICOM {kind.replace('_', ' ')}", path) for kind, path in (case.get("dicom") or {}).items()]
    link_html = " · ".join(f'<a href="{_e(p)}">{_e(label)}</a>' for label, p in links if p)
    if not case.get("dicom"):
        link_html += ' <span class="meta">(no DICOM outputs: not a DICOM input, or turned off, or see the warnings)</span>'

    figures = "".join(
        _img(case[key], f"{name}: {what}")
        for key, what in (("slices", "slices with the anomaly map"), ("slice_curve", "slice scores"), ("overlay", "top slice overlay"))
        if case.get(key)
    )
    warnings = "".join(f'<li class="warn">{_e(w)}</li>' for w in case.get("warnings") or [])
    return (
        f'<details open id="{_e(name)}"><summary>{_e(name)}: <span class="{_e(case["label_name"])}">{_e(case["label_name"])}</span>'
        f" score {_num(case['score'])} (threshold {_num(case['threshold'])}), slice {_e(case['max_slice'])} of "
        f"{_e(case['num_slices'])}{_uncounted(case)}</summary><p>{link_html}</p>{f'<ul>{warnings}</ul>' if warnings else ''}{figures}</details>"
    )


def _uncounted(case: dict[str, Any]) -> str:
    """``; N slices not counted (too little body)`` where the case score left slices out."""
    n = len(case.get("slices_not_counted") or [])
    return f"; {n} slice{'s' if n > 1 else ''} not counted (too little body)" if n else ""


def write_score_page(output_dir: str | os.PathLike, report: dict[str, Any]) -> Path:
    """Write ``output_dir/index.html`` for a ``score`` report (:func:`~mama_monai.workflows.scoring.score_cases`)."""
    output_dir = Path(output_dir)
    cases = sorted(report["cases"], key=lambda c: -c["score"])
    model = report["model"]
    rows = [
        [
            f'<td class="num">{rank}</td>', f'<td><a href="#{_e(c["case"])}">{_e(c["case"])}</a></td>',
            f'<td><span class="{_e(c["label_name"])}">{_e(c["label_name"])}</span></td>',
            f'<td class="num">{_num(c["score"])}</td>', f'<td class="num">{_num(c["threshold"])}</td>',
            f'<td class="num">{_e(c["max_slice"])}</td>', f"<td>{_e(' | '.join(c.get('warnings') or [])) or '–'}</td>",
        ]
        for rank, c in enumerate(cases, start=1)
    ]  # fmt: skip
    failures = [
        [f"<td>{_e(f['case'])}</td>", '<td><span class="failed">failed</span></td>', f"<td>{_e(f['error'])}</td>"]
        for f in report["failures"]
    ]
    notes = "".join(f'<li class="warn">{_e(w)}</li>' for w in report.get("warnings") or [])
    body = (
        f"<h1>mama-monai score: {len(cases)} case(s) scored, {sum(c['label'] for c in cases)} anomalous, "
        f"{len(failures)} failed</h1>"
        f'<p class="meta">model {_e(model["file"])} (sha256 {_e(model["sha256"])}), threshold '
        f"{_num(model['threshold']['value'])} ({_e(model['threshold'].get('method', ''))}), preset "
        f"{_e(model.get('preset'))}, created {_e(report['created'])}, mama-monai {_e(report['mama_monai_version'])}. "
        f"{_e(report['definitions']['score'])}; {_e(report['definitions']['label'])}.</p>"
        f"{f'<ul>{notes}</ul>' if notes else ''}"
        "<h2>Cases, ranked by score</h2>"
        + _table(["rank", "case", "label", "score", "threshold", "top slice", "warnings"], rows)
        + ("<h2>Failures</h2>" + _table(["case", "status", "error"], failures) if failures else "")
        + '<p><a href="scores.csv">scores.csv</a> · <a href="scores.json">scores.json</a></p>'
        + "<h2>Cases</h2>"
        + "".join(_case_section(c) for c in cases)
    )
    return _write(output_dir, _page("mama-monai score", body))


def _metrics_table(evaluation: dict[str, Any]) -> str:
    rows = []
    for key, name in (("image", "default score"), ("image_mean_error", "mean error e_u (paper)")):
        m = evaluation.get(key) or {}
        ci = m.get("auroc_ci95")
        rows.append([
            f"<td>{_e(name)}</td>", f'<td class="num">{_num(m.get("auroc"), 3)}</td>',
            f'<td class="num">{"–" if not ci else f"{ci[0]:.2f}–{ci[1]:.2f}"}</td>',
            f'<td class="num">{_num(m.get("sensitivity"), 3)}</td>', f'<td class="num">{_num(m.get("specificity"), 3)}</td>',
            f'<td class="num">{_num(m.get("f1"), 3)}</td>', f'<td class="num">{_num(m.get("threshold"))}</td>',
        ])  # fmt: skip
    table = _table(["score", "image AUROC", "95 % CI", "sensitivity", "specificity", "F1", "threshold"], rows)
    return f"{table}<p>pixel AUROC ({_e(evaluation.get('pixel_region', ''))}): {_num(evaluation.get('pixel_auroc'), 3)}</p>"


def _plots(plots: Sequence[str], folder: Path, name: str) -> str:
    return "".join(_img(_rel(p, folder), f"{name}: {Path(p).stem}") for p in plots or [])


def write_evaluate_page(output_dir: str | os.PathLike, report: dict[str, Any]) -> Path:
    """Write ``output_dir/index.html`` for an ``evaluate`` report (``report.json``)."""
    output_dir = Path(output_dir)
    failures = [[f"<td>{_e(f['case'])}</td>", f"<td>{_e(f['reason'])}</td>"] for f in report.get("failures") or []]
    split = report.get("test_split") or {}
    fold = "" if split.get("fold") is None else f" (fold {_e(split['fold'])})"
    body = (
        f"<h1>mama-monai evaluate: {_e(report.get('n_scored'))} of {_e(report.get('n_cases'))} test cases scored</h1>"
        f'<p class="meta">model {_e(report.get("model", ""))}; test split of {_e(split.get("manifest", ""))}'
        f"{fold}.</p><h2>Metrics</h2>{_metrics_table(report)}"
        + ("<h2>Cases that could not be loaded</h2>" + _table(["case", "reason"], failures) if failures else "")
        + '<p><a href="report.json">report.json</a></p><h2>Plots</h2>'
        + _plots(report.get("plots") or [], output_dir, "evaluate")
    )
    return _write(output_dir, _page("mama-monai evaluate", body))


def write_demo_page(output_dir: str | os.PathLike, report: dict[str, Any]) -> Path:
    """Write ``output_dir/index.html`` for the ``demo`` report: every model's metrics and plots."""
    output_dir = Path(output_dir)
    data = report.get("data") or {}
    sections = "".join(
        f"<h2 id=\"{_e(name)}\">{_e(name)} ({_e(model.get('network'))}, {_e(model.get('parameters'))} parameters)</h2>"
        f"{_metrics_table(model.get('test') or {})}{_plots((model.get('test') or {}).get('plots') or [], output_dir, name)}"
        for name, model in (report.get("models") or {}).items()
    )
    summary = []
    for name, model in (report.get("models") or {}).items():
        test = model.get("test") or {}
        image = test.get("image") or {}
        ci = image.get("auroc_ci95")
        summary.append([
            f'<td><a href="#{_e(name)}">{_e(name)}</a></td>', f'<td class="num">{_num(image.get("auroc"), 3)}</td>',
            f'<td class="num">{"–" if not ci else f"{ci[0]:.2f}–{ci[1]:.2f}"}</td>',
            f'<td class="num">{_num(image.get("sensitivity"), 3)}</td>', f'<td class="num">{_num(image.get("specificity"), 3)}</td>',
            f'<td class="num">{_num(test.get("pixel_auroc"), 3)}</td>',
        ])  # fmt: skip
    table = _table(["model", "image AUROC", "95 % CI", "sensitivity", "specificity", "pixel AUROC"], summary)
    body = (
        f"<h1>mama-monai demo ({_e(report.get('seconds_total'))} s on {_e(report.get('device'))})</h1>"
        f'<p class="meta">{_e(data.get("dataset", ""))}. Training normals: {_e(data.get("training_normals", ""))}. '
        f'Test anomalies: {_e(data.get("test_anomalies", ""))}. '
        f"Test normals: {_e(data.get('test_normals', ''))}. Validation anomalies: {_e(data.get('validation_anomalies', ''))}.</p>"
        '<p><a href="scores/index.html">the whole CT volume scored (scores/index.html)</a> · '
        '<a href="report.json">report.json</a></p><h2>Models on the test split</h2>' + table + sections
    )
    return _write(output_dir, _page("mama-monai demo", body))
