"""Stratified k-fold cross-validation (the paper's protocol) and the paired t-test between models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mama_monai.evaluation import paired_t_test, summarize_folds
from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.config import workflow_config
from mama_monai.workflows.distributed import DistributedContext
from mama_monai.workflows.metrics_report import evaluate_items
from mama_monai.workflows.training import train_model

__all__ = ["cross_validate"]

_SUMMARY_KEYS = ("auroc", "average_precision", "sensitivity", "specificity", "f1")


def cross_validate(
    networks: list[str], folds: int, output_dir: str | Path, ctx: DistributedContext, overrides: dict[str, Any] | None = None, progress: bool = True
) -> dict[str, Any]:
    """Train and test every network on folds ``0..folds-1`` of the manifest's fold assignment.

    Each fold trains on the normal cases of the other folds and tests on its own fold (plus any
    case with ``split: test``). Reports per-fold metrics, mean ± std over folds, and, for two or
    more networks, a two-sided paired t-test of each network's fold AUROCs against the first's
    (alpha 0.05).

    Raises:
        ValueError: fewer than 2 folds, or a manifest without fold assignments.
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2 for cross-validation, got {folds}.")
    output_dir = Path(output_dir)
    results: dict[str, Any] = {}
    for network in networks:
        per_fold = []
        for fold in range(folds):
            parser = workflow_config(network, overrides={**(overrides or {}), "data#fold": fold})
            if parser.get_parsed_content("data#manifest") is None:  # resolved: the config holds a $-expression
                raise ValueError("cross-validation needs a manifest with folds: pass --data#manifest PATH (the embedded demo has a fixed split).")
            splits = prepare_splits(parser)
            fold_dir = output_dir / network / f"fold_{fold}"
            result = train_model(parser, splits["train"], splits["val"], fold_dir, ctx, progress=progress)
            evaluation = evaluate_items(
                result.network, parser.get_parsed_content("scoring"), result.threshold, splits["test"], ctx.device
            )
            per_fold.append({k: evaluation["image"][k] for k in _SUMMARY_KEYS} | {"pixel_auroc": evaluation["pixel_auroc"]})
        summary = summarize_folds([{k: v for k, v in f.items() if v is not None} for f in per_fold])
        results[network] = {"folds": per_fold, "mean_std": {k: list(v) for k, v in summary.items()}}
    report: dict[str, Any] = {"folds": folds, "networks": results}
    if len(networks) > 1:
        reference = [f["auroc"] for f in results[networks[0]]["folds"]]
        report["paired_t_test_auroc"] = {
            other: paired_t_test([f["auroc"] for f in results[other]["folds"]], reference)._asdict() for other in networks[1:]
        }
    return report
