"""Residual maps other than the squared error: absolute error and structural dissimilarity
(``docs/accuracy/residual_maps.md``; predicted before the run in
``docs/accuracy/residual_maps_prediction.txt``).

Every (task, network, seed) trains and is scored by ``benchmarks/accuracy.py``'s ``run_one`` (the
product's path); its validation slices (held-out normals and their SIMULATED-lesion copies) and
test slices are scored with the product's map (squared error, smoothed) and with the two others
of ``benchmarks.accuracy._residual_maps``, all on the product's foreground and with its
reduction (99th percentile in the body). Only the map differs: the networks are the same.

    python benchmarks/residual_maps.py --output docs/accuracy/residual_maps.json   # ~25 min on 2 CPU cores
    python benchmarks/residual_maps.py --output docs/accuracy/residual_maps.json --report-only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rows_file  # noqa: E402
from benchmarks.accuracy import MODELS  # noqa: E402
from benchmarks.accuracy_report import NAMES  # noqa: E402

#: map name -> the row key of its image AUROC (``run_one``; ``val_`` before it for validation)
MAPS = {"squared (the product's)": "auroc_percentile", "absolute": "auroc_residual_absolute", "ssim": "auroc_residual_ssim"}


def summary(rows: list[dict], settings: dict) -> str:
    lines = [
        "# Residual maps: squared error, absolute error, structural dissimilarity",
        "",
        f"Written by `python benchmarks/residual_maps.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; one network per model and seed, trained and validated as `benchmarks/accuracy.py` "
        "does, each scored with three maps on the product's foreground and reduction (99th percentile in the body): "
        "*squared* (x - x̂)² smoothed (sigma 2 px, the product's), *absolute* |x - x̂| smoothed the same, *ssim* "
        "(1 - SSIM(x̂, x)) / 2 over a 7-px Gaussian window (sigma 1.5, MONAI's `compute_ssim_and_cs`). Image AUROC, "
        "mean ± sd over seeds; validation = SIMULATED lesions in held-out normal slices; differences paired over seeds. "
        "Predictions and the decision rule, written before the run: `residual_maps_prediction.txt`. Rows: `"
        + Path(settings["output"]).name + "`.",
    ]
    base = MAPS["squared (the product's)"]
    for task in ("lidc", "brain"):
        mine = [r for r in rows if r["task"] == task]
        if not mine:
            continue
        lines += ["", f"## {'LIDC (REAL nodules)' if task == 'lidc' else 'brain T1 (SIMULATED lesions)'}", "",
                  "| model | map | validation AUROC | minus squared (paired) | test image AUROC | minus squared (paired) |",
                  "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for net in MODELS:
            group = sorted((r for r in mine if r["network"] == net), key=lambda r: r["seed"])
            if not group:
                continue
            for name, key in MAPS.items():
                lines.append("| " + " | ".join([NAMES.get(net, net), name, *rows_file.against_base(group, key, base)]) + " |")
        if task == "brain":
            lines += rows_file.bright_dark_lines(mine, MODELS, NAMES, MAPS, "map")
    return "\n".join(lines) + "\n"


def _jobs(args: argparse.Namespace, tmp: Path) -> list[dict]:
    return rows_file.scored_jobs(args)


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, _jobs, MODELS)


if __name__ == "__main__":
    raise SystemExit(main())
