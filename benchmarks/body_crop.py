"""Framing: the demo's models on their test slices as built and as a scanner frames them
(``docs/accuracy/body_crop.md``, ``docs/accuracy/body_crop_brain.md``).

The embedded CTs were cropped to the body, and the brain T1 to the head, when the demo data were
built; a scan as the scanner writes it has air around the body (and a couch below a CT). This
script trains each model the product's way (``benchmarks/accuracy.py``'s task; the crop to the
body is on and leaves the demo files unchanged, so the networks are those of the benchmark) and
scores the demo volumes twice with ``score_cases``:

- *as built*: the demo files;
- *scanner FOV*: the same voxels placed in a square field of view. ``--task lidc``: air (-1000 HU,
  171 x 171 voxels of 2.1 mm = 360 mm, LIDC-IDRI-0001's reconstruction diameter) with a couch-like
  band (0 HU, 3 voxels thick, the width of the field) 8 voxels below the body. ``--task brain``:
  128 x 128 voxels of 2 mm = 256 mm (a head coil's usual field) of MR background noise (Rician,
  sigma 2 % of the volume's 99th percentile, seeded; the head's own voxels are kept, its zero
  background gets the noise);

each with the model file as written (``crop_to_body: true``) and with a copy that does not crop
(``crop_to_body: false``, how every model scored before). The slice AUROC is over the test
slices, from the per-slice scores of ``scores.json``: LIDC, the test split's 11 slices with real
nodules against its 28 matched normals; brain, the 11 test slices of the volume with SIMULATED
lesions against the same 11 slices of the lesion-free volume.

    python benchmarks/body_crop.py --output docs/accuracy/body_crop.json   # ~10 min on 2 CPU cores
    python benchmarks/body_crop.py --task brain --output docs/accuracy/body_crop_brain.json
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

FOV = {"lidc": 171, "brain": 128}  # voxels: 360 mm of 2.109 mm; 256 mm of 2 mm
NOISE = 0.02  # brain: sigma of the Rician background, as a share of the volume's 99th percentile


def scanner_fov(source: Path, target: Path, task: str = "lidc", noise: float = NOISE) -> Path:
    """``source`` centred in a square field of view: LIDC, air with a couch below the body; brain,
    Rician noise (sigma ``noise`` x the volume's 99th percentile, seed 0) around the head (module
    docstring)."""
    import nibabel as nib

    img = nib.load(source)
    a = np.asarray(img.dataobj)
    w, h, _ = a.shape
    fov = FOV[task]
    if task == "lidc":
        big = np.full((max(fov, w), max(fov, h + 12), a.shape[2]), -1000, dtype=a.dtype)
        ox, oy = (big.shape[0] - w) // 2, (big.shape[1] - h) // 2 - 6
        big[ox : ox + w, oy : oy + h] = a
        big[:, oy + h + 8 : oy + h + 11] = 0  # the couch: posterior (LPS: +y) of the body, apart from it
    else:
        rng, sigma = np.random.default_rng(0), noise * float(np.percentile(a, 99))
        shape = (max(fov, w), max(fov, h), a.shape[2])
        big = np.hypot(rng.normal(0, sigma, shape), rng.normal(0, sigma, shape)).astype(np.float32)
        ox, oy = (shape[0] - w) // 2, (shape[1] - h) // 2
        big[ox : ox + w, oy : oy + h] = np.where(a > 0, a, big[ox : ox + w, oy : oy + h])
    affine = img.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.array([ox, oy, 0])
    nib.save(nib.Nifti1Image(big, affine), target)
    return target


def uncropped_copy(model: Path, target: Path) -> Path:
    """A copy of the model file at ``target`` that does not crop (``crop_to_body: false``), as every
    model was scored before the crop."""
    from mama_monai.engines.checkpoint import load_model, read_checkpoint, save_model

    payload = read_checkpoint(model)
    config = dict(payload["config"], preprocessing=dict(payload["config"]["preprocessing"], crop_to_body=False))
    return save_model(target, load_model(model)[0], config, payload["threshold"], payload["metrics"])


def _test_slices(task: str) -> tuple[dict[str, Path], list[tuple[str, int, int]]]:
    """The task's demo volumes and its test slices as (volume, slice index, label)."""
    from mama_monai.data.demo import demo_slice_table, load_demo_brain, load_demo_ct

    if task == "lidc":
        rows = [r for r in demo_slice_table("lidc") if r["split"] in ("anomalous", "test_normal")]
        return {"ct": load_demo_ct()["image"]}, [("ct", r["slice_index"], int(r["split"] == "anomalous")) for r in rows]
    test = [r["slice_index"] for r in demo_slice_table("brain") if r["split"] == "test"]
    paths = load_demo_brain()
    volumes = {"normal": paths["image"], "lesions": paths["simulated_image"]}
    return volumes, [(v, i, int(v == "lesions")) for v in volumes for i in test]


def run_one(network: str, seed: int, size: int, iterations: int, task: str = "lidc") -> dict:
    import torch
    from sklearn.metrics import roc_auc_score

    from mama_monai.workflows.config import workflow_config
    from mama_monai.workflows.distributed import init_distributed
    from mama_monai.workflows.scoring import score_cases
    from mama_monai.workflows.splits import prepare_splits
    from mama_monai.workflows.training import train_model

    torch.set_num_threads(1)
    sources, slices = _test_slices(task)
    labels = [label for _, _, label in slices]
    row: dict = {"network": network, "seed": seed}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parser = workflow_config(network, overrides=dict(_task_overrides(task, size, iterations, min(50, iterations)), seed=seed))
        splits = prepare_splits(parser)
        result = train_model(parser, splits["train"], splits["val"], tmp / "run", init_distributed("cpu"), progress=False)
        uncropped = uncropped_copy(result.model_path, tmp / "no_crop.pt")
        framings = {
            "as_built": sources,
            "scanner_fov": {v: scanner_fov(path, tmp / f"fov_{v}.nii.gz", task) for v, path in sources.items()},
        }
        for crop, model in (("crop", result.model_path), ("no_crop", uncropped)):
            for name, volumes in framings.items():
                report = score_cases(model, list(volumes.values()), tmp / f"scores_{crop}_{name}", dicom_output=False)
                per_volume = {v: np.asarray(case["slice_scores"]) for v, case in zip(volumes, report["cases"])}
                scores = [per_volume[v][i] for v, i, _ in slices]
                row[f"{name}_{crop}"] = float(roc_auc_score(labels, scores))
    return row


def summary(rows: list[dict], settings: dict) -> str:
    from mama_monai.evaluation import paired_t_test

    keys = ("as_built_crop", "as_built_no_crop", "scanner_fov_crop", "scanner_fov_no_crop")
    task = settings.get("task", "lidc")
    if task == "lidc":
        note = ""
        title, what = "the LIDC test slices", (
            "slice AUROC (default score) of the 11 nodule slices against the 28 matched normals. *Scanner FOV*: the demo CT's "
            "voxels in a 360 mm square field of air with a couch-like band below the body (SYNTHETIC framing of REAL "
            "voxels). *crop*: the model file as written (`crop_to_body: true`, the CT presets crop to the body first, "
        )
    else:
        title, what = "the brain T1 test slices", (
            "slice AUROC (default score) of the 11 test slices with SIMULATED lesions against the same 11 slices without "
            f"them. *Scanner FOV*: the demo T1's head voxels in a 256 mm square field of Rician background noise (sigma "
            f"{NOISE:.0%} of the volume's 99th percentile; SYNTHETIC framing of REAL voxels). *crop*: the model file as "
            "written (`crop_to_body: true`, the MR presets crop to the head first, before their intensity scaling, "
        )
        note = (
            " *As built* is not `docs/accuracy.md`'s brain row: there each held-out slice gets one bright and one dark "
            "lesion of its own; here the demo's lesion volume (1-3 lesions per slice, either sign) is scored whole."
        )
    lines = [
        f"# Framing: {title} as built and in a scanner's field of view",
        "",
        f"Written by `python benchmarks/body_crop.py --task {task}` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; one network per model and seed, trained as `benchmarks/accuracy.py` trains; " + what +
        "`mama_monai/data/body_crop.py`); *no crop*: the same network scored without the crop, as every model was "
        f"before. Rows: `{Path(settings['output']).name}`." + note,
        "",
        "| model | as built: crop | as built: no crop | scanner FOV: crop | scanner FOV: no crop | scanner FOV: crop - no crop (paired t-test) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for network in MODELS:
        mine = [r for r in rows if r["network"] == network]
        if mine:
            cells = [rows_file.mean_sd([r[k] for r in mine]) for k in keys]
            test = "–"  # a paired t-test needs two seeds
            if len(mine) > 1:
                t = paired_t_test([r["scanner_fov_crop"] for r in mine], [r["scanner_fov_no_crop"] for r in mine])
                test = f"{t.mean_difference:+.3f}, p = {t.p:.2g}"
            lines.append(f"| {network} | " + " | ".join(cells) + f" | {test} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rows_file.add_arguments(parser)
    parser.add_argument("--task", choices=["lidc", "brain"], default="lidc")
    args = parser.parse_args(argv)
    if args.report_only:
        return rows_file.rewrite_report(args.output, summary)
    start, rows = time.time(), []
    for network in MODELS:
        for seed in args.seeds:
            rows.append(run_one(network, seed, args.size, args.iterations, args.task))
            print(json.dumps(rows[-1]), flush=True)
    return rows_file.save(args, rows, start, summary)


if __name__ == "__main__":
    raise SystemExit(main())
