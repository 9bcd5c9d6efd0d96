"""How much of the models' image-score differences on the demo's tests is the sampling of the test
slices? (``docs/accuracy/sampling_noise.md``; predicted before the run in
``docs/accuracy/sampling_noise_prediction.txt``)

``docs/accuracy.md``'s paired t-tests over five seeds measure training randomness only: every
seed is scored on the same few test slices. The LIDC test is 28 normal slices and 11 nodule
slices, and the 11 are three nodules (slices 66 and 76, and one nodule over the nine contiguous
slices 86-94: ``demo_data/lidc_idri_0001/slices.csv``); the brain test is 11 source slices, each
scored as a normal, a bright and a dark copy. Each (task, network, seed) is trained once by
``benchmarks/accuracy.py``'s ``run_one`` (the product's path) and keeps its per-slice test scores;
the test is then resampled with replacement (``--resamples`` times, one resample shared by every
model and seed, so differences are paired), and each model's AUROC averaged over seeds:

- ``slices``: every test slice its own unit (normals and anomalous slices resampled apart);
- ``clusters``: the units that are independent: LIDC normals one by one, nodule slices by nodule
  (a run of contiguous anomalous slices); brain source slices (its three copies together);
- ``clusters and seeds``: the same, and the seeds resampled too (paired across models by seed).

The page gives, per task, the difference of the seed-mean AUROCs (MAMA Net minus each baseline)
with its 95 % percentile interval and the share of resamples where it is above 0; the same for
the pixel AUROC (each run stores it under ``PIXEL_RESAMPLES`` resamples of its anomalous slices,
by slice and by unit, the maps being too large to keep; the seeds are resampled on the page).

    python benchmarks/sampling_noise.py --output docs/accuracy/sampling_noise.json   # ~12 min on 2 CPU cores
    python benchmarks/sampling_noise.py --output docs/accuracy/sampling_noise.json --report-only
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

RESAMPLES = 2000
#: resamples of the pixel AUROC, stored per run (2 x 1000 numbers a run; the image AUROC's are redrawn from the scores)
PIXEL_RESAMPLES = 1000
SCHEMES = ("slices", "clusters", "clusters and seeds")
TASK_NAME = {"lidc": "LIDC (REAL nodules)", "brain": "brain T1 (SIMULATED lesions)"}


def _jobs(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    return [dict(j, keep_outputs=True, keep_latent=False) for j in rows_file.scored_jobs(args, ["sampling_noise"])]


# ----------------------------------------------------------------------------- pixel AUROC
def unit_resamples(units_of_items: np.ndarray, resamples: int, seed: int = 0) -> np.ndarray:
    """``resamples`` x items weights: each row one resample, with replacement, of the distinct
    units (every item weighted by how often its unit was drawn); the same units and seed give the
    same rows in every run, so a resample is shared by every model and seed."""
    distinct, inverse = np.unique(units_of_items, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(distinct), size=(resamples, len(distinct)))
    counts = np.stack([np.bincount(d, minlength=len(distinct)) for d in draws])
    return counts[:, inverse].astype(float)


def weighted_auroc(values: np.ndarray, lesion: np.ndarray, item: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The AUROC of ``values`` (``lesion`` ones against the others, pooled) with every value of
    item ``k`` counted ``weights[:, k]`` times, one AUROC per row of ``weights`` (a resample);
    ties count half. Pixels: ``item`` their slice; slice scores: ``item`` = their own index."""
    _, level = np.unique(values, return_inverse=True)
    n_items, n_levels = weights.shape[1], level.max() + 1
    pos = np.zeros((n_items, n_levels))
    neg = np.zeros((n_items, n_levels))
    np.add.at(pos, (item[lesion], level[lesion]), 1.0)
    np.add.at(neg, (item[~lesion], level[~lesion]), 1.0)
    out = []
    for chunk in np.array_split(weights, max(1, len(weights) // 100)):  # 100 resamples x levels at a time
        p, n = chunk @ pos, chunk @ neg
        below = np.cumsum(n, axis=1) - n
        out.append((p * (below + 0.5 * n)).sum(axis=1) / (p.sum(axis=1) * n.sum(axis=1)))
    return np.concatenate(out)


def row_values(val: dict, val_items: Sequence[dict], out: dict, test: Sequence[dict], scoring: dict) -> dict[str, Any]:
    """``accuracy.run_one``'s ``extra_scores`` hook: the test's pixel AUROC (the product's: the
    anomalous slices with a mask, inside the map's foreground) unweighted (``pixel_exact``) and
    under ``PIXEL_RESAMPLES`` resamples of its anomalous items by slice and by unit (``pixel_resamples``)."""
    import torch

    from mama_monai.engines import AnomalyMap, anomaly_map_args
    from mama_monai.workflows.metrics_report import lesion_slices

    amap = AnomalyMap(2, **anomaly_map_args(scoring))
    body = amap.foreground(torch.as_tensor(out["image"])).numpy()[:, 0] > 0
    masks = np.stack([np.asarray(it["mask"])[0] > 0 for it in test])
    keep = np.flatnonzero(lesion_slices(test, masks))
    values = np.concatenate([out["map"][k, 0][body[k]] for k in keep])
    lesion = np.concatenate([masks[k][body[k]] for k in keep])
    item = np.concatenate([np.full(int(body[k].sum()), j) for j, k in enumerate(keep)])
    task = "brain" if any(it.get("lesion") for it in test) else "lidc"
    index = np.array([test[k]["slice_index"] for k in keep])
    row: dict[str, Any] = {"pixel_exact": float(weighted_auroc(values, lesion, item, np.ones((1, len(keep))))[0])}
    row["pixel_resamples"] = {
        scheme: [round(float(v), 5) for v in weighted_auroc(values, lesion, item, unit_resamples(units(task, np.ones(len(keep)), index, scheme), PIXEL_RESAMPLES))]
        for scheme in ("slices", "clusters")
    }  # fmt: skip
    return row


def units(task: str, labels: Sequence[int], slice_index: Sequence[int], scheme: str) -> np.ndarray:
    """The resampling unit of each test item: ``"slices"``: the item itself (a brain slice's three
    copies are three items); otherwise the independent unit: the brain's source slice, an LIDC
    normal slice, or an LIDC nodule = a run of contiguous anomalous slice indices."""
    labels, index = np.asarray(labels), np.asarray(slice_index)
    if scheme == "slices":
        return np.arange(len(labels))
    if task == "brain":
        return index.copy()
    out = np.where(labels == 0, index, -1)
    anomalous = sorted(set(index[labels == 1].tolist()))
    run = 0
    for k, i in enumerate(anomalous):
        run += k > 0 and i != anomalous[k - 1] + 1
        out[(labels == 1) & (index == i)] = -1000 - run  # nodules: -1000, -1001, ...
    return out


def resampled_differences(rows: list[dict], task: str, scheme: str, resamples: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Per baseline, MAMA Net's seed-mean test AUROC minus the baseline's over ``resamples``
    resamples of the test's units (stratified: normal and anomalous units apart), paired: one
    resample of units (and of seeds, for ``"clusters and seeds"``) shared by every model."""
    mine = [r for r in rows if r["task"] == task]
    by = {m: {r["seed"]: r for r in mine if r["network"] == m} for m in MODELS}
    seeds = sorted(set.intersection(*(set(v) for v in by.values())))
    first = by["mamanet_compact"][seeds[0]]["_scores"]
    labels = np.asarray(first["label"])
    unit = units(task, labels, first["slice_index"], "clusters" if scheme == "clusters and seeds" else scheme)
    strata = [np.unique(unit[labels == 0]), np.unique(unit[labels == 1])]
    if task == "brain" and scheme != "slices":  # a source slice holds a normal and two anomalous items
        strata = [np.unique(unit)]
    rng = np.random.default_rng(seed)
    weights, picks = [], []
    for _ in range(resamples):
        counts: dict[int, int] = {}
        for stratum in strata:
            for u in rng.choice(stratum, size=len(stratum), replace=True):
                counts[int(u)] = counts.get(int(u), 0) + 1
        weights.append([counts.get(int(u), 0) for u in unit])
        chosen = list(rng.choice(seeds, size=len(seeds), replace=True)) if scheme == "clusters and seeds" else seeds
        picks.append([seeds.index(s) for s in chosen])
    w, items = np.asarray(weights, dtype=float), np.arange(len(labels))
    table = {m: np.stack([weighted_auroc(np.asarray(by[m][s]["_scores"]["score"]), labels == 1, items, w) for s in seeds]) for m in MODELS}
    return _differences(table, np.asarray(picks))


def _differences(table: dict[str, np.ndarray], picks: np.ndarray) -> dict[str, np.ndarray]:
    """Per baseline, MAMA Net's seed mean minus the baseline's in each resample: ``table`` holds
    each model's AUROCs (seeds x resamples), ``picks`` the seeds each resample averages (resamples x
    seeds, indices; every seed once where the seeds are not resampled)."""
    mean = {m: np.take_along_axis(t.T, picks, axis=1).mean(axis=1) for m, t in table.items()}
    return {m: mean["mamanet_compact"] - mean[m] for m in MODELS[1:]}


def summary(rows: list[dict], settings: dict) -> str:
    tasks = [t for t in TASK_NAME if any(r["task"] == t for r in rows)]
    lines = [
        "# How much of the image-score differences is the sampling of the test slices?",
        "",
        f"Written by `python benchmarks/sampling_noise.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; one network per model and seed, trained as `benchmarks/accuracy.py` does, its "
        f"per-slice test scores kept; {settings['resamples']} resamples of the test (the script's docstring: *slices*, "
        "*clusters* = nodules / source slices, *clusters and seeds*), shared by every model. Difference = MAMA Net's "
        "test image AUROC (default score, mean over seeds) minus the baseline's; 95 % percentile interval; share of "
        "resamples above 0. Predictions and what they decide, written before the run: `sampling_noise_prediction.txt`. "
        "Rows: `" + Path(settings["output"]).name + "`.",
    ]
    for task in tasks:
        mine = [r for r in rows if r["task"] == task]
        first = next(r for r in mine if "_scores" in r)["_scores"]
        labels = np.asarray(first["label"])
        n_units = {s: len(np.unique(units(task, labels, first["slice_index"], s)[labels == 1])) for s in ("slices", "clusters")}
        means = {m: np.mean([r["auroc_percentile"] for r in mine if r["network"] == m]) for m in MODELS}
        lines += ["", f"## {TASK_NAME[task]}", "",
                  f"Test: {int((labels == 0).sum())} normal and {int((labels == 1).sum())} anomalous items; anomalous units: "
                  f"{n_units['slices']} slices, {n_units['clusters']} independent ({'nodules' if task == 'lidc' else 'source slices'}). "
                  "Seed-mean test image AUROC: " + ", ".join(f"{NAMES.get(m, m)} {means[m]:.3f}" for m in MODELS) + ".", "",
                  "| MAMA Net minus | resampled | difference | 95 % interval | share above 0 |",
                  "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for scheme in SCHEMES:
            diffs = resampled_differences(rows, task, scheme, settings["resamples"])
            for m, d in diffs.items():
                lines.append(_interval_line(m, scheme, means["mamanet_compact"] - means[m], d))
        if task == "lidc":
            lines += _per_nodule_table(mine)
        if all("pixel_resamples" in r for r in mine):
            lines += _pixel_table(mine)
    return "\n".join(lines) + "\n"


def _per_nodule_table(rows: list[dict]) -> list[str]:
    """Image AUROC of each nodule's slices against every normal test slice, mean ± sd over seeds.
    Added after the runs, not among the predictions."""
    from sklearn.metrics import roc_auc_score

    first = rows[0]["_scores"]
    labels, index = np.asarray(first["label"]), np.asarray(first["slice_index"])
    unit = units("lidc", labels, index, "clusters")
    nodules = sorted(set(unit[labels == 1].tolist()), reverse=True)  # -1000 (the first nodule) first
    names = {u: "slices " + "-".join(str(i) for i in sorted({int(index[unit == u].min()), int(index[unit == u].max())})) for u in nodules}
    lines = ["", "Each nodule's slices against all normal test slices (image AUROC, default score, mean ± sd over seeds; "
             "added after the runs, not predicted):", "", "| model | " + " | ".join(names[u] for u in nodules) + " |",
             "| --- |" + " --- |" * len(nodules)]  # fmt: skip
    for m in MODELS:
        cells = []
        for u in nodules:
            keep = (labels == 0) | (unit == u)
            cells.append(rows_file.mean_sd([roc_auc_score(labels[keep], np.asarray(r["_scores"]["score"])[keep]) for r in rows if r["network"] == m]))
        lines.append(f"| {NAMES.get(m, m)} | " + " | ".join(cells) + " |")
    return lines


def _interval_line(model: str, scheme: str, difference: float, resampled: np.ndarray) -> str:
    lo, hi = np.percentile(resampled, [2.5, 97.5])
    return f"| {NAMES.get(model, model)} | {scheme} | {difference:+.3f} | {lo:+.3f} to {hi:+.3f} | {np.mean(resampled > 0):.2f} |"


def _pixel_table(rows: list[dict]) -> list[str]:
    """The pixel AUROC's table: MAMA Net minus each baseline, seed means, under the stored
    resamples of the anomalous slices (by slice, by unit, by unit with the seeds resampled too)."""
    by = {m: sorted((r for r in rows if r["network"] == m), key=lambda r: r["seed"]) for m in MODELS}
    exact = {m: np.mean([r["pixel_exact"] for r in group]) for m, group in by.items()}
    product = {m: np.mean([r["pixel_auroc"] for r in group]) for m, group in by.items()}
    lines = ["", "Pixel AUROC (the anomalous slices' lesion pixels against their other body pixels, pooled), seed means "
             "recomputed from the maps: " + ", ".join(f"{NAMES.get(m, m)} {exact[m]:.3f} (the product's {product[m]:.3f})" for m in MODELS)
             + f"; {len(by['mamanet_compact'][0]['pixel_resamples']['slices'])} resamples of the anomalous slices.", "",
             "| MAMA Net minus | resampled | pixel AUROC difference | 95 % interval | share above 0 |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    rng = np.random.default_rng(1)
    n_seeds = len(by["mamanet_compact"])
    for scheme in SCHEMES:
        key = "clusters" if scheme == "clusters and seeds" else scheme
        table = {m: np.array([r["pixel_resamples"][key] for r in group]) for m, group in by.items()}  # seeds x resamples
        shape = (table["mamanet_compact"].shape[1], n_seeds)
        picks = rng.integers(0, n_seeds, size=shape) if scheme == "clusters and seeds" else np.broadcast_to(np.arange(n_seeds), shape)
        for m, d in _differences(table, picks).items():
            lines.append(_interval_line(m, scheme, exact["mamanet_compact"] - exact[m], d))
    return lines


def _resamples_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help=f"bootstrap resamples of the test (default {RESAMPLES})")


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, _jobs, list(MODELS), _resamples_argument)


if __name__ == "__main__":
    raise SystemExit(main())
