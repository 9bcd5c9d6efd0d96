"""How much of a validation AUROC is the draw of its SIMULATED lesions, and what lesioned copies
per held-out slice (``data#validation_lesion_copies``) buy (``docs/accuracy/validation_noise.md``;
predicted before the run in ``docs/accuracy/validation_noise_prediction.txt``).

Every (task, seed, setting of ``input_noise.py``'s sweep) trains MAMA Net through
``benchmarks/accuracy.py``'s ``run_one`` (the product's path); the kept network then scores its
held-out normal slices once and 24 independent draws of 8 lesioned copies of them
(``accuracy.validation_draws``): the validation AUROC per draw with 1 to 8 copies. The page
gives the sd over draws (the lesion draw's noise, one network), the seed sd of the draw-averaged
AUROC (the network's), and each setting against the default with the draws averaged.

    python benchmarks/validation_noise.py --output docs/accuracy/validation_noise.json   # ~20 min on 2 CPU cores
    python benchmarks/validation_noise.py --output docs/accuracy/validation_noise.json --report-only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rows_file, settings_sweep  # noqa: E402
from benchmarks.input_noise import SWEEP  # noqa: E402
from mama_monai.workflows.splits import lesion_copies  # noqa: E402

DRAWS = 24
NAME = {"lidc": "LIDC", "brain": "brain T1"}


def _jobs(args: argparse.Namespace, tmp: Path) -> list[dict]:
    jobs = settings_sweep.plan(args, SWEEP)
    return [dict(j, lesion_draws=args.draws) for j in jobs]


def _auto(row: dict) -> str:
    """The number of copies ``auto`` gives this row's validation set (its held-out normals)."""
    return str(lesion_copies("auto", row["n_val_normal"]))


def _averaged(row: dict) -> float:
    """The row's validation AUROC with the auto copies, averaged over the draws."""
    return float(np.mean(row["validation_draws"][_auto(row)]))


def summary(rows: list[dict], settings: dict) -> str:
    tasks = [t for t in ("lidc", "brain") if any(r["task"] == t for r in rows)]
    lines = [
        "# Lesion-draw noise of the validation AUROC, and lesioned copies per held-out slice",
        "",
        f"Written by `python benchmarks/validation_noise.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: MAMA Net (compact), {settings['size']} x {settings['size']}, "
        f"{settings['iterations']} iterations, seeds {settings['seeds']}, the four settings of `input_noise.py` "
        f"(`training#input_noise`). Each kept network scores its held-out normal slices and {settings['draws']} "
        "independent draws of SIMULATED lesions (seeds 1000 + d), 8 lesioned copies of every slice per draw; the "
        "validation AUROC of a draw with K copies uses the first K (as `data#validation_lesion_copies: K` does). "
        "*auto* = ceil(200 / held-out normals), 1-8. Predictions, written before the run: "
        "`validation_noise_prediction.txt`. Rows: `" + Path(settings["output"]).name + "`.",
        "",
        "## The lesion draw's noise: sd over draws of one network's validation AUROC",
        "",
        "Mean over the runs (networks) of each task of the sd over draws; in brackets the range over runs.",
        "",
        "| task | runs | 1 copy | 2 copies | 4 copies | auto | 8 copies | auto / 1 copy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task in tasks:
        mine = [r for r in rows if r["task"] == task]
        sds = {k: [float(np.std(r["validation_draws"][k], ddof=1)) for r in mine] for k in ("1", "2", "4", "8")}
        sds["auto"] = [float(np.std(r["validation_draws"][_auto(r)], ddof=1)) for r in mine]
        cell = {k: f"{np.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for k, v in sds.items()}
        auto = _auto(mine[0])
        lines.append(f"| {NAME[task]} ({mine[0]['n_val_normal']} held-out normals) | {len(mine)} | {cell['1']} | {cell['2']} | {cell['4']} | {cell['auto']} (K = {auto}) | "
                     f"{cell['8']} | {np.mean(sds['auto']) / np.mean(sds['1']):.2f} |")  # fmt: skip
    lines += [
        "",
        "## Each setting against the default, draws averaged (auto copies)",
        "",
        "Validation AUROC of MAMA Net, mean over seeds of the mean over draws, ± the sd over seeds (the networks' own "
        "spread, which copies do not remove); the difference from *default* paired over seeds; beside it the "
        "same with one copy of one draw (draw 0, as a single validation set would be).",
        "",
        "| task | setting | auto copies, draws averaged | minus default (paired) | one copy, draw 0 | minus default |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for task in tasks:
        mine = [r for r in rows if r["task"] == task]
        base = {r["seed"]: r for r in mine if r["variant"] == SWEEP.baseline}
        for name in SWEEP.settings:
            group = sorted((r for r in mine if r["variant"] == name), key=lambda r: r["seed"])
            if not group:
                continue
            averaged = [_averaged(r) for r in group]
            single = [r["validation_draws"]["1"][0] for r in group]
            ref_single = [base[r["seed"]]["validation_draws"]["1"][0] for r in group if r["seed"] in base]
            paired = "–" if name == SWEEP.baseline else settings_sweep.paired(group, list(base.values()), _averaged)
            single_diff = "–" if name == SWEEP.baseline else f"{np.mean(single) - np.mean(ref_single):+.3f}"
            lines.append(f"| {task} | {name} | {rows_file.mean_sd(averaged)} | {paired} | {np.mean(single):.3f} | {single_diff} |")
    lines += _tracking(rows, tasks)
    return "\n".join(lines) + "\n"


def _tracking(rows: list[dict], tasks: list[str]) -> list[str]:
    """Does the validation AUROC rank the networks as the test does? Spearman's rho over every run
    of a task (all seeds and settings) between a validation AUROC and the test image AUROC: draws
    averaged with the auto copies, the product's own validation (``val_auroc``: auto copies, the
    seed's draw), and one copy of one draw (mean and range over the draws). Added after the run;
    not among the predictions."""
    from scipy.stats import spearmanr

    lines = ["", "## Does validation rank the networks as the test does?", "",
             "Spearman's rho between a validation AUROC and the test image AUROC over every run of a task (all seeds and "
             "settings; p from scipy's `spearmanr`). Added after the run, not predicted.", "",
             "| task | runs | auto copies, draws averaged | the product's validation (auto copies, the seed's draw) | one copy, one draw: mean rho (range over draws) |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for task in tasks:
        mine = [r for r in rows if r["task"] == task]
        test = [r["auroc_percentile"] for r in mine]
        averaged = spearmanr([_averaged(r) for r in mine], test)
        product = spearmanr([r["val_auroc"] for r in mine], test)
        singles = [spearmanr([r["validation_draws"]["1"][d] for r in mine], test)[0] for d in range(len(mine[0]["validation_draws"]["1"]))]
        lines.append(f"| {task} | {len(mine)} | {averaged[0]:+.2f} (p = {averaged[1]:.2g}) | {product[0]:+.2f} (p = {product[1]:.2g}) | "
                     f"{np.mean(singles):+.2f} ({min(singles):+.2f} to {max(singles):+.2f}) |")  # fmt: skip
    return lines


def _draws_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--draws", type=int, default=DRAWS, help=f"independent lesion draws per network (default {DRAWS})")


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, _jobs, ["mamanet_compact"], _draws_argument)


if __name__ == "__main__":
    raise SystemExit(main())
