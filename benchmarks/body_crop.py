"""Framing: the demo's models on the LIDC test slices as built and as a scanner frames them
(``docs/accuracy/body_crop.md``).

The embedded CTs were cropped to the body when the demo data were built; a CT as the scanner
writes it has air around the body and a couch below it. This script trains each model the
product's way (``benchmarks/accuracy.py``'s LIDC task; the crop to the body is on and leaves the
demo CTs unchanged, so the networks are those of the benchmark) and scores the whole
LIDC-IDRI-0001 volume twice with ``score_cases``:

- *as built*: the demo file;
- *scanner FOV*: the same voxels placed in a square field of view of air (-1000 HU, 171 x 171
  voxels of 2.1 mm = 360 mm, LIDC-IDRI-0001's reconstruction diameter) with a couch-like band
  (0 HU, 3 voxels thick, the width of the field) 8 voxels below the body;

each with the model file as written (``crop_to_body: true``) and with a copy that does not crop
(``crop_to_body: false``, how every model scored before). The slice AUROC is over the test split's
slices (11 with real nodules, 28 matched normals), from the per-slice scores of ``scores.json``.

    python benchmarks/body_crop.py --output docs/accuracy/body_crop.json   # ~10 min on 2 CPU cores
    python benchmarks/body_crop.py --output docs/accuracy/body_crop.json --report-only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rows_file  # noqa: E402
from benchmarks.accuracy import MODELS, _task_overrides  # noqa: E402

FOV = 171  # voxels of 2.109 mm: 360 mm


def scanner_fov(source: Path, target: Path) -> Path:
    """``source`` (the demo CT) centred in a square field of air with a couch below the body."""
    import nibabel as nib

    img = nib.load(source)
    a = np.asarray(img.dataobj)
    w, h, _ = a.shape
    big = np.full((max(FOV, w), max(FOV, h + 12), a.shape[2]), -1000, dtype=a.dtype)
    ox, oy = (big.shape[0] - w) // 2, (big.shape[1] - h) // 2 - 6
    big[ox : ox + w, oy : oy + h] = a
    big[:, oy + h + 8 : oy + h + 11] = 0  # the couch: posterior (LPS: +y) of the body, apart from it
    affine = img.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.array([ox, oy, 0])
    nib.save(nib.Nifti1Image(big, affine), target)
    return target


def run_one(network: str, seed: int, size: int, iterations: int) -> dict:
    import torch
    from sklearn.metrics import roc_auc_score

    from mama_monai.data.demo import demo_slice_table, load_demo_ct
    from mama_monai.engines.checkpoint import read_checkpoint, save_model, load_model
    from mama_monai.workflows.config import workflow_config
    from mama_monai.workflows.distributed import init_distributed
    from mama_monai.workflows.scoring import score_cases
    from mama_monai.workflows.splits import prepare_splits
    from mama_monai.workflows.training import train_model

    torch.set_num_threads(1)
    rows = [r for r in demo_slice_table("lidc") if r["split"] in ("anomalous", "test_normal")]
    index = np.array([r["slice_index"] for r in rows])
    labels = np.array([int(r["split"] == "anomalous") for r in rows])
    row: dict = {"network": network, "seed": seed}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parser = workflow_config(network, overrides=dict(_task_overrides("lidc", size, iterations, min(50, iterations)), seed=seed))
        splits = prepare_splits(parser)
        result = train_model(parser, splits["train"], splits["val"], tmp / "run", init_distributed("cpu"), progress=False)
        payload = read_checkpoint(result.model_path)
        config = dict(payload["config"], preprocessing=dict(payload["config"]["preprocessing"], crop_to_body=False))
        uncropped = save_model(tmp / "no_crop.pt", load_model(result.model_path)[0], config, payload["threshold"], payload["metrics"])
        volumes = {"as_built": load_demo_ct()["image"], "scanner_fov": scanner_fov(load_demo_ct()["image"], tmp / "fov.nii.gz")}
        for crop, model in (("crop", result.model_path), ("no_crop", uncropped)):
            report = score_cases(model, list(volumes.values()), tmp / f"scores_{crop}", dicom_output=False)
            for name, case in zip(volumes, report["cases"]):
                scores = np.asarray(case["slice_scores"])[index]
                row[f"{name}_{crop}"] = float(roc_auc_score(labels, scores))
    return row


def summary(rows: list[dict], settings: dict) -> str:
    from mama_monai.evaluation import paired_t_test

    keys = ("as_built_crop", "as_built_no_crop", "scanner_fov_crop", "scanner_fov_no_crop")
    lines = [
        "# Framing: the LIDC test slices as built and in a scanner's field of view",
        "",
        f"Written by `python benchmarks/body_crop.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; one network per model and seed, trained as `benchmarks/accuracy.py` trains; slice "
        "AUROC (default score) of the 11 nodule slices against the 28 matched normals. *Scanner FOV*: the demo CT's "
        "voxels in a 360 mm square field of air with a couch-like band below the body (SYNTHETIC framing of REAL "
        "voxels). *crop*: the model file as written (`crop_to_body: true`, the CT presets crop to the body first, "
        "`mama_monai/data/body_crop.py`); *no crop*: the same network scored without the crop, as every model was "
        "before. Rows: `body_crop.json`.",
        "",
        "| model | as built: crop | as built: no crop | scanner FOV: crop | scanner FOV: no crop | scanner FOV: crop - no crop (paired t-test) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for network in MODELS:
        mine = [r for r in rows if r["network"] == network]
        if mine:
            cells = [f"{np.mean([r[k] for r in mine]):.3f} ± {np.std([r[k] for r in mine], ddof=1) if len(mine) > 1 else 0:.3f}" for k in keys]
            test = "–"  # a paired t-test needs two seeds
            if len(mine) > 1:
                t = paired_t_test([r["scanner_fov_crop"] for r in mine], [r["scanner_fov_no_crop"] for r in mine])
                test = f"{t.mean_difference:+.3f}, p = {t.p:.2g}"
            lines.append(f"| {network} | " + " | ".join(cells) + f" | {test} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rows_file.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.report_only:
        return rows_file.rewrite_report(args.output, summary)
    start, rows = time.time(), []
    for network in MODELS:
        for seed in args.seeds:
            rows.append(run_one(network, seed, args.size, args.iterations))
            print(json.dumps(rows[-1]), flush=True)
    return rows_file.save(args, rows, start, summary)


if __name__ == "__main__":
    raise SystemExit(main())
