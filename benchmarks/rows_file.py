"""The results of a small benchmark script (``case_score.py``, ``body_crop.py``): ``OUTPUT`` (a
JSON file of the settings and one row per run) and its summary page beside it (``OUTPUT`` with
``.md``), which ``--report-only`` rewrites from the JSON."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: ``summary(rows, settings)`` -> the Markdown page
Summary = Callable[[list[dict], dict], str]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--output``, ``--seeds``, ``--size``, ``--iterations`` and ``--report-only``."""
    parser.add_argument("--output", required=True, help="JSON file of the rows (a .md summary is written beside it)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--report-only", action="store_true", help="rewrite the .md beside --output from its JSON")


def rewrite_report(output: str | Path, summary: Summary) -> int:
    """``--report-only``: the summary page written again from the saved JSON."""
    saved = json.loads(Path(output).read_text())
    Path(output).with_suffix(".md").write_text(summary(saved["rows"], saved["settings"]))
    return 0


def save(args: argparse.Namespace, rows: list[dict[str, Any]], start: float, summary: Summary) -> int:
    """The rows with the settings (the arguments, the time since ``start``, the date, the CPU) as
    JSON at ``args.output``, the summary page beside it and on the terminal."""
    from benchmarks.machine import cpu_model

    out = Path(args.output)
    settings = dict(vars(args), seconds=round(time.time() - start), date=time.strftime("%Y-%m-%d"), cpu=cpu_model())
    out.write_text(json.dumps({"settings": settings, "rows": rows}, indent=1) + "\n")
    page = summary(rows, settings)
    out.with_suffix(".md").write_text(page)
    print(page)
    return 0
