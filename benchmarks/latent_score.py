"""The memory's own novelty signal: does the distance between a slice's code and what the memory
reads for it score anomalies where the reconstruction does not?
(``docs/accuracy/latent_score.md``; predicted before the run in
``docs/accuracy/latent_score_prediction.txt``)

MAMA Net (compact) decodes from the memory's answer *and* from the encoder's code ``z`` itself
(the semantic basis, ``use_semantic_basis: true``): whatever the memory cannot represent can still
reach the decoder through ``z``, so an anomaly may be reconstructed well and its squared error
stay low. Its slice score trails MemAE's on the demo's tests while its maps lead
(``docs/accuracy.md``). The distance between ``z`` and the memory's readout ``m`` at each latent
position is what the memory "did not recognise", whatever the decoder then did with it:

- ``latent``: ``mean_c (z - m)^2`` per latent position (8 x 8 at 64 x 64, a cell of 8 x 8 pixels),
  upsampled bilinearly to the input grid, set to 0 outside the product's foreground, reduced as
  the product reduces (99th percentile in the body);
- ``combined``: the product's score plus the latent score, each first standardised by the
  held-out NORMAL validation slices of the same network (``(s - mean) / sd``): one sum, no weight
  fitted to any label.

MemAE (which decodes from ``m`` alone, so its reconstruction already carries the distance) is
scored the same way as a reference; the autoencoder has no memory. Every (task, network, seed) is
trained once by ``benchmarks/accuracy.py``'s ``run_one`` (the product's path); the kept network
then scores its validation set (held-out normals and their SIMULATED-lesion copies) and the test.

    python benchmarks/latent_score.py --output docs/accuracy/latent_score.json   # ~12 min on 2 CPU cores
    python benchmarks/latent_score.py --output docs/accuracy/latent_score.json --report-only
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

from benchmarks import rows_file, settings_sweep  # noqa: E402
from benchmarks.accuracy import lesion_pixel_auroc  # noqa: E402
from benchmarks.accuracy_report import NAMES  # noqa: E402

MODELS = ("mamanet_compact", "memae")
TASK_NAME = {"lidc": "LIDC (REAL nodules)", "brain": "brain T1 (SIMULATED lesions)"}
SCORES = {"percentile": "the product's (p99 of the squared error in the body)", "latent": "latent: (z - m)^2, p99 in the body",
          "combined": "combined: product + latent, each standardised by the held-out normals"}


def latent_maps(network, items: Sequence[dict], batch_size: int = 16):
    """``(B, 1, H, W)``: ``mean_c (z - m)^2`` of each item's code and the memory's readout,
    upsampled bilinearly to the item's grid."""
    import torch
    import torch.nn.functional as F

    network.eval()
    maps = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            x = torch.stack([torch.as_tensor(it["image"]) for it in items[start : start + batch_size]]).float()
            out = network.reconstruct(x)
            distance = ((out.latent.float() - out.memory.output.float()) ** 2).mean(dim=1, keepdim=True)
            maps.append(F.interpolate(distance, size=x.shape[-2:], mode="bilinear", align_corners=False))
    return torch.cat(maps)


def _scores(network, amap, items: Sequence[dict], device) -> dict[str, np.ndarray]:
    """The product's scores and the latent ones of ``items``, with the latent maps in the body."""
    import torch

    from mama_monai.engines import score_items

    out = score_items(network, amap, items, device)
    body = amap.foreground(torch.as_tensor(out["image"]))
    latent = latent_maps(network, items) * body
    return {"percentile": out["score"], "latent": amap.score(latent).numpy(), "latent_map": latent.numpy()[:, 0],
            "label": out["label"].astype(int), "body": body.numpy()[:, 0] > 0}


def _standardised(values: np.ndarray, normals: np.ndarray) -> np.ndarray:
    return (values - normals.mean()) / max(float(normals.std(ddof=1)), 1e-12)


def network_values(network, val_items: Sequence[dict], scoring: dict[str, Any], device, job: dict[str, Any], test: Sequence[dict] = ()) -> dict[str, Any]:
    """``accuracy.run_one``'s ``network_scores`` hook: validation and test AUROC of the latent and
    combined scores (``val_auroc_<score>``, ``auroc_<score>``), and the latent map's pixel AUROC on
    the test (``pixel_auroc_latent``)."""
    from sklearn.metrics import roc_auc_score

    from mama_monai.engines import AnomalyMap, anomaly_map_args

    amap = AnomalyMap(2, **anomaly_map_args(scoring))
    val, tst = _scores(network, amap, val_items, device), _scores(network, amap, test, device)
    normal = val["label"] == 0
    row: dict[str, Any] = {}
    for name, part in (("val_", val), ("", tst)):
        part["combined"] = sum(_standardised(part[k], val[k][normal]) for k in ("percentile", "latent"))
        for score in ("latent", "combined"):
            row[f"{name}auroc_{score}"] = float(roc_auc_score(part["label"], part[score]))
    row["pixel_auroc_latent"] = lesion_pixel_auroc(tst["latent_map"], tst["body"], list(test))  # the product's pixels
    row["_latent_scores"] = {k: tst[k].tolist() for k in ("percentile", "latent", "label")}
    return row


def _jobs(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    return [dict(j, network_scores=["latent_score"]) for j in rows_file.scored_jobs(args)]


# ----------------------------------------------------------------------------- the page
def summary(rows: list[dict], settings: dict) -> str:
    tasks = [t for t in TASK_NAME if any(r["task"] == t for r in rows)]
    models = [m for m in MODELS if any(r["network"] == m for r in rows)]
    lines = [
        "# The memory's novelty signal: the distance between a slice's code and the memory's readout",
        "",
        f"Written by `python benchmarks/latent_score.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; one network per model and seed, trained as `benchmarks/accuracy.py` does (the "
        "product's path). Each kept network scores its validation set (held-out normals and their SIMULATED-lesion "
        "copies) and the test with the product's score, the *latent* score (mean over channels of (z - m)^2 per latent "
        "position, upsampled to the input, p99 in the body) and the *combined* score (both standardised by the held-out "
        "normal validation slices, summed). Image AUROC, mean ± sd over seeds; differences from the product's score "
        "paired over seeds. The definitions are the script's docstring's; predictions and the decision rule, written "
        "before the run: `latent_score_prediction.txt`. Rows: `" + Path(settings["output"]).name + "`.",
    ]
    for task in tasks:
        mine = [r for r in rows if r["task"] == task]
        lines += ["", f"## {TASK_NAME[task]}", "",
                  "| model | score | validation AUROC | minus product (paired) | test image AUROC | minus product (paired) |",
                  "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for m in models:
            group = sorted((r for r in mine if r["network"] == m), key=lambda r: r["seed"])
            for score, label in SCORES.items():
                cells = rows_file.against_base(group, f"auroc_{score}", "auroc_percentile")
                lines.append(f"| {NAMES.get(m, m)} | {label} | " + " | ".join(cells) + " |")
        lines += ["", "Test pixel AUROC (the anomalous slices' pixels in the body, as the product reports it): the product's map "
                  "beside the upsampled latent map.", "",
                  "| model | product's map | latent map |", "| --- | --- | --- |"]  # fmt: skip
        for m in models:
            group = [r for r in mine if r["network"] == m]
            lines.append(f"| {NAMES.get(m, m)} | {rows_file.mean_sd([r['pixel_auroc'] for r in group])} | "
                         f"{rows_file.mean_sd([r['pixel_auroc_latent'] for r in group])} |")  # fmt: skip
        lines += ["", "MAMA Net minus MemAE, paired over seeds (validation / test):", "", "| score | validation | test |", "| --- | --- | --- |"]
        for score, label in SCORES.items():
            lines.append(f"| {label} | {_between(mine, 'val_auroc_' + score)} | {_between(mine, 'auroc_' + score)} |")
    return "\n".join(lines) + "\n"


def _between(rows: list[dict], key: str) -> str:
    """MAMA Net minus MemAE on ``key``, paired by seed."""
    return settings_sweep.paired([r for r in rows if r["network"] == MODELS[0]], [r for r in rows if r["network"] == MODELS[1]], lambda r: r[key])


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, _jobs, list(MODELS))


if __name__ == "__main__":
    raise SystemExit(main())
