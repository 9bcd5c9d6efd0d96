"""A sweep of one training setting (``augmentation.py``: ``training#augment``; ``input_noise.py``:
``training#input_noise``): every (task, network, seed, setting) trained and scored by
``benchmarks/accuracy.py``'s ``run_one`` (the product's path: ``train_model``, checkpoint of
lowest held-out normal error, threshold from held-out normals), and the summary page of its rows:
test and validation side by side, each setting against the sweep's baseline paired over seeds.

LIDC rows that carry ``unlabelled_series`` (a chest CT no model trained on, scored by each model
file: ``augmentation.py``'s Lung-PET-CT-Dx A0001) get its columns and MAMA Net's per-seed table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import rows_file
from benchmarks.accuracy import MODELS
from benchmarks.accuracy_report import NAMES

#: (row key, column heading) of the summary tables
COLUMNS = (
    ("auroc_percentile", "test image AUROC"),
    ("pixel_auroc", "test pixel AUROC"),
    ("val_auroc", "validation AUROC (SIMULATED)"),
    ("val_normal_mse", "held-out normal MSE"),
)


@dataclass(frozen=True)
class Sweep:
    """``key``: the config key swept; ``settings``: name -> its value (the first is the baseline);
    ``title``, ``script`` and ``prediction``: the page's heading, the script that wrote it and the
    file of the predictions written before the run; ``note``: what *unlabelled* means, if used."""

    key: str
    settings: dict[str, Any]
    title: str
    script: str
    prediction: str
    note: str = ""

    @property
    def baseline(self) -> str:
        return next(iter(self.settings))


def plan(args: argparse.Namespace, sweep: Sweep, series: str | None = None) -> list[dict[str, Any]]:
    """The jobs of ``accuracy.run_all`` (MAMA Net's first: they take longest); ``series``: a DICOM
    folder every LIDC model file also scores (``unlabelled_series`` in its row)."""
    base = {"size": args.size, "iterations": args.iterations, "interval": min(50, args.iterations)}
    jobs = [
        dict(base, task=task, network=net, seed=seed, variant=name, overrides={sweep.key: setting},
             **({"series": series} if task == "lidc" and series else {}))
        for task in args.tasks for net in args.models for seed in args.seeds for name, setting in sweep.settings.items()
    ]  # fmt: skip
    return sorted(jobs, key=lambda j: -(4 if j["network"] == "mamanet_compact" else 1))


def paired(new: list[dict], old: list[dict], value: Callable[[dict], float]) -> str:
    """``value`` of the rows ``new`` minus that of ``old``, paired by seed (the seeds both hold):
    ``+mean difference, p = ...`` of a two-sided paired t-test, ``–`` with fewer than two pairs."""
    from mama_monai.evaluation import paired_t_test

    by_seed = {r["seed"]: value(r) for r in old}
    pairs = [(value(r), by_seed[r["seed"]]) for r in new if r["seed"] in by_seed]
    if len(pairs) < 2:
        return "–"
    t = paired_t_test([a for a, _ in pairs], [b for _, b in pairs])
    return f"{t.mean_difference:+.3f}, p = {t.p:.2g}"


def _unlabelled(rows: list[dict]) -> tuple[str, str]:
    flagged = [r["unlabelled_series"]["slices_at_or_above_threshold"] for r in rows]
    median = [r["unlabelled_series"]["median_over_threshold"] for r in rows]
    return f"{np.mean(flagged):.1f} of {rows[0]['unlabelled_series']['slices']}", f"{np.mean(median):.2f}"


def _validation_table(rows: list[dict], sweep: Sweep) -> list[str]:
    """Validation AUROC per setting and task minus the baseline's (means over seeds): MAMA Net
    and the mean over the networks in the rows, the inputs of a decision made on validation."""
    tasks = [t for t in ("lidc", "brain") if any(r["task"] == t for r in rows)]
    nets = [n for n in MODELS if any(r["network"] == n for r in rows)]

    def mean(task: str, name: str, net: str | None) -> float | None:
        vals = [r["val_auroc"] for r in rows if r["task"] == task and r["variant"] == name and net in (None, r["network"])]
        return float(np.mean(vals)) if vals else None

    def cell(task: str, name: str, net: str | None) -> str:
        if net is None:  # mean over networks of each network's mean
            per = [mean(task, name, n) for n in nets]
            base = [mean(task, sweep.baseline, n) for n in nets]
            if None in per or None in base:
                return "–"
            value, ref = float(np.mean(per)), float(np.mean(base))
        else:
            value, ref = mean(task, name, net), mean(task, sweep.baseline, net)
            if value is None or ref is None:
                return "–"
        return f"{value:.3f}" if name == sweep.baseline else f"{value:.3f} ({value - ref:+.3f})"

    label = {"lidc": "LIDC", "brain": "brain"}
    head = [f"{NAMES['mamanet_compact']}, {label[t]}" for t in tasks] + [f"mean of the {len(nets)} networks, {label[t]}" for t in tasks]
    lines = ["", f"Validation AUROC (SIMULATED lesions in held-out normal slices), mean over seeds, and its difference from *{sweep.baseline}*:", "",
             "| setting | " + " | ".join(head) + " |", "|" + " --- |" * (len(head) + 1)]  # fmt: skip
    for name in sweep.settings:
        cells = [cell(t, name, "mamanet_compact") for t in tasks] + [cell(t, name, None) for t in tasks]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def summary(rows: list[dict], settings: dict, sweep: Sweep) -> str:
    """The Markdown page of a sweep's rows."""
    lines = [
        f"# {sweep.title}",
        "",
        f"Written by `python benchmarks/{sweep.script}` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']}; every run trained and scored as `benchmarks/accuracy.py` does (checkpoint of lowest "
        f"held-out normal error, threshold from held-out normals). Settings (`{sweep.key}`): "
        + "; ".join(f"*{n}* `{json.dumps(s)}`" for n, s in sweep.settings.items())
        + ". Mean ± sd over seeds; differences are paired over seeds (two-sided t-test). Predictions and the decision rule, "
        f"written before the run: `{sweep.prediction}`. Rows: `" + Path(settings["output"]).name + "`.",
    ]
    if sweep.note:
        lines += ["", sweep.note]
    for task in ("lidc", "brain"):
        mine = [r for r in rows if r["task"] == task]
        if not mine:
            continue
        lidc = task == "lidc"
        unlabelled = lidc and all("unlabelled_series" in r for r in mine)
        extra = (["A0001: slices at or above threshold", "A0001: median score / threshold"] if unlabelled else []) if lidc else ["bright AUROC", "dark AUROC"]
        head = [h for _, h in COLUMNS] + extra
        lines += ["", f"## {'LIDC (REAL nodules)' if lidc else 'brain T1 (SIMULATED lesions)'}", "",
                  "| model | setting | " + " | ".join(head) + f" | test image AUROC minus {sweep.baseline} (paired) |",
                  "|" + " --- |" * (len(head) + 3)]  # fmt: skip
        for net in MODELS:
            base = [r for r in mine if r["network"] == net and r["variant"] == sweep.baseline]
            for name in sweep.settings:
                group = sorted((r for r in mine if r["network"] == net and r["variant"] == name), key=lambda r: r["seed"])
                if not group:
                    continue
                cells = [rows_file.mean_sd([r[k] for r in group], 4 if k.endswith("mse") else 3) for k, _ in COLUMNS]
                if unlabelled:
                    cells += list(_unlabelled(group))
                elif not lidc:
                    cells += [rows_file.mean_sd([r["bright_auroc_percentile"] for r in group]), rows_file.mean_sd([r["dark_auroc_percentile"] for r in group])]
                diff = "–" if name == sweep.baseline else paired(group, base, lambda r: r["auroc_percentile"])
                lines.append(f"| {NAMES.get(net, net)} | {name} | " + " | ".join(cells) + f" | {diff} |")
        if unlabelled and any(r["network"] == "mamanet_compact" for r in mine):
            lines += ["", "MAMA Net, A0001 median slice score over the threshold, per seed (the decision rule's (a)):", "",
                      "| setting | " + " | ".join(f"seed {s}" for s in settings["seeds"]) + f" | lower than {sweep.baseline} in |",
                      "|" + " --- |" * (len(settings["seeds"]) + 2)]  # fmt: skip
            by = {(r["variant"], r["seed"]): r["unlabelled_series"]["median_over_threshold"] for r in mine if r["network"] == "mamanet_compact"}
            for name in sweep.settings:
                vals = [by.get((name, s)) for s in settings["seeds"]]
                lower = sum(1 for s in settings["seeds"] if (name, s) in by and (sweep.baseline, s) in by and by[(name, s)] < by[(sweep.baseline, s)])
                lines.append(f"| {name} | " + " | ".join("–" if v is None else f"{v:.2f}" for v in vals) + " | " + ("–" if name == sweep.baseline else f"{lower} of {len(settings['seeds'])}") + " |")
    lines += _validation_table(rows, sweep)
    return "\n".join(lines) + "\n"
