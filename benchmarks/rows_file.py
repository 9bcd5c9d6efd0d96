"""The results of a small benchmark script (``case_score.py``, ``body_crop.py``): ``OUTPUT`` (a
JSON file of the settings and one row per run) and its summary page beside it (``OUTPUT`` with
``.md``), which ``--report-only`` rewrites from the JSON."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
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


def add_run_arguments(parser: argparse.ArgumentParser, models: list[str]) -> None:
    """``--tasks``, ``--models`` and ``--workers`` of a script that trains through ``accuracy.run_one``."""
    parser.add_argument("--tasks", nargs="+", default=["lidc", "brain"], choices=["lidc", "brain"])
    parser.add_argument("--models", nargs="+", default=list(models), choices=list(models))
    parser.add_argument("--workers", type=int, default=2, help="processes, one thread each (default 2)")


def train_rows(jobs: list[dict[str, Any]], workers: int, output: str | Path) -> list[dict[str, Any]]:
    """``accuracy.run_all`` over ``jobs`` (its log beside ``output``, as ``.jsonl``), the rows
    without their validation histories."""
    from benchmarks.accuracy import run_all

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    rows, skipped = run_all(jobs, workers, Path(output).with_suffix(".jsonl"))
    if skipped:  # these scripts give their jobs no deadline: every run is trained
        raise RuntimeError(f"train_rows: {len(skipped)} run(s) skipped at a deadline, which these jobs do not set")
    return [{k: v for k, v in r.items() if k != "history"} for r in rows]


def mean_sd(values: list[float], digits: int = 3) -> str:
    """``mean ± sd`` (sample sd; 0 for one value)."""
    import numpy as np

    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.{digits}f}"


def paired_difference(rows: list[dict], key: str, base: str) -> str:
    """``row[key] - row[base]`` over ``rows`` (one per seed): ``+mean difference, p = ...`` of a
    two-sided paired t-test, or the difference alone where it is the same in every seed."""
    import numpy as np

    from mama_monai.evaluation import paired_t_test

    a, b = np.array([r[key] for r in rows]), np.array([r[base] for r in rows])
    if np.allclose(a - b, (a - b)[0]):
        return f"{float((a - b).mean()):+.3f} (the same in every seed)"
    t = paired_t_test(a.tolist(), b.tolist())
    return f"{t.mean_difference:+.3f}, p = {t.p:.2g}"


def against_base(rows: list[dict], key: str, base: str) -> list[str]:
    """The four cells of a page that scores the same runs several ways: validation (``val_`` +
    ``key``) and test (``key``) as mean ± sd over ``rows`` (one per seed), each followed by its
    difference from ``base`` paired over seeds (``–`` where ``key`` is ``base``)."""
    cells = []
    for prefix in ("val_", ""):
        diff = "–" if key == base else paired_difference(rows, prefix + key, prefix + base)
        cells += [mean_sd([r[prefix + key] for r in rows]), diff]
    return cells


def bright_dark_lines(rows: list[dict], models: Sequence[str], names: dict[str, str], variants: dict[str, str], heading: str) -> list[str]:
    """The brain page's table of bright and dark SIMULATED lesions apart: one line per model and
    variant (``variants``: what the table calls it -> the row key after ``bright_`` / ``dark_``)."""
    lines = ["", "Bright and dark SIMULATED lesions apart (test image AUROC):", "", f"| model | {heading} | bright | dark |", "| --- | --- | --- | --- |"]
    for net in models:
        group = [r for r in rows if r["network"] == net]
        for label, key in variants.items():
            if group:
                lines.append(f"| {names.get(net, net)} | {label} | {mean_sd([r['bright_' + key] for r in group])} | {mean_sd([r['dark_' + key] for r in group])} |")
    return lines


def scored_jobs(args: argparse.Namespace, extra_scores: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One ``accuracy.run_one`` job per task, model and seed of ``args`` at the product's
    settings, each scoring its outputs also with ``extra_scores`` (modules of ``benchmarks/``
    with a ``row_values``); the slowest first, so that the workers finish together."""
    from benchmarks.accuracy import _cost

    base = {"size": args.size, "iterations": args.iterations, "interval": min(50, args.iterations), "variant": "main", "extra_scores": list(extra_scores)}
    jobs = [dict(base, task=t, network=n, seed=s) for t in args.tasks for n in args.models for s in args.seeds]
    return sorted(jobs, key=_cost, reverse=True)


def main(
    argv: list[str] | None,
    doc: str,
    summary: Summary,
    make_jobs: Callable[[argparse.Namespace, Path], list[dict[str, Any]]],
    models: Sequence[str],
    extra_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """A script that trains through ``accuracy.run_one``: its arguments (``extra_arguments``
    first, then :func:`add_arguments` and :func:`add_run_arguments`), ``--report-only``, the jobs
    of ``make_jobs(args, tmp)`` (``tmp``: a temporary folder that lasts while they run) trained
    by :func:`train_rows` and saved by :func:`save`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if extra_arguments is not None:
        extra_arguments(parser)
    add_arguments(parser)
    add_run_arguments(parser, models)
    args = parser.parse_args(argv)
    if args.report_only:
        return rewrite_report(args.output, summary)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        rows = train_rows(make_jobs(args, Path(tmp)), args.workers, args.output)
    return save(args, rows, start, summary)
