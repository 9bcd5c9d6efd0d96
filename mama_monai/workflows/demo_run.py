"""``mama-monai demo``: the main job, end to end on the embedded real data, on a CPU.

1. Data: LIDC-IDRI-0001 (real chest CT, radiologists' nodule outlines) with the fair split of
   DESIGN.md §7: train on slices >= 15 mm from any annotation; test on the 11 slices carrying an
   outline (REAL anomalies) against the 28 anatomically matched normal slices 5-15 mm away.
   Validation = every 5th training slice plus SIMULATED-lesion copies of them (6 of each:
   ``data#validation_lesion_copies: auto``).
2. Train the models of ``configs/demo.yaml`` side by side (the compact MAMA Net, the plain
   convolutional autoencoder and MemAE), the first as the main model.
3. Evaluate each on the test slices: image AUROC (95 % bootstrap interval), sensitivity,
   specificity, F1 at the calibrated threshold, pixel AUROC against the radiologists' masks;
   ROC, histograms, normality per case and montages as PNG.
4. Score the whole CT volume with the main model: a NIfTI anomaly map on the CT's own grid, an overlay
   PNG and the scores CSV/JSON.
5. ``report.json`` with every number, the time taken and which anomalies are real or simulated,
   and ``index.html`` showing it (``scores/index.html`` for the scored volume).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mama_monai.data.demo import load_demo_ct
from mama_monai.reports.html import write_demo_page
from mama_monai.reports.json_report import write_json
from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.config import workflow_config
from mama_monai.workflows.distributed import init_distributed
from mama_monai.workflows.metrics_report import evaluate_items
from mama_monai.workflows.scoring import score_cases
from mama_monai.workflows.training import train_model

__all__ = ["demo_settings", "run_demo"]


def demo_settings() -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """``configs/demo.yaml``: the ``(report name, network config)`` pairs the demo trains (the first
    is the main model, written as ``model.pt``) and the overrides it applies to all of them."""
    import yaml

    from mama_monai.workflows.config import configs_dir

    path = configs_dir() / "demo.yaml"
    settings = yaml.safe_load(path.read_text())
    models = list((settings.get("models") or {}).items())
    if not models:
        raise ValueError(f"{path} must list at least one model under 'models', got {settings.get('models')!r}.")
    return models, dict(settings.get("overrides") or {})


def _model_report(network: str, result: Any, evaluation: dict[str, Any], seconds: float) -> dict[str, Any]:
    """One model's entry in ``report.json``: what was trained, its threshold, validation and test."""
    return {
        "network": network,
        "parameters": sum(p.numel() for p in result.network.parameters()),
        "model_file": str(result.model_path),
        "iterations": result.iterations,
        "train_seconds": round(result.seconds, 1),
        "seconds": round(seconds, 1),
        "threshold": result.threshold,
        "validation": result.history,
        "test": evaluation,
    }


def run_demo(output_dir: str | Path, overrides: dict[str, Any] | None = None, device: str = "auto", overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run the demo into ``output_dir``; returns the report (also written to ``report.json``).

    Args:
        output_dir: a new or empty folder (an existing non-empty one is refused unless ``overwrite``).
        overrides: config overrides applied to every model (e.g. ``{"training#iterations": 20}``).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        overwrite: allow a non-empty ``output_dir`` (files the demo writes are replaced).
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise ValueError(f"output folder {str(output_dir)!r} exists and is not empty; choose another --output or pass --overwrite.")
    start = time.perf_counter()
    ctx = init_distributed(device)
    report: dict[str, Any] = {
        "data": {
            "dataset": "LIDC-IDRI-0001 (TCIA, CC BY 3.0), embedded in mama_monai/demo_data",
            "training_normals": "REAL: LIDC-IDRI-0001 slices >= 15 mm from any annotation, and every slice of a second "
            "patient's chest CT (TotalSegmentator's example CT, Apache-2.0, unlabelled; demo_data/PROVENANCE.md)",
            "test_anomalies": "REAL: axial slices carrying a radiologist's nodule outline (069.xml)",
            "test_normals": "REAL: slices 5-15 mm from any annotation, without outline (fair split, DESIGN.md §7)",
            "validation_anomalies": "SIMULATED: 'tissue' lesions (another tissue's intensity) inserted into held-out training slices",
        },
        "device": str(ctx.device),
        "models": {},
    }
    splits = None
    models, demo_overrides = demo_settings()
    for name, network in models:
        parser = workflow_config(network, overrides={**demo_overrides, **(overrides or {})})
        if splits is None:
            splits = prepare_splits(parser)
            report["data"].update(
                n_train=len(splits["train"]),
                n_validation=len(splits["val"]),
                n_test_normal=sum(1 for it in splits["test"] if it["label"] == 0),
                n_test_anomalous=sum(1 for it in splits["test"] if it["label"] == 1),
                spatial_size=list(parser["data#spatial_size"]),
            )
        model_dir = output_dir if name == models[0][0] else output_dir / f"baseline_{name}"
        t0 = time.perf_counter()
        result = train_model(parser, splits["train"], splits["val"], model_dir, ctx, progress=progress)
        scoring = parser.get_parsed_content("scoring")
        evaluation = evaluate_items(
            result.network, scoring, result.threshold, splits["test"], ctx.device, output_dir / "plots", name=name, seed=int(parser["seed"])
        )
        report["models"][name] = _model_report(network, result, evaluation, time.perf_counter() - t0)
    ct = load_demo_ct()
    scores = score_cases(output_dir / "model.pt", [ct["image"]], output_dir / "scores", device=str(ctx.device), overwrite=overwrite)
    report["scoring"] = {"input": str(ct["image"]), "output": str(output_dir / "scores"), "cases": scores.get("cases", scores)}
    report["seconds_total"] = round(time.perf_counter() - start, 1)
    write_json(report, output_dir / "report.json")
    write_demo_page(output_dir, report)
    return report
