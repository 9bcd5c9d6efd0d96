"""Which SIMULATED validation lesions rank the models as the real test does?
(``docs/accuracy/validation_lesions.md``; predicted before the run in
``docs/accuracy/validation_lesions_prediction.txt``)

The product validates on copies of held-out normal slices with one SIMULATED lesion each
(:func:`~mama_monai.data.case_slices.simulated_anomalies`: another tissue's intensity, anywhere in
the foreground, bright and dark alternating). On the demo's LIDC split that validation ranks
MAMA Net > MemAE > autoencoder while the REAL nodules rank MemAE > MAMA Net > autoencoder
(``docs/accuracy.md``), so a model picked by validation is not the one the test prefers. Each
design here is a different family of validation lesions, fixed from anatomy and physics before
the run, never from the test slices:

- ``product``: the product's default (``"tissue"``, anywhere above 0.05, both signs);
- ``bright``: the same, bright lesions only (is it the dark half that misleads?);
- ``nodule`` (LIDC): a solid nodule in aerated lung, in the ``ct_lung`` window (HU -1000..400 ->
  0..1): centres at HU -930..-500 (0.05-0.357) inside a hole of the tissue above HU -500 (the
  lungs inside the chest wall and mediastinum), intensity of solid soft tissue HU -100..100
  (0.643-0.786), bright; the product's radius (2-6 % of the width);
- ``scale``: DESIGN.md §7's lesions (+-30-50 % of the local intensity), the product's radius and
  foreground, both signs;
- ``test kind`` (brain, a reference, not a candidate): the brain test's own generator
  (``accuracy._brain_test``: +-30-50 %, radius 4-12 % of the width, centres above 0.3) with other
  seeds: how well can validation rank at best, when its lesions are of the test's kind?

Every (task, network, seed) is trained once by ``benchmarks/accuracy.py``'s ``run_one`` (the
product's path); the kept network then scores its held-out normal slices and, per design,
``--draws`` independent draws of lesioned copies of them (seeds 1000 + d, the ``auto`` copies
per slice): the validation AUROC of a design is the mean over its draws.

    python benchmarks/validation_lesions.py --output docs/accuracy/validation_lesions.json   # ~25 min on 2 CPU cores
    python benchmarks/validation_lesions.py --output docs/accuracy/validation_lesions.json --report-only
"""

from __future__ import annotations

import argparse
import math
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

DRAWS = 4
TASK_NAME = {"lidc": "LIDC (REAL nodules)", "brain": "brain T1 (SIMULATED lesions)"}

#: task -> design -> keyword arguments of ``simulated_anomalies`` (the module docstring says why)
DESIGNS: dict[str, dict[str, dict[str, Any]]] = {
    "lidc": {
        "product": {},
        "bright": {"sign": "bright"},
        "nodule": {"centres": (0.05, 0.357), "enclosed": True, "target": (0.643, 0.786), "sign": "bright"},
        "scale": {"mode": "scale"},
    },
    "brain": {
        "product": {},
        "bright": {"sign": "bright"},
        "scale": {"mode": "scale"},
        "test kind": {"mode": "scale", "radius_fraction": (0.04, 0.12), "centres": (0.3, math.inf)},
    },
}
#: designs that are references, not candidates for the product
REFERENCES = ("test kind",)


def network_values(network, val_items: Sequence[dict], scoring: dict[str, Any], device, job: dict[str, Any], test: Sequence[dict] = ()) -> dict[str, Any]:
    """``accuracy.run_one``'s ``network_scores`` hook (``test`` unused): per design of the job's task, the validation
    AUROC of each draw (``vdraws_<design>``) and the pixel AUROC of the lesioned copies in the
    body, pooled over a draw's copies (``vpixel_<design>``, one per draw)."""
    import torch
    from sklearn.metrics import roc_auc_score

    from mama_monai.data.case_slices import simulated_anomalies
    from mama_monai.engines import AnomalyMap, anomaly_map_args, score_items
    from mama_monai.evaluation import pixel_auroc
    from mama_monai.workflows.splits import lesion_copies

    amap = AnomalyMap(2, **anomaly_map_args(scoring))
    normals = [it for it in val_items if it["label"] == 0]
    normal_scores = score_items(network, amap, normals, device)["score"].tolist()
    copies = lesion_copies("auto", len(normals))
    row: dict[str, Any] = {"val_copies": copies}
    for design, kwargs in DESIGNS[job["task"]].items():
        images, pixels = [], []
        for d in range(job.get("draws", DRAWS)):
            lesioned = simulated_anomalies(normals, seed=1000 + d, copies=copies, **kwargs)
            out = score_items(network, amap, lesioned, device)
            labels = [0] * len(normals) + [1] * len(lesioned)
            images.append(float(roc_auc_score(labels, normal_scores + out["score"].tolist())))
            body = amap.foreground(torch.as_tensor(out["image"])).numpy()[:, 0] > 0
            masks = np.stack([np.asarray(it["mask"])[0] > 0 for it in lesioned])
            pixels.append(float(pixel_auroc(out["map"][:, 0], masks, body)))
        row[f"vdraws_{design}"] = images
        row[f"vpixel_{design}"] = pixels
    return row


def _jobs(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    return [dict(j, network_scores=["validation_lesions"], draws=args.draws) for j in rows_file.scored_jobs(args)]


# ----------------------------------------------------------------------------- the page
def _val(row: dict, design: str) -> float:
    return float(np.mean(row[f"vdraws_{design}"]))


def _order(means: dict[str, float]) -> str:
    return " > ".join(NAMES.get(n, n) for n in sorted(means, key=means.get, reverse=True))


def summary(rows: list[dict], settings: dict) -> str:
    from scipy.stats import spearmanr

    tasks = [t for t in DESIGNS if any(r["task"] == t for r in rows)]
    models = [m for m in MODELS if any(r["network"] == m for r in rows)]
    lines = [
        "# Validation lesions: which SIMULATED lesions rank the models as the test does?",
        "",
        f"Written by `python benchmarks/validation_lesions.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; one network per model and seed, trained as `benchmarks/accuracy.py` does (the "
        "product's path); each kept network scores its held-out normal slices and, per design, "
        f"{settings['draws']} draws of SIMULATED-lesion copies of them (the `auto` copies per slice); a design's "
        "validation AUROC is the mean over its draws. The designs are the script's docstring's, fixed before the run "
        "from anatomy and physics (`validation_lesions_prediction.txt`, with the decision rule). "
        "Test = the benchmark's test image AUROC (default score). Rows: `" + Path(settings["output"]).name + "`.",
    ]
    for task in tasks:
        mine = [r for r in rows if r["task"] == task]
        designs = list(DESIGNS[task])
        test_means = {m: float(np.mean([r["auroc_percentile"] for r in mine if r["network"] == m])) for m in models}
        lines += ["", f"## {TASK_NAME[task]}", "",
                  "Validation image AUROC per design, mean ± sd over seeds (each seed's value the mean over its draws); "
                  "the test's last.", "",
                  "| model | " + " | ".join(designs) + " | test image AUROC |",
                  "| --- |" + " --- |" * (len(designs) + 1)]  # fmt: skip
        for m in models:
            group = [r for r in mine if r["network"] == m]
            cells = [rows_file.mean_sd([_val(r, d) for r in group]) for d in designs]
            lines.append(f"| {NAMES.get(m, m)} | " + " | ".join(cells) + f" | {rows_file.mean_sd([r['auroc_percentile'] for r in group])} |")
        lines += ["", "Does a design rank as the test does? The models' order by their mean; Spearman's rho between the "
                  f"validation AUROC and the test image AUROC over all {len(mine)} networks (p from scipy's `spearmanr`); "
                  "MAMA Net minus MemAE, paired over seeds, on validation beside the test's.", "",
                  "| design | models' order on validation | same order as the test | rho over networks | MAMA Net minus MemAE: validation / test |",
                  "| --- | --- | --- | --- | --- |"]  # fmt: skip
        test_order = _order(test_means)
        for d in designs:
            means = {m: float(np.mean([_val(r, d) for r in mine if r["network"] == m])) for m in models}
            rho = spearmanr([_val(r, d) for r in mine], [r["auroc_percentile"] for r in mine])
            lines.append(f"| {d}{' (reference)' if d in REFERENCES else ''} | {_order(means)} | {'yes' if _order(means) == test_order else 'no'} | "
                         f"{rho[0]:+.2f} (p = {rho[1]:.2g}) | {_difference(mine, d)} |")  # fmt: skip
        lines += [f"| test | {test_order} | – | – | – |", ""]
        lines += ["Pixel AUROC of the SIMULATED lesions in the body (validation, mean over draws and seeds) beside the "
                  "test's pixel AUROC:", "", "| model | " + " | ".join(designs) + " | test pixel AUROC |",
                  "| --- |" + " --- |" * (len(designs) + 1)]  # fmt: skip
        for m in models:
            group = [r for r in mine if r["network"] == m]
            cells = [f"{np.mean([np.mean(r['vpixel_' + d]) for r in group]):.3f}" for d in designs]
            lines.append(f"| {NAMES.get(m, m)} | " + " | ".join(cells) + f" | {np.mean([r['pixel_auroc'] for r in group]):.3f} |")
    return "\n".join(lines) + "\n"


def _difference(rows: list[dict], design: str) -> str:
    """MAMA Net minus MemAE, paired by seed, on the design's validation and on the test."""
    by = {n: {r["seed"]: r for r in rows if r["network"] == n} for n in ("mamanet_compact", "memae")}
    seeds = sorted(set(by["mamanet_compact"]) & set(by["memae"]))
    if not seeds:
        return "–"
    val = np.mean([_val(by["mamanet_compact"][s], design) - _val(by["memae"][s], design) for s in seeds])
    test = np.mean([by["mamanet_compact"][s]["auroc_percentile"] - by["memae"][s]["auroc_percentile"] for s in seeds])
    return f"{val:+.3f} / {test:+.3f}"


def _draws_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--draws", type=int, default=DRAWS, help=f"independent lesion draws per design and network (default {DRAWS})")


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, _jobs, list(MODELS), _draws_argument)


if __name__ == "__main__":
    raise SystemExit(main())
