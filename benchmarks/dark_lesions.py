"""Why dark SIMULATED brain lesions are at chance in ``docs/accuracy.md``: where the signal is lost.

Trains models exactly as ``benchmarks/accuracy.py`` does (its brain task: the embedded MNI152 T1,
the ``mri_t1`` preset, ``train_model`` with checkpoint selection on held-out training slices) and
scores the same test set (11 held-out slices, one bright and one dark SIMULATED copy of each), then
measures, bright and dark apart:

- the data: the change actually inserted (lesioned minus clean preprocessed slice, inside the
  lesion mask) and the fraction of lesion pixels inside the scoring foreground;
- the reconstruction: the fraction of the inserted change it reproduces
  (``mean(x_hat_lesioned - x_hat_clean) / mean(x_lesioned - x_clean)`` in the mask), the squared
  error inside the lesion, at the same pixels of the clean slice and outside the lesion;
- why bright and dark differ: a ``"scale"`` lesion multiplies the local anatomy by ``1 + c w``,
  so a model that reproduced it exactly would still err ``(1 + c w)`` times its error on the clean
  slice (``sq_error_if_reproduced``): more inside a bright lesion, less inside a dark one;
- the scoring path: image AUROC (default p99 score) and pixel AUROC (inside the foreground), once
  with the model's own reconstruction and once with a *known answer*: the reconstruction of the
  slice's own CLEAN copy, i.e. a reconstruction that does not reproduce the lesion. If the
  foreground, the smoothing, the percentile or the lesions themselves lost dark lesions, this
  second AUROC would be low too.

Nothing is selected here; the test slices are only measured.

    python benchmarks/dark_lesions.py                                   # MAMA Net, seed 0, ~5 min
    python benchmarks/dark_lesions.py --networks mamanet_compact autoencoder memae --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train_and_score(network: str, size: int, iterations: int, seed: int, overrides: dict | None = None) -> dict[str, Any]:
    """One brain run as ``benchmarks.accuracy.run_one`` trains it; the test inputs and reconstructions back."""
    import torch

    from benchmarks.accuracy import _brain_test, _task_overrides
    from mama_monai.engines import AnomalyMap, anomaly_map_args, score_items
    from mama_monai.workflows.config import workflow_config
    from mama_monai.workflows.distributed import init_distributed
    from mama_monai.workflows.splits import prepare_splits
    from mama_monai.workflows.training import train_model

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    over = dict(_task_overrides("brain", size, iterations, 50), seed=seed, **(overrides or {}))
    parser = workflow_config(network, overrides=over)
    splits = prepare_splits(parser)
    test = _brain_test(splits["test"], seed)
    ctx = init_distributed("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        result = train_model(parser, splits["train"], splits["val"], tmp, ctx, progress=False)
    scoring = anomaly_map_args(parser.get_parsed_content("scoring"))
    out = score_items(result.network, AnomalyMap(2, **scoring), test, ctx.device)
    return {
        "image": out["image"][:, 0], "pred": out["pred"][:, 0], "scoring": scoring,
        "mask": np.stack([it["mask"][0].numpy() > 0 if "mask" in it else np.zeros(it["image"].shape[1:], bool) for it in test]),
        "lesion": np.array([it["lesion"] for it in test]), "case": [it["case_id"] for it in test],
    }  # fmt: skip


def _clean_index(run: dict[str, Any]) -> np.ndarray:
    """For every test slice, the index of its clean copy (itself for the clean ones)."""
    clean = {c: i for i, (c, kind) in enumerate(zip(run["case"], run["lesion"])) if kind == "none"}
    return np.array([i if kind == "none" else clean[c.rsplit("_", 1)[0]] for i, (c, kind) in enumerate(zip(run["case"], run["lesion"]))])


def _scaled_clean_error(lesioned: np.ndarray, clean: np.ndarray, clean_recon: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error inside ``mask`` of a reconstruction ``(1 + c w) * clean_recon``: the lesion reproduced exactly."""
    inside = mask & (clean > 0.05)  # 1 + c w = lesioned / clean, defined where the clean slice is not air
    return float(np.mean((lesioned[inside] / clean[inside] * (clean - clean_recon)[inside]) ** 2))


def measure(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The numbers of the module docstring, for ``bright`` and ``dark``."""
    import torch
    from sklearn.metrics import roc_auc_score

    from mama_monai.engines import AnomalyMap

    x, xh, mask, kind = run["image"], run["pred"], run["mask"], run["lesion"]
    ci = _clean_index(run)
    scorer = AnomalyMap(2, **run["scoring"])
    tx = torch.as_tensor(x)[:, None]
    fg = scorer.foreground(tx)[:, 0].numpy() > 0
    err = (x - xh) ** 2
    recons = {"model": xh, "known_answer": xh[ci]}  # the clean slice's reconstruction: the lesion not reproduced
    maps = {k: scorer.map(tx, torch.as_tensor(r)[:, None]) for k, r in recons.items()}
    scores = {k: scorer.score(m).numpy() for k, m in maps.items()}
    result = {}
    for name in ("bright", "dark"):
        idx = np.where(kind == name)[0]
        keep = (kind == "none") | (kind == name)
        inserted = np.concatenate([(x[i] - x[ci[i]])[mask[i]] for i in idx])
        row = {
            "inserted_change": float(inserted.mean()),
            "inserted_relative": float(inserted.sum() / np.concatenate([x[ci[i]][mask[i]] for i in idx]).sum()),
            "lesion_fraction_in_foreground": float(np.mean(np.concatenate([fg[i][mask[i]] for i in idx]))),
            "reproduced_fraction": float(np.concatenate([(xh[i] - xh[ci[i]])[mask[i]] for i in idx]).mean() / inserted.mean()),
            "sq_error_in_lesion": float(np.mean([err[i][mask[i]].mean() for i in idx])),
            "sq_error_same_pixels_clean": float(np.mean([err[ci[i]][mask[i]].mean() for i in idx])),
            "sq_error_outside_lesion": float(np.mean([err[i][fg[i] & ~mask[i]].mean() for i in idx])),
            # the squared error a model would make that reproduced the lesion exactly as inserted,
            # (1 + c w) times its clean reconstruction: the clean slice's residual scaled by 1 + c w
            "sq_error_if_reproduced": float(np.mean([_scaled_clean_error(x[i], x[ci[i]], xh[ci[i]], mask[i]) for i in idx])),
        }
        for k, m in maps.items():
            m = m[:, 0].numpy()
            row[f"image_auroc_{k}"] = float(roc_auc_score((kind[keep] != "none").astype(int), scores[k][keep]))
            row[f"pixel_auroc_{k}"] = float(roc_auc_score(np.concatenate([mask[i][fg[i]] for i in idx]), np.concatenate([m[i][fg[i]] for i in idx])))
        result[name] = row
    return result


def figure(run: dict[str, Any], path: Path, title: str, rows: tuple[int, ...] = (3, 6, 10)) -> None:
    """Dark test slices (``rows``: indices among the dark ones): input, clean slice, reconstruction,
    signed residual, the product's map, and the map against the clean slice's reconstruction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from mama_monai.engines import AnomalyMap

    x, xh, mask = run["image"], run["pred"], run["mask"]
    ci = _clean_index(run)
    scorer = AnomalyMap(2, **run["scoring"])
    dark = np.where(run["lesion"] == "dark")[0][list(rows)]
    tx = torch.as_tensor(x[dark])[:, None]
    own = scorer.map(tx, torch.as_tensor(xh[dark])[:, None])[:, 0].numpy()
    known = scorer.map(tx, torch.as_tensor(xh[ci[dark]])[:, None])[:, 0].numpy()
    vmax = float(np.percentile(known, 99.9))
    cols = [("input, dark lesion (cyan)", "gray", 0, 1.2), ("clean slice", "gray", 0, 1.2), ("reconstruction", "gray", 0, 1.2),
            ("input - reconstruction", "bwr", -0.25, 0.25), ("anomaly map (product),\nsame colour scale", "hot", 0, vmax),
            ("map if the lesion were\nnot reconstructed", "hot", 0, vmax)]  # fmt: skip
    fig, axes = plt.subplots(len(dark), len(cols), figsize=(2.1 * len(cols), 2.2 * len(dark)))
    for r, i in enumerate(dark):
        panels = [x[i], x[ci[i]], xh[i], x[i] - xh[i], own[r], known[r]]
        for c, (img, (name, cmap, lo, hi)) in enumerate(zip(panels, cols)):
            ax = axes[r, c]
            ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
            ax.contour(mask[i], [0.5], colors="c", linewidths=0.7)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=["mamanet_compact"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--output", default=str(ROOT / "docs" / "accuracy"), help="folder for dark_lesions.json / .png")
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for network in args.networks:
        for seed in args.seeds:
            run = train_and_score(network, args.size, args.iterations, seed)
            rows.append({"network": network, "seed": seed, **measure(run)})
            print(json.dumps(rows[-1]), flush=True)
            if network == args.networks[0] and seed == args.seeds[0]:
                figure(run, out / "dark_lesions.png", f"{network}, seed {seed}, {args.size} x {args.size}, {args.iterations} "
                       "iterations: DARK SIMULATED lesions (cyan) on held-out MNI152 slices")  # fmt: skip
    (out / "dark_lesions.json").write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
