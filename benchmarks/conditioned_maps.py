"""Maps standardised by the held-out normals' own error: does the slice score find what the
pixel map finds? (``docs/accuracy/conditioned_maps.md``; predicted before the run in
``docs/accuracy/conditioned_maps_prediction.txt``)

On the demo's LIDC split MAMA Net's map ranks nodule pixels above 95 % of body pixels (pixel
AUROC 0.95), yet its slice score (the 99th percentile of the map in the body) ranks nodule
slices above matched normals only 75 % of the time: every autoencoder's error is high where
every slice has structure (the body's outline, bone rims, vessel walls), and those pixels set
a normal slice's 99th percentile. Each candidate here divides the product's map by what the
*held-out normal* slices (the validation normals that already set the threshold) say to
expect at that pixel, then takes the same reduction:

- *gradient*: the normals' mean map value in each of 16 quantile bins of the input's local
  gradient magnitude (Gaussian derivative, sigma 1 px): edges are expected to err, flat tissue
  (lung parenchyma, where a nodule sits) is not;
- *intensity*: the same with bins of the input intensity;
- *position*: a z-score per pixel, (map - mean) / (sd + median sd), over the normals at the
  same pixel of the body-cropped slice.

The fitted tables come from normal data only: for the test, every validation normal; for the
validation AUROC (SIMULATED lesions in the validation normals), two-fold cross-fitting by source
slice, so that no slice is scored with a table fitted on itself. Every candidate keeps the
product's foreground and its reduction (99th percentile inside it). Only the map differs: each
network is trained once (``benchmarks/accuracy.py``'s ``run_one``, the product's path).

    python benchmarks/conditioned_maps.py --output docs/accuracy/conditioned_maps.json   # ~25 min on 2 CPU cores
    python benchmarks/conditioned_maps.py --output docs/accuracy/conditioned_maps.json --report-only
"""

from __future__ import annotations

import argparse
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

#: candidate name -> what the page calls it; "product" is the product's map, unchanged
CANDIDATES = {
    "product": "the product's map (p99 in body)",
    "gradient": "/ normal error at the same gradient",
    "intensity": "/ normal error at the same intensity",
    "position": "z-score at the same pixel",
}
BINS = 16
#: Gaussian derivative scale of the gradient magnitude, pixels
GRADIENT_SIGMA = 1.0
#: added to every expected error, as a fraction of the normals' mean map value in the body, so that
#: a bin with almost no expected error cannot make noise infinite
FLOOR = 0.05
PERCENTILE = 99.0


def gradient_magnitude(images: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` -> the magnitude of each image's Gaussian-derivative gradient (sigma 1 px)."""
    from scipy.ndimage import gaussian_gradient_magnitude

    return np.stack([gaussian_gradient_magnitude(im.astype(np.float64), GRADIENT_SIGMA) for im in images])


def fit(name: str, maps: np.ndarray, condition: np.ndarray | None, body: np.ndarray) -> dict[str, np.ndarray]:
    """The table of candidate ``name`` from normal slices: ``maps`` ``(N, H, W)`` (the product's,
    zero outside the body), ``condition`` the binned variable (``None`` for position), ``body``
    the foreground. Raises ValueError on an unknown name or on no body pixel."""
    if not body.any():
        raise ValueError("fit: the normal slices have no foreground pixel to fit the expected error on.")
    mean = float(maps[body].mean())
    if name == "position":
        mu, sd = maps.mean(axis=0), maps.std(axis=0)
        return {"mu": mu, "sd": sd + float(np.median(sd[mu > 0])) if (mu > 0).any() else sd + mean}
    if name not in ("gradient", "intensity"):
        raise ValueError(f"fit: unknown candidate {name!r}, expected one of {sorted(CANDIDATES)}.")
    edges = np.quantile(condition[body], np.linspace(0.0, 1.0, BINS + 1)[1:-1])
    index = np.digitize(condition[body], edges)
    count = np.bincount(index, minlength=BINS)
    expected = np.where(count > 0, np.bincount(index, weights=maps[body], minlength=BINS) / np.maximum(count, 1), mean)
    return {"edges": edges, "expected": expected + FLOOR * mean}


def apply(name: str, table: dict[str, np.ndarray], maps: np.ndarray, condition: np.ndarray | None, body: np.ndarray) -> np.ndarray:
    """The standardised maps ``(N, H, W)``, zero outside the body."""
    if name == "position":
        out = (maps - table["mu"]) / table["sd"]
    else:
        out = maps / table["expected"][np.digitize(condition, table["edges"])]
    return np.where(body, out, 0.0)


def slice_scores(maps: np.ndarray, body: np.ndarray) -> np.ndarray:
    """The product's reduction: the 99th percentile of each map inside its body (every pixel where it has none)."""
    return np.array([np.percentile(m[b] if b.any() else m, PERCENTILE) for m, b in zip(maps, body)])


def _condition(name: str, images: np.ndarray) -> np.ndarray | None:
    return {"gradient": gradient_magnitude, "intensity": lambda x: x, "position": lambda x: None}[name](images)


def _sources(case_ids: Sequence[str]) -> list[str]:
    """The held-out normal slice each validation item was made from (a SIMULATED copy's source)."""
    return [c.split("_simulated")[0] for c in case_ids]


def validation_maps(name: str, out: dict[str, np.ndarray], body: np.ndarray, case_ids: Sequence[str]) -> np.ndarray:
    """Candidate ``name``'s maps of the validation items, two-fold cross-fitted by source slice:
    the items made from one half of the normal slices are standardised by the table of the other
    half's normal slices (their clean copies only)."""
    maps, images = out["map"][:, 0], out["image"][:, 0]
    condition = _condition(name, images)
    sources = _sources(case_ids)
    normal = out["label"] == 0
    order = sorted({s for s, n in zip(sources, normal) if n})
    fold = np.array([order.index(s) % 2 if s in order else -1 for s in sources])
    if (fold < 0).any():
        raise ValueError(f"validation_maps: {int((fold < 0).sum())} validation items have no clean source slice among the normals.")
    result = np.zeros_like(maps)
    for k in (0, 1):
        fitting = normal & (fold != k)
        table = fit(name, maps[fitting], None if condition is None else condition[fitting], body[fitting])
        mine = fold == k
        result[mine] = apply(name, table, maps[mine], None if condition is None else condition[mine], body[mine])
    return result


def test_maps(name: str, val: dict[str, np.ndarray], val_body: np.ndarray, out: dict[str, np.ndarray], body: np.ndarray) -> np.ndarray:
    """Candidate ``name``'s maps of the test items, standardised by the table of every validation normal."""
    normal = val["label"] == 0
    vcond = _condition(name, val["image"][normal, 0])
    table = fit(name, val["map"][normal, 0], vcond, val_body[normal])
    return apply(name, table, out["map"][:, 0], _condition(name, out["image"][:, 0]), body)


def row_values(val: dict[str, np.ndarray], val_items: Sequence[dict], out: dict[str, np.ndarray], test: Sequence[dict], scoring: dict) -> dict[str, Any]:
    """One run's numbers for every candidate (``accuracy.run_one``'s ``extra_scores``; ``val`` and
    ``out``: ``score_items`` of the validation and test items, ``scoring`` the config's):
    ``val_cond_<name>`` and ``cond_<name>`` (image AUROC), ``pixel_cond_<name>`` (pixel AUROC over
    the anomalous test slices with a mask, in the body) and, where the test has ``lesion`` kinds,
    ``bright_cond_<name>`` / ``dark_cond_<name>``."""
    import torch
    from sklearn.metrics import roc_auc_score

    from mama_monai.engines import AnomalyMap, anomaly_map_args
    from mama_monai.evaluation import pixel_auroc

    amap = AnomalyMap(2, **anomaly_map_args(scoring))
    val_body = amap.foreground(torch.as_tensor(val["image"])).numpy()[:, 0] > 0
    body = amap.foreground(torch.as_tensor(out["image"])).numpy()[:, 0] > 0
    labels, val_labels = out["label"].astype(int), val["label"].astype(int)
    masks = np.stack([np.asarray(it["mask"])[0] > 0 for it in test])
    with_mask = (labels == 1) & masks.reshape(len(masks), -1).any(axis=1)
    lesion = np.array([it.get("lesion") for it in test])
    row: dict[str, Any] = {}
    for name in CANDIDATES:
        if name == "product":
            vmaps, tmaps = val["map"][:, 0], out["map"][:, 0]
        else:
            vmaps = validation_maps(name, val, val_body, [it["case_id"] for it in val_items])
            tmaps = test_maps(name, val, val_body, out, body)
        scores = slice_scores(tmaps, body)
        row[f"val_cond_{name}"] = float(roc_auc_score(val_labels, slice_scores(vmaps, val_body)))
        row[f"cond_{name}"] = float(roc_auc_score(labels, scores))
        if with_mask.any():
            row[f"pixel_cond_{name}"] = float(pixel_auroc(tmaps[with_mask], masks[with_mask], body[with_mask]))
        for kind in ("bright", "dark"):
            keep = (lesion == kind) | (lesion == "none")
            if (lesion == kind).any():
                row[f"{kind}_cond_{name}"] = float(roc_auc_score(labels[keep], scores[keep]))
    return row


# ----------------------------------------------------------------------------- the page
def summary(rows: list[dict], settings: dict) -> str:
    lines = [
        "# Maps standardised by the held-out normals' error: gradient, intensity, position",
        "",
        f"Written by `python benchmarks/conditioned_maps.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; one network per model and seed, trained and validated as `benchmarks/accuracy.py` "
        "does, each scored with the product's map and with the map divided by what the held-out normal validation "
        f"slices say to expect: by {BINS} quantile bins of the input's gradient magnitude (sigma {GRADIENT_SIGMA:g} px) "
        f"or of its intensity (expected error + {FLOOR:g} x the normals' mean), or as a z-score per pixel. Every map "
        "keeps the product's foreground and reduction (99th percentile in the body). Validation = SIMULATED lesions "
        "in the held-out normals, tables cross-fitted over two halves of those slices; test tables from every "
        "validation normal. Image AUROC, mean ± sd over seeds; differences paired over seeds. Predictions and the "
        "decision rule, written before the run: `conditioned_maps_prediction.txt`. Rows: `"
        + Path(settings["output"]).name + "`.",
    ]
    for task in ("lidc", "brain"):
        mine = [r for r in rows if r["task"] == task]
        if not mine:
            continue
        lines += ["", f"## {'LIDC (REAL nodules)' if task == 'lidc' else 'brain T1 (SIMULATED lesions)'}", "",
                  "| model | map | validation AUROC | minus product (paired) | test image AUROC | minus product (paired) | test pixel AUROC |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for net in MODELS:
            group = sorted((r for r in mine if r["network"] == net), key=lambda r: r["seed"])
            if not group:
                continue
            for name, label in CANDIDATES.items():
                key = f"cond_{name}"
                pixel = rows_file.mean_sd([r["pixel_" + key] for r in group]) if "pixel_" + key in group[0] else "–"
                lines.append("| " + " | ".join([NAMES.get(net, net), label, *rows_file.against_base(group, key, "cond_product"), pixel]) + " |")
        if task == "brain":
            lines += rows_file.bright_dark_lines(mine, MODELS, NAMES, {label: f"cond_{name}" for name, label in CANDIDATES.items()}, "map")
    return "\n".join(lines) + "\n"


def _jobs(args: argparse.Namespace, tmp: Path) -> list[dict]:
    return rows_file.scored_jobs(args, ["conditioned_maps"])


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, _jobs, MODELS)


if __name__ == "__main__":
    raise SystemExit(main())
