"""The scoring settings, swept on the same networks: smoothing, the body's erosion and the reduction
(``docs/accuracy/scoring_settings.md``; predicted before the run in
``docs/accuracy/scoring_settings_prediction.txt``).

The product's slice score is the 99th percentile of the squared error, smoothed with a Gaussian
of sigma 2 px, inside the body (input > 0.02) eroded by 2 px (``scoring#sigma``, ``#percentile``,
``#reduction``, ``#border``). Those values were chosen on the first release's plain autoencoder
(DESIGN.md §8) and never swept since. Here every (task, network, seed) trains once through
``benchmarks/accuracy.py``'s ``run_one`` (the product's path) and its validation and test
outputs are scored on the grid sigma {1, 2, 4} px x border {0, 2, 4, 6} px x reduction {95th
percentile, 99th percentile, maximum}, all with the product's :class:`AnomalyMap`. Scoring
only: the networks, their checkpoints and the foreground threshold are the product's.

Pixel AUROC is measured inside the default's foreground (eroded 2 px) for every setting, so that
it compares the same pixels: a wider erosion sets the ring it removes to 0.

    python benchmarks/scoring_settings.py --output docs/accuracy/scoring_settings.json   # ~10 min on 2 CPU cores
    python benchmarks/scoring_settings.py --output docs/accuracy/scoring_settings.json --report-only
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rows_file  # noqa: E402
from benchmarks.accuracy import MODELS  # noqa: E402
from benchmarks.accuracy_report import NAMES  # noqa: E402

SIGMAS = (1.0, 2.0, 4.0)
BORDERS = (0, 2, 4, 6)
#: reduction name -> (``scoring#reduction``, ``scoring#percentile``)
REDUCTIONS = {"p95": ("percentile", 95.0), "p99": ("percentile", 99.0), "max": ("max", 99.0)}
#: the product's settings (``configs``' ``scoring``)
DEFAULT = (2.0, 2, "p99")


def key(sigma: float, border: int, reduction: str) -> str:
    """``s2_b2_p99``: the row-key suffix of one setting."""
    return f"s{sigma:g}_b{border}_{reduction}"


def describe(sigma: float, border: int, reduction: str) -> str:
    return f"sigma {sigma:g} px, border {border} px, {'maximum' if reduction == 'max' else reduction[1:] + 'th percentile'}"


#: every setting of the grid, the default first
GRID = [DEFAULT] + [s for s in itertools.product(SIGMAS, BORDERS, REDUCTIONS) if s != DEFAULT]
#: the default and each setting that changes one of its three values: what the page lists
ONE_AT_A_TIME = [s for s in GRID if sum(a != b for a, b in zip(s, DEFAULT)) <= 1]


def anomaly_map(scoring: dict, sigma: float, border: int, reduction: str):
    """The product's :class:`AnomalyMap` with one setting of the grid (the foreground threshold the config's)."""
    from mama_monai.engines import AnomalyMap

    mode, percentile = REDUCTIONS[reduction]
    return AnomalyMap(2, sigma=sigma, reduction=mode, percentile=percentile, foreground_threshold=scoring.get("foreground_threshold"), border=border)


def row_values(val: dict[str, np.ndarray], val_items: Sequence[dict], out: dict[str, np.ndarray], test: Sequence[dict], scoring: dict) -> dict[str, Any]:
    """One run's numbers for every setting (``accuracy.run_one``'s ``extra_scores``): ``val_set_<key>``
    and ``set_<key>`` (image AUROC), ``pixel_set_<key>`` (pixel AUROC over the anomalous test slices
    with a mask, inside the default's foreground) and, for a test with ``lesion`` kinds,
    ``bright_set_<key>`` / ``dark_set_<key>``."""
    import torch
    from sklearn.metrics import roc_auc_score

    from mama_monai.evaluation import pixel_auroc

    x, r = torch.as_tensor(out["image"]), torch.as_tensor(out["pred"])
    vx, vr = torch.as_tensor(val["image"]), torch.as_tensor(val["pred"])
    labels, val_labels = out["label"].astype(int), val["label"].astype(int)
    region = anomaly_map(scoring, *DEFAULT).foreground(x).numpy()[:, 0] > 0
    masks = np.stack([np.asarray(it["mask"])[0] > 0 for it in test])
    with_mask = (labels == 1) & masks.reshape(len(masks), -1).any(axis=1)
    lesion = np.array([it.get("lesion") for it in test])
    row: dict[str, Any] = {}
    for setting in GRID:
        amap, name = anomaly_map(scoring, *setting), key(*setting)
        maps = amap.map(x, r)
        scores = amap.score(maps).numpy()
        row[f"set_{name}"] = float(roc_auc_score(labels, scores))
        row[f"val_set_{name}"] = float(roc_auc_score(val_labels, amap(vx, vr).numpy()))
        if with_mask.any():
            row[f"pixel_set_{name}"] = float(pixel_auroc(maps.numpy()[with_mask, 0], masks[with_mask], region[with_mask]))
        for kind in ("bright", "dark"):
            if (lesion == kind).any():
                keep = (lesion == kind) | (lesion == "none")
                row[f"{kind}_set_{name}"] = float(roc_auc_score(labels[keep], scores[keep]))
    return row


# ----------------------------------------------------------------------------- the page
def best_by_validation(rows: list[dict], network: str = "mamanet_compact") -> tuple[float, int, str]:
    """The setting of the grid with the highest mean validation AUROC of ``network``, averaged over the tasks in ``rows``."""
    tasks = sorted({r["task"] for r in rows})

    def mean_val(setting) -> float:
        return float(np.mean([np.mean([r[f"val_set_{key(*setting)}"] for r in rows if r["task"] == t and r["network"] == network]) for t in tasks]))

    return max(GRID, key=mean_val)


def summary(rows: list[dict], settings: dict) -> str:
    best = best_by_validation(rows)
    listed = ONE_AT_A_TIME + ([best] if best not in ONE_AT_A_TIME else [])
    lines = [
        "# Scoring settings: smoothing, erosion of the body, reduction",
        "",
        f"Written by `python benchmarks/scoring_settings.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; one network per model and seed, trained and validated as `benchmarks/accuracy.py` "
        f"does, its validation and test outputs scored on a grid of {len(GRID)} settings (sigma {list(SIGMAS)} px x border "
        f"{list(BORDERS)} px x reduction 95th / 99th percentile / maximum) with the product's `AnomalyMap`. Listed: the "
        f"default ({describe(*DEFAULT)}), each setting that changes one of its values, and the grid's best by MAMA Net's "
        "validation AUROC averaged over both tasks (every setting is in the rows). Validation = SIMULATED lesions in the "
        "held-out normals; pixel AUROC inside the default's foreground. Image AUROC, mean ± sd over seeds; differences "
        "paired over seeds. Predictions and the decision rule, written before the run: `scoring_settings_prediction.txt`. "
        "Rows: `" + Path(settings["output"]).name + "`.",
        "",
        f"The grid's best by MAMA Net's validation: {describe(*best)}.",
    ]
    for task in ("lidc", "brain"):
        mine = [r for r in rows if r["task"] == task]
        if not mine:
            continue
        brain = task == "brain"
        lines += ["", f"## {'LIDC (REAL nodules)' if not brain else 'brain T1 (SIMULATED lesions)'}", "",
                  "| model | setting | validation AUROC | minus default (paired) | test image AUROC | minus default (paired) | test pixel AUROC |"
                  + (" bright | dark |" if brain else ""),
                  "| --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if brain else "")]  # fmt: skip
        for net in MODELS:
            group = sorted((r for r in mine if r["network"] == net), key=lambda r: r["seed"])
            if not group:
                continue
            for setting in listed:
                name = key(*setting)
                pixel = rows_file.mean_sd([r["pixel_set_" + name] for r in group]) if "pixel_set_" + name in group[0] else "–"
                cells = [NAMES.get(net, net), describe(*setting) + (" (default)" if setting == DEFAULT else ""),
                         *rows_file.against_base(group, "set_" + name, "set_" + key(*DEFAULT)), pixel]  # fmt: skip
                if brain:
                    cells += [rows_file.mean_sd([r[f"{k}_set_{name}"] for r in group]) for k in ("bright", "dark")]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _jobs(args: argparse.Namespace, tmp: Path) -> list[dict]:
    return rows_file.scored_jobs(args, ["scoring_settings"])


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, _jobs, MODELS)


if __name__ == "__main__":
    raise SystemExit(main())
