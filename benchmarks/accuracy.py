"""Detection accuracy of the autoencoder, MemAE and MAMA Net side by side: ``docs/accuracy.md``.

One command runs every model through the product's own path (``workflow_config`` ->
``prepare_splits`` -> ``train_model`` -> ``evaluate_items``: validation, checkpoint selection and
threshold calibration exactly as ``mama-monai train`` does them) over several seeds, on:

- ``lidc``: the demo's fair LIDC-IDRI-0001 split (11 REAL nodule slices against 28 anatomically
  matched normal slices, DESIGN.md §7), lung window; trained on the normal slices of two patients
  (LIDC-IDRI-0001's slices >= 15 mm from any mark and a second, unlabelled chest CT);
- ``brain``: the embedded real brain T1 (MNI152) with SIMULATED lesions on its 11 held-out test
  slices, DESIGN.md §7's kind (blurred disks, radius 4-12 % of the width, +-30-50 % of the local
  intensity), one bright and one dark copy of every test slice, reported apart.

Validation never sees a test slice: held-out training normals select the checkpoint (lowest
reconstruction error, ``training#checkpoint: normal_error``) and calibrate the threshold;
SIMULATED "tissue" lesions in them give a validation AUROC, reported beside the test AUROC so
that one can see whether validation ranks the models as the test does. Then MAMA Net ablations
(memory size N, semantic basis, Wasserstein loss, hard vs soft addressing, attention vs plain
convolutions, denoising vs plain reconstruction, the first release's memory settings, validation
on slabs instead of every 5th slice, the last network or the best by validation AUROC instead of
the one of lowest held-out normal error, cosine learning-rate decay, one training patient instead of two;
"as configured" reuses the main runs where the sizes agree), every model also with
``training#ensemble: 3`` (three networks from seeds s, s+1, s+2, scored with the mean of their
reconstructions; ``--ensemble 1`` skips) and, on request, ``training#restarts: K`` (``--restarts K``:
the best of K by held-out normal error; measured, little gain), paired t-tests over seeds, ROC
curves and a t-SNE of latent codes (paper Fig. 7). ``--extra-ablations`` adds 5x the iterations
and 128 x 128 input (~20 min more; :data:`EXTRA_ABLATIONS`).

On a GPU (``--device cuda``: every worker process trains and scores there, bf16 autocast as
``mama-monai train`` on CUDA) ``--models`` may also name the paper's MAMA Net (:data:`PAPER`), and
``--budget S`` / ``--order seed`` fit a run into one device-tool call: ``benchmarks/run_gpu_accuracy.sh``.

    python benchmarks/accuracy.py                   # full run (under 60 min on 2 CPU cores; --ensemble 1 saves ~25)
    python benchmarks/accuracy.py --quick --output /tmp/acc   # minutes: tiny sizes, a smoke test
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("mamanet_compact", "autoencoder", "memae")
#: the paper's MAMA Net (``configs/network/mamanet_paper.yaml``: global memory, 957 M parameters):
#: a GPU model, run only when ``--models`` names it (``benchmarks/run_gpu_accuracy.sh``)
PAPER = "mamanet_paper"
#: training cost per pixel-iteration against the autoencoder's, for the order of the runs only
#: (MAMA Net's attention about 4x; the paper's model on a GPU about 10x the compact one, docs/benchmarks.md)
COST_WEIGHT = {"mamanet_compact": 4.0, PAPER: 40.0}
REDUCTIONS = ("percentile", "max", "mean")
#: name -> (overrides of MAMA Net's config) for the ablation table
AS_CONFIGURED = "MAMA Net (as configured)"
ABLATIONS: dict[str, dict[str, Any]] = {
    AS_CONFIGURED: {},
    "N = 64 slots": {"network_def#num_slots": 64},
    "N = 1024 slots": {"network_def#num_slots": 1024},
    "no semantic basis": {"network_def#use_semantic_basis": False},
    "with the paper's Wasserstein loss (weight 1)": {"loss#wasserstein_weight": 1.0},
    "soft addressing (top 8)": {"network_def#memory_args#addressing": "soft"},
    "plain convolutions (no attention)": {"network_def#block_args#attention": False},
    "plain reconstruction training (no input noise: the paper's)": {"training#input_noise#std": 0.0},
    "5x the iterations (1500)": {"training#iterations": 1500},
    "input 128 x 128 (the previous benchmark's size)": {"data#spatial_size": [128, 128]},
    "validation on slabs of 8 slices, 2 dropped beside each (blocks)": {"data#validation_split": "blocks"},
    "the last network (no checkpoint selection)": {"training#checkpoint": "last"},
    "checkpoint by validation AUROC on SIMULATED lesions (the default until 2026-12-02)": {"training#checkpoint": "val_auroc"},
    "cosine learning-rate decay to 0": {"training#lr_schedule": "cosine"},
    "one training patient (LIDC-IDRI-0001 alone, without the second CT)": {"data#manifest": "<one patient>"},
    "first release's memory (random slots, no restarts, commitment 0.25)": {
        "network_def#memory_args#init_from_data": False,
        "network_def#memory_args#restart_every": 0,
        "network_def#memory_args#commitment_weight": 0.25,
    },
}

#: the variants that train several networks per run (every model, every main seed): ``--restarts``
#: keeps the best of K by held-out normal error, ``--ensemble`` averages all K
RESTARTS = "training#restarts: {k}"
ENSEMBLE = "training#ensemble: {k}"
#: command-line option -> (variant name, config key)
MULTI_RUN = {"restarts": (RESTARTS, "training#restarts"), "ensemble": (ENSEMBLE, "training#ensemble")}

#: placeholder of ``data#manifest``: the demo's LIDC manifest without the second patient (:func:`_one_patient_manifest`)
ONE_PATIENT = "<one patient>"
SECOND_CT_GROUP = "TotalSegmentator-example-CT"

#: ablations run only with ``--extra-ablations``: the two most expensive (21 of the 75 training
#: minutes of the run of 2026-12-07), each measured in several runs already (archived with their
#: rows in ``docs/accuracy/run_2026-12-07_rates/``); without them the full run fits the hour
EXTRA_ABLATIONS = ("5x the iterations (1500)", "input 128 x 128 (the previous benchmark's size)")

#: the ablations also run on the brain task (where the lesions are SIMULATED and dark ones are missed)
BRAIN_ABLATIONS = (
    AS_CONFIGURED,
    "plain reconstruction training (no input noise: the paper's)",
    "5x the iterations (1500)",
    "input 128 x 128 (the previous benchmark's size)",
    "validation on slabs of 8 slices, 2 dropped beside each (blocks)",
    "the last network (no checkpoint selection)",
    "checkpoint by validation AUROC on SIMULATED lesions (the default until 2026-12-02)",
    "cosine learning-rate decay to 0",
)

# ----------------------------------------------------------------------------- one run
def _brain_test(items: list[dict], seed: int) -> list[dict]:
    """The brain test set: every held-out normal slice, plus one bright and one dark SIMULATED copy."""
    import torch

    from mama_monai.data.simulated_lesions import simulate_lesions

    normals = [it for it in items if it["label"] == 0]
    out = [dict(it, lesion="none") for it in normals]
    for sign, name in ((1, "bright"), (-1, "dark")):
        for i, item in enumerate(normals):
            image = item["image"][0].numpy()
            width = image.shape[-1]
            rng = np.random.default_rng([20210, seed, i, sign + 1])
            lesioned, mask, _ = simulate_lesions(
                image, rng, n=1, radius_px=(max(1.5, 0.04 * width), max(2.0, 0.12 * width)), contrast=(0.3, 0.5),
                sign=sign, foreground=image > 0.3 * image.max(),
            )  # fmt: skip
            out.append(
                dict(item, image=torch.from_numpy(lesioned)[None].float(), mask=torch.from_numpy(mask)[None].float(),
                     has_mask=True, label=1, simulated=True, lesion=name, case_id=f"{item['case_id']}_{name}")
            )  # fmt: skip
    return out


def _task_overrides(task: str, size: int, iterations: int, interval: int) -> dict[str, Any]:
    over: dict[str, Any] = {
        "data#spatial_size": [size, size],
        "data#num_workers": 0,
        "training#iterations": iterations,
        "training#val_interval": interval,
    }
    if task == "brain":
        from mama_monai.data.demo import load_demo_brain

        over.update({"data#manifest": str(load_demo_brain()["manifest"]), "data#preset": "mri_t1", "data#modality": "MR"})
    return over


def job_overrides(job: dict[str, Any]) -> dict[str, Any]:
    """The config overrides of one run: the task's, the job's own, its seed; the paper's MAMA Net
    also gets ``network_def#img_size`` = the input size (its global memory holds whole latent codes,
    F = 512 x (size / 8)^2: the paper's at ``--size 228``)."""
    over = _task_overrides(job["task"], job["size"], job["iterations"], job["interval"])
    if job["network"] == PAPER:
        over["network_def#img_size"] = [job["size"], job["size"]]
    over.update(job.get("overrides", {}), seed=job["seed"])
    return over


def _one_patient_manifest(folder: str) -> str:
    """The demo's LIDC manifest without the second patient's training slices, written into ``folder``."""
    import dataclasses

    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.manifest import write_manifest

    demo = demo_manifest("lidc")
    cases = [c for c in demo.cases if c.group != SECOND_CT_GROUP]
    path = Path(folder) / "one_patient" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(write_manifest(dataclasses.replace(demo, cases=cases), path, root=str(demo.root)))


def _image_aurocs(out: dict[str, np.ndarray], labels: np.ndarray, scoring: dict[str, Any]) -> dict[str, float]:
    """Test AUROC of every score reduction, from one scoring pass (image + reconstruction)."""
    import torch
    from sklearn.metrics import roc_auc_score

    from mama_monai.engines import AnomalyMap, anomaly_map_args

    x, r = torch.as_tensor(out["image"]), torch.as_tensor(out["pred"])
    result = {}
    for reduction in REDUCTIONS:
        args = dict(anomaly_map_args(scoring), reduction=reduction)
        result[f"auroc_{reduction}"] = float(roc_auc_score(labels, AnomalyMap(2, **args)(x, r).numpy()))
    result["auroc_paper_mean_error"] = float(roc_auc_score(labels, ((x - r) ** 2).flatten(1).mean(1).numpy()))
    amap = AnomalyMap(2, **anomaly_map_args(scoring))
    for name, residual in _residual_maps(x, r, amap).items():  # other residual maps, the default reduction
        result[f"auroc_residual_{name}"] = float(roc_auc_score(labels, amap.score(residual).numpy()))
    return result


#: SSIM window (Wang et al. 2004: Gaussian, sigma 1.5, 11 px; 7 px at our 64 x 64)
SSIM_KERNEL = 7


def _residual_maps(x, r, amap) -> dict[str, Any]:
    """Residual maps other than the product's squared error, on the product's foreground: the
    absolute error (smoothed as the squared one) and the structural dissimilarity (1 - SSIM) / 2
    over a 7-pixel Gaussian window (MONAI's ``compute_ssim_and_cs``; the valid region padded back
    to the image by its edge values), measured in ``benchmarks/residual_maps.py``."""
    import torch.nn.functional as F
    from monai.metrics.regression import compute_ssim_and_cs

    fg = amap.foreground(x)
    ssim, _ = compute_ssim_and_cs(r.float(), x.float(), 2, [SSIM_KERNEL] * 2, [1.5, 1.5], data_range=1.0)
    half = SSIM_KERNEL // 2
    dssim = F.pad((1 - ssim.mean(dim=1, keepdim=True)) / 2, (half,) * 4, mode="replicate")
    return {"absolute": amap.smooth((x.float() - r.float()).abs().mean(dim=1, keepdim=True)) * fg, "ssim": dssim * fg}


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one (task, network, seed, overrides) in a temporary folder; plain numbers back.

    ``job`` may also carry ``device`` (default ``"cpu"``), ``threads`` (default 1) and ``deadline``
    (a ``time.time()``): a job taken up after its deadline trains nothing and comes back as
    ``{..., "skipped": True}`` (``--budget``)."""
    if job.get("deadline") is not None and time.time() > job["deadline"]:
        return {k: job[k] for k in ("task", "network", "seed", "variant")} | {"skipped": True}
    import torch

    torch.set_num_threads(job.get("threads", 1))
    logging.disable(logging.WARNING)
    from mama_monai.workflows.splits import prepare_splits
    from mama_monai.workflows.config import workflow_config
    from mama_monai.workflows.distributed import init_distributed
    from mama_monai.workflows.metrics_report import report_items
    from mama_monai.engines import score_items
    from mama_monai.workflows.training import normal_mse, train_model
    from mama_monai.engines import AnomalyMap, anomaly_map_args

    over = job_overrides(job)
    ctx = init_distributed(job.get("device", "cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        if over.get("data#manifest") == ONE_PATIENT:
            over["data#manifest"] = _one_patient_manifest(tmp)
        parser = workflow_config(job["network"], overrides=over)
        splits = prepare_splits(parser)
        result = train_model(parser, splits["train"], splits["val"], tmp, ctx, progress=False)
        unlabelled = unlabelled_series(result.model_path, job["series"], Path(tmp) / "unlabelled_series") if job.get("series") else None
        labelled = labelled_series(result.model_path, job["labelled_series"], Path(tmp) / "labelled") if job.get("labelled_series") else None
    test = _brain_test(splits["test"], job["seed"]) if job["task"] == "brain" else splits["test"]
    scoring = parser.get_parsed_content("scoring")
    out = score_items(result.network, AnomalyMap(2, **anomaly_map_args(scoring)), test, ctx.device)
    report = report_items(out, scoring, result.threshold, test, seed=job["seed"])  # the test is scored once
    labels = out["label"].astype(int)
    row: dict[str, Any] = {k: job[k] for k in ("task", "network", "seed", "variant", "size")}
    row.update(_image_aurocs(out, labels, scoring))
    for kind in ("bright", "dark"):
        keep = np.array([it.get("lesion") in ("none", kind) for it in test])
        if job["task"] == "brain":
            row.update({f"{kind}_{k}": v for k, v in _image_aurocs({k: v[keep] for k, v in out.items()}, labels[keep], scoring).items()})
    normal = labels == 0
    val = score_items(result.network, AnomalyMap(2, **anomaly_map_args(scoring)), splits["val"], ctx.device)
    row.update({f"val_{k}": v for k, v in _image_aurocs(val, val["label"].astype(int), scoring).items()})
    row.update(
        pixel_auroc=report["pixel_auroc"],
        sensitivity=report["image"]["sensitivity"],
        specificity=report["image"]["specificity"],
        f1=report["image"]["f1"],
        val_auroc=row.get("val_auroc_percentile"),  # the kept network's, recomputed (the history has every validation's)
        val_normal_mse=normal_mse(val),
        test_normal_mse=normal_mse(out),
        slots_used=result.history[-1].get("slots_used", 0),  # an ensemble's: its first member's (TrainResult.history)
        slot_perplexity=result.history[-1].get("slot_perplexity", 0.0),
        num_slots=int(getattr(getattr(_first_member(result.network), "memory", None), "num_slots", 0) or 0),
        train_seconds=round(result.seconds, 1),
        n_test_normal=int(normal.sum()),
        n_test_anomalous=int((~normal).sum()),
        n_val_normal=int((val["label"] == 0).sum()),
        history=result.history,  # every validation: iteration, loss, slots, held-out normal error, validation AUROC
    )
    if unlabelled is not None:
        row["unlabelled_series"] = unlabelled
    if labelled is not None:
        row["labelled_series"] = labelled
    for module in job.get("extra_scores", ()):  # e.g. benchmarks/conditioned_maps.py: other scores of the same outputs
        row.update(importlib.import_module(f"benchmarks.{module}").row_values(val, splits["val"], out, test, scoring))
    for module in job.get("network_scores", ()):  # e.g. benchmarks/validation_lesions.py: new sets scored by the kept network
        row.update(importlib.import_module(f"benchmarks.{module}").network_values(result.network, splits["val"], scoring, ctx.device, job, test))
    if job.get("lesion_draws"):
        row["validation_draws"] = validation_draws(result.network, splits["val"], scoring, job["lesion_draws"], ctx.device)
    if job.get("keep_outputs"):
        row["_scores"] = {"label": labels.tolist(), "score": out["score"].tolist(), "slice_index": [int(it["slice_index"]) for it in test]}
        if job.get("keep_latent", True):  # the t-SNE's input (benchmarks/sampling_noise.py needs only the scores)
            row["_latent"] = _latents(result.network, test)
    return row


def validation_draws(network, val_items: list[dict], scoring: dict[str, Any], draws: int, device) -> dict[str, list[float]]:
    """The validation AUROC of one network under ``draws`` independent draws of its SIMULATED
    lesions (seeds 1000, 1001, ...), with 1 to 8 (the most ``auto`` gives) lesioned copies per held-out normal slice:
    ``{"1": [AUROC per draw], ..., "8": [...]}`` (copy ``c`` of a draw is the product's copy ``c``,
    so the first K copies are what ``data#validation_lesion_copies: K`` gives)."""
    from sklearn.metrics import roc_auc_score

    from mama_monai.data.case_slices import simulated_anomalies
    from mama_monai.engines import AnomalyMap, anomaly_map_args, score_items
    from mama_monai.workflows.splits import MAX_AUTO_COPIES as MAX_DRAW_COPIES  # every number `auto` can give

    amap = AnomalyMap(2, **anomaly_map_args(scoring))
    normals = [it for it in val_items if it["label"] == 0]
    normal_scores = score_items(network, amap, normals, device)["score"].tolist()
    n, out = len(normals), {str(k): [] for k in range(1, MAX_DRAW_COPIES + 1)}
    for d in range(draws):
        lesions = simulated_anomalies(normals, seed=1000 + d, copies=MAX_DRAW_COPIES)  # copy c of slice i at c * n + i
        scores = score_items(network, amap, lesions, device)["score"].tolist()
        for k in range(1, MAX_DRAW_COPIES + 1):
            out[str(k)].append(float(roc_auc_score([0] * n + [1] * (k * n), normal_scores + scores[: k * n])))
    return out


def unlabelled_series(model: Path, series: str | Path, output: Path) -> dict[str, Any]:
    """How a series of another patient, with no labels, looks to ``model``: its slices at or above
    the model's threshold and the median slice score over the threshold (scored as ``mama-monai
    score`` scores it, into ``output``). Not accuracy: a measure of false alarms on a patient no
    model trained on (also ``scanner_ct_box.py --models``)."""
    from mama_monai.workflows.scoring import score_cases

    (case,) = score_cases(model, [Path(series)], output, dicom_output=False)["cases"]
    scores, threshold = np.asarray(case["slice_scores"]), case["threshold"]
    return {"slices_at_or_above_threshold": int((scores >= threshold).sum()), "slices": len(scores),
            "median_over_threshold": float(np.median(scores) / threshold)}  # fmt: skip


def labelled_series(model: Path, cases: list[dict[str, Any]], output: Path) -> dict[str, Any]:
    """Other patients' labelled volumes scored by ``model`` as ``mama-monai score`` scores them
    (``score_cases``, into ``output``; ``external_tumours.py``). ``cases``: one dict per volume,
    ``name``, ``image`` (the file as a user has it), ``label`` and ``body`` (NIfTI files on the
    loaded grid: the finding, the region whose pixels count) and ``pixels`` (the slice indices
    whose pixels count). Back: per case its slice scores and the model's threshold, and the pixel
    AUROC of the anomaly maps (on the input grid) against the labels inside ``body`` on those
    slices, per case and pooled over the cases."""
    import nibabel as nib
    from sklearn.metrics import roc_auc_score

    from mama_monai.workflows.scoring import score_cases

    report = score_cases(model, [Path(c["image"]) for c in cases], output, dicom_output=False)
    if report["failures"]:
        raise RuntimeError(f"labelled_series: {model} failed to score {report['failures']}")
    out: dict[str, Any] = {"cases": {}}
    maps, truths = [], []
    for case, scored in zip(cases, report["cases"]):
        amap = np.asarray(nib.load(output / scored["anomaly_map"]).dataobj, dtype=np.float32)
        label = np.asarray(nib.load(case["label"]).dataobj) > 0
        body = np.asarray(nib.load(case["body"]).dataobj) > 0
        if amap.shape != label.shape:
            raise ValueError(f"labelled_series: the anomaly map of {case['name']} is {amap.shape}, its label {label.shape}")
        keep = np.zeros_like(body)
        keep[..., case["pixels"]] = body[..., case["pixels"]]
        maps.append(amap[keep]), truths.append(label[keep])
        out["cases"][case["name"]] = {
            "slice_scores": [float(s) for s in scored["slice_scores"]], "threshold": float(scored["threshold"]),
            "pixel_auroc": float(roc_auc_score(truths[-1], maps[-1])),
        }  # fmt: skip
    out["pixel_auroc"] = float(roc_auc_score(np.concatenate(truths), np.concatenate(maps)))
    return out


def lesion_pixel_auroc(maps: np.ndarray, body: np.ndarray, items: list[dict]) -> float:
    """Pixel AUROC as the product reports it: the items ``metrics_report.lesion_slices`` counts,
    inside the map's foreground ``body``; ``maps``, ``body``: ``(N, H, W)``, one per item."""
    from mama_monai.evaluation import pixel_auroc
    from mama_monai.workflows.metrics_report import lesion_slices

    masks = np.stack([np.asarray(it["mask"])[0] > 0 for it in items])
    keep = lesion_slices(items, masks)
    return float(pixel_auroc(maps[keep], masks[keep], body[keep]))


def _first_member(network):
    """An ensemble's first network (whose training history the run reports); any other network itself."""
    return network.members[0] if hasattr(network, "members") else network


def _latents(network, items: list[dict]) -> dict[str, list]:
    """Spatially averaged latent codes ``z`` of ``items`` (for the t-SNE figure)."""
    import torch

    x = torch.stack([it["image"] for it in items]).to(next(network.parameters()).device)
    with torch.no_grad():
        z = network.reconstruct(x).latent.flatten(2).mean(2).float().cpu()
    return {"z": z.tolist(), "label": [int(it["label"]) for it in items]}


# ----------------------------------------------------------------------------- the plan
def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    base = {"size": args.size, "iterations": args.iterations, "interval": args.interval}
    models = getattr(args, "models", MODELS)  # --models; all three where the caller's namespace has none
    jobs = [
        dict(base, task=task, network=net, seed=seed, variant="main", keep_outputs=seed == args.seeds[0])
        for task in args.tasks
        for net in models
        for seed in args.seeds
    ]
    for option, (variant, key) in MULTI_RUN.items():  # every model again, K networks from each main seed
        k = getattr(args, option, 1)
        if k > 1:
            jobs += [
                dict(base, task=task, network=net, seed=seed, variant=variant.format(k=k), overrides={key: k})
                for task in args.tasks
                for net in models
                for seed in args.seeds
            ]
    if not args.no_ablations:
        names = [n for n in ABLATIONS if getattr(args, "extra_ablations", False) or n not in EXTRA_ABLATIONS]
        names = names if not args.quick else names[:2]
        small = dict(base, size=args.ablation_size)
        for name in names:
            for task in [t for t in args.tasks if t == "lidc" or (t == "brain" and name in BRAIN_ABLATIONS)]:
                for seed in args.ablation_seeds:
                    if name == AS_CONFIGURED and _reused(args, seed):
                        continue  # the main run of this seed is that run: not trained twice (_with_reused_rows)
                    jobs.append(dict(small, task=task, network="mamanet_compact", seed=seed, variant=name, overrides=ABLATIONS[name]))
    if getattr(args, "order", "cost") == "seed":  # a run under --budget: what finishes first is a paired table,
        # the compact models' one-network runs first, then the paper's model (GPU-bound: one run ~ the three others' five seeds)
        return sorted(jobs, key=lambda j: (j["variant"] != "main", j["network"] == PAPER, args.tasks.index(j["task"]), j["seed"], -_cost(j)))
    # the slowest first, so the two processes finish together
    return sorted(jobs, key=lambda j: -_cost(j))


def _reused(args: argparse.Namespace, seed: int) -> bool:
    """Whether the 'as configured' ablation run of ``seed`` is a main run (same size, seed among the main seeds)."""
    return args.ablation_size == args.size and seed in args.seeds


def _with_reused_rows(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """``rows`` preceded by the 'as configured' ablation rows taken from MAMA Net's main runs (see :func:`plan`)."""
    if args.no_ablations:
        return rows
    reused = [{k: v for k, v in r.items() if not k.startswith("_")} | {"variant": AS_CONFIGURED} for r in rows
              if r["variant"] == "main" and r["network"] == "mamanet_compact" and r["seed"] in args.ablation_seeds and _reused(args, r["seed"])]  # fmt: skip
    return sorted(reused, key=lambda r: (r["task"], r["seed"])) + rows


def _cost(job: dict[str, Any]) -> float:
    """Relative training cost: iterations x pixels, MAMA Net (attention) about 4x the others."""
    over = job.get("overrides", {})
    size = over.get("data#spatial_size", [job["size"]])[0]
    runs = over.get("training#restarts", 1) * over.get("training#ensemble", 1)
    return runs * over.get("training#iterations", job["iterations"]) * size**2 * COST_WEIGHT.get(job["network"], 1.0)


def run_all(jobs: list[dict[str, Any]], workers: int, log_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every job in ``workers`` processes (rows appended to ``log_path`` as they come): the rows,
    and the jobs skipped at their deadline (:func:`run_one`)."""
    rows, skipped = [], []
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, maxtasksperchild=4) as pool, open(log_path, "a") as log:
        for row in pool.imap_unordered(run_one, jobs):
            if row.get("skipped"):
                skipped.append(row)
                print(f"[skipped: --budget spent] {row['task']} {row['network']} seed {row['seed']} {row['variant']}", flush=True)
                continue
            rows.append(row)
            brief = {k: v for k, v in row.items() if not k.startswith("_")}
            log.write(json.dumps(brief) + "\n")
            log.flush()
            print(f"[{len(rows)}/{len(jobs)}] {row['task']} {row['network']} seed {row['seed']} {row['variant']}: "
                  f"AUROC {row['auroc_percentile']:.3f} pixel {row['pixel_auroc'] or float('nan'):.3f}", flush=True)  # fmt: skip
    return rows, skipped


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and budgets: a smoke test (minutes)")
    parser.add_argument("--output", default=str(ROOT / "docs"), help="folder for accuracy.md, accuracy/*.png, accuracy/results.json")
    parser.add_argument("--tasks", nargs="+", default=["lidc", "brain"], choices=["lidc", "brain"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=[*MODELS, PAPER], help="networks to run (default the three compact ones)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--ablation-seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--size", type=int, default=64, help="model input size (default 64: validation AUROC 0.72 against 0.61 at 128, docs/accuracy.md)")
    parser.add_argument("--iterations", type=int, default=300, help="training iterations of batch 8 (default 300)")
    parser.add_argument("--interval", type=int, default=50, help="validation interval (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="processes, one thread each on the CPU (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto: where every run trains and scores (all workers share one GPU)")
    parser.add_argument("--budget", type=float, default=0.0, help="seconds after the start past which no run starts (0 = none); the runs skipped are listed on the page")
    parser.add_argument("--order", choices=["cost", "seed"], default="cost", help="cost: the slowest runs first (default); seed: task by task, seed by seed (for --budget)")
    parser.add_argument("--ablation-size", type=int, default=64, help="input size of the ablation runs (default 64: 4x cheaper)")
    parser.add_argument("--restarts", type=int, default=1, help="also run every model with training#restarts = this (default 1 = skip: measured, little gain)")
    parser.add_argument("--ensemble", type=int, default=3, help="also run every model with training#ensemble = this (default 3; 1 = skip)")
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--extra-ablations", action="store_true", help="also the ablations " + " and ".join(repr(n) for n in EXTRA_ABLATIONS) + " (~20 min more)")
    parser.add_argument("--report-only", action="store_true", help="rewrite accuracy.md from OUTPUT/accuracy/results.json")
    parser.add_argument("--from-runs", action="store_true", help="with --report-only: first rebuild results.json from OUTPUT/accuracy/runs.jsonl "
                        "and run_settings.json (a run stopped before its end; no figures)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.iterations, args.interval, args.seeds, args.ablation_seeds = 32, 4, 2, args.seeds[:2], [0]
        args.restarts, args.ensemble = min(args.restarts, 2), min(args.ensemble, 2)
        args.ablation_size = 32
    return args


def _machine(args: argparse.Namespace) -> dict[str, Any]:
    """Where the runs train, for the page: the CPU and its cores, and the GPU's name (None on the CPU)."""
    import torch

    from benchmarks.machine import cpu_model
    from mama_monai.workflows.devices import resolve_device

    device = resolve_device(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu}


def _rows_from_runs(folder: Path) -> None:
    """``folder/results.json`` from the rows in ``runs.jsonl`` and the settings in ``run_settings.json``
    (every row of ``runs.jsonl``: it is appended to, so use a fresh ``--output`` per run)."""
    settings = json.loads((folder / "run_settings.json").read_text())
    settings.setdefault("note", "rebuilt from runs.jsonl after the run was stopped before its end (a hard time limit): "
                        "a run not in the tables did not finish; no ROC or t-SNE figure")  # fmt: skip
    rows = [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines() if line.strip()]
    (folder / "results.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=1))


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.accuracy_report import write_report

    out = Path(args.output)
    if args.report_only:
        if args.from_runs:
            _rows_from_runs(out / "accuracy")
        saved = json.loads((out / "accuracy" / "results.json").read_text())
        write_report(saved["rows"], saved["settings"], out, saved["settings"].get("seconds", 0.0), fresh=False)
        return 0
    (out / "accuracy").mkdir(parents=True, exist_ok=True)
    start = time.time()
    settings = dict(vars(args), date=time.strftime("%Y-%m-%d"), **_machine(args))
    (out / "accuracy" / "run_settings.json").write_text(json.dumps(settings, indent=1))
    threads = 1 if settings["gpu"] is None else max(1, (os.cpu_count() or 1) // args.workers)
    jobs = [dict(j, device=args.device, threads=threads, deadline=start + args.budget if args.budget else None) for j in plan(args)]
    done, skipped = run_all(jobs, args.workers, out / "accuracy" / "runs.jsonl")
    rows = _with_reused_rows(done, args)
    settings.update(seconds=time.time() - start, skipped=[f"{j['task']} {j['network']} seed {j['seed']} {j['variant']}" for j in skipped])
    write_report(rows, settings, out, time.time() - start)
    print(f"wrote {out / 'accuracy.md'} in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
