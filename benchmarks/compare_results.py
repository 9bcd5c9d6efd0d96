"""Did a change help? Two ``results.json`` of ``benchmarks/accuracy.py`` side by side, paired by seed.

For every (task, variant, network) present in both files: the mean of a metric before and after,
the mean difference over the seeds both runs share and a paired two-sided t-test (the same
:func:`benchmarks.accuracy_report._paired` the report uses). Only meaningful when both runs come
from the same machine and settings apart from the change (a 300-iteration CPU run depends on the
CPU: ``docs/accuracy.md``).

    python benchmarks/compare_results.py docs/accuracy/run_X/results.json docs/accuracy/results.json
    python benchmarks/compare_results.py OLD NEW --metric pixel_auroc
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.accuracy_report import NAMES, _paired  # noqa: E402


def _groups(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["task"], r["variant"], r["network"]), []).append(r)
    return out


def compare(old: list[dict[str, Any]], new: list[dict[str, Any]], metric: str = "auroc_percentile") -> list[str]:
    """Markdown table lines: one row per (task, variant, network) in both, on the seeds both hold."""
    before, after = _groups(old), _groups(new)
    lines = [f"| task | variant | model | seeds | {metric}: before | after | difference (paired t-test) |", "|" + " --- |" * 7]
    improved = total = 0
    for key in sorted(set(before) & set(after)):
        seeds = sorted({r["seed"] for r in before[key]} & {r["seed"] for r in after[key]})
        a = [r for r in after[key] if r["seed"] in seeds and r.get(metric) is not None]
        b = [r for r in before[key] if r["seed"] in seeds and r.get(metric) is not None]
        if not a or len(a) != len(b):
            continue
        mean_b, mean_a = float(np.mean([r[metric] for r in b])), float(np.mean([r[metric] for r in a]))
        total += 1
        improved += mean_a >= mean_b
        task, variant, net = key
        lines.append(f"| {task} | {variant} | {NAMES.get(net, net)} | {len(seeds)} | {mean_b:.3f} | {mean_a:.3f} | {_paired(a, b, metric)} |")
    lines.append(f"\nAfter >= before in {improved} of {total} rows.")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="results.json of the run before the change")
    parser.add_argument("after", type=Path, help="results.json of the run after it")
    parser.add_argument("--metric", default="auroc_percentile", help="a row key (default auroc_percentile: image AUROC, default score)")
    args = parser.parse_args(argv)
    rows = [json.loads(p.read_text())["rows"] for p in (args.before, args.after)]
    print("\n".join(compare(rows[0], rows[1], args.metric)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
