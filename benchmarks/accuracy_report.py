"""Tables, paired tests and figures of ``benchmarks/accuracy.py``: ``docs/accuracy.md``."""

from __future__ import annotations

import datetime
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import cpu_model

NAMES = {"mamanet_compact": "MAMA Net (compact)", "autoencoder": "autoencoder", "memae": "MemAE", "mamanet_paper": "MAMA Net (paper)"}
TASKS = {
    "lidc": "LIDC-IDRI-0001, fair split: REAL nodules (11 slices) vs matched normals (28)",
    "brain": "brain T1 (MNI152): SIMULATED lesions on 11 held-out slices, bright and dark",
}
#: the same tasks, named in the ablation tables' headings
TITLES_SHORT = {"lidc": "LIDC", "brain": "brain T1, SIMULATED lesions"}


def _ms(values: list[float | None]) -> str:
    v = np.array([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return "–"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if v.size > 1 else f"{v.mean():.3f}"


def _group(rows: list[dict], variant: str = "main") -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        if row["variant"] == variant:
            groups[(row["task"], row["network"])].append(row)
    for key in groups:
        groups[key].sort(key=lambda r: r["seed"])
    return groups


def _paired(a: list[dict], b: list[dict], key: str) -> str:
    """Two-sided paired t-test over the seeds both have: mean difference and p."""
    from scipy.stats import ttest_rel

    by_seed = {r["seed"]: r for r in b}
    pairs = [(r[key], by_seed[r["seed"]][key]) for r in a if r["seed"] in by_seed and r[key] is not None and by_seed[r["seed"]][key] is not None]
    if len(pairs) < 2:
        return "–"
    x, y = np.array(pairs, dtype=float).T
    diff = float((x - y).mean())
    if np.allclose(x - y, (x - y)[0]):
        return f"{diff:+.3f} (constant difference)"
    return f"{diff:+.3f}, p = {float(ttest_rel(x, y).pvalue):.3f}"


def _main_table(groups, task: str) -> list[str]:
    brain = task == "brain"
    head = ["model", "image AUROC, p99 in body (default)", "image AUROC, max", "image AUROC, mean in body", "image AUROC, paper e_u"]
    head += ["bright AUROC", "dark AUROC"] if brain else []
    head += ["pixel AUROC (in body)", "sens / spec / F1 at calibrated threshold", "validation AUROC (SIMULATED tissue lesions)",
             "normal MSE: validation / test", "slots used / N (perplexity)", "train s"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for net in NAMES:
        rows = groups.get((task, net), [])
        if not rows:
            continue
        cells = [NAMES[net]] + [_ms([r[f"auroc_{k}"] for r in rows]) for k in ("percentile", "max", "mean", "paper_mean_error")]
        if brain:
            cells += [_ms([r.get("bright_auroc_percentile") for r in rows]), _ms([r.get("dark_auroc_percentile") for r in rows])]
        op = " / ".join(_ms([r[k] for r in rows]) for k in ("sensitivity", "specificity", "f1"))
        slots = "–" if not rows[0]["num_slots"] else (
            f"{np.mean([r['slots_used'] for r in rows]):.0f} / {rows[0]['num_slots']} ({np.mean([r['slot_perplexity'] for r in rows]):.0f})"
        )  # fmt: skip
        cells += [_ms([r["pixel_auroc"] for r in rows]), op, _ms([r["val_auroc"] for r in rows]), _normal_mse(rows), slots,
                  f"{np.mean([r['train_seconds'] for r in rows]):.0f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _normal_mse(rows: list[dict]) -> str:
    """Mean squared error on the validation normals / on the test normals: near 1 when validation
    normals are as new to the model as the test's; far above 1 (test / validation) when they leak."""
    return f"{np.mean([r['val_normal_mse'] for r in rows]):.4f} / {np.mean([r['test_normal_mse'] for r in rows]):.4f}"


def _tests_table(groups, task: str) -> list[str]:
    """MAMA Net (compact) minus each baseline; where the paper's configuration ran too, it minus
    each of the others (rows named "<other>, by MAMA Net (paper)")."""
    lines = ["| MAMA Net minus | image AUROC (default score) | pixel AUROC |", "| --- | --- | --- |"]
    for mama_net, others, suffix in (("mamanet_compact", ("autoencoder", "memae"), ""),
                                     ("mamanet_paper", ("mamanet_compact", "autoencoder", "memae"), f", by {NAMES['mamanet_paper']}")):  # fmt: skip
        mama = groups.get((task, mama_net), [])
        for other in others:
            rows = groups.get((task, other), [])
            if mama and rows:
                lines.append(f"| {NAMES[other]}{suffix} | {_paired(mama, rows, 'auroc_percentile')} | {_paired(mama, rows, 'pixel_auroc')} |")
    return lines


def _ranking(groups, task: str) -> str:
    nets = [n for n in NAMES if groups.get((task, n))]
    val = sorted(nets, key=lambda n: -np.nanmean([r["val_auroc"] or np.nan for r in groups[(task, n)]]))
    test = sorted(nets, key=lambda n: -np.mean([r["auroc_percentile"] for r in groups[(task, n)]]))
    same = "the same order" if val == test else "a different order"
    return (f"Validation (SIMULATED tissue lesions in held-out training slices) ranks the models "
            f"{' > '.join(NAMES[n] for n in val)}; the test ranks them {' > '.join(NAMES[n] for n in test)}: {same}.")  # fmt: skip


#: variants ``training#restarts: K`` and ``training#ensemble: K`` (benchmarks/accuracy.py's MULTI_RUN):
#: every model, reported apart from the ablations, beside one run of the same seeds
RESTARTS_PREFIX = "training#restarts"
ENSEMBLE_PREFIX = "training#ensemble"
MULTI_RUN_PREFIXES = (ENSEMBLE_PREFIX, RESTARTS_PREFIX)
MULTI_RUN_TEXT = {
    ENSEMBLE_PREFIX: "`training#ensemble: K`: K networks trained from seeds s, s + 1, ... (one validation set, drawn with seed s), "
    "scored with the mean of their reconstructions (threshold calibrated on the ensemble); mean ± sd over the start seeds s, "
    "beside one run from the same seeds:",
    RESTARTS_PREFIX: "`training#restarts: K`: K networks trained from seeds s, s + 1, ... (one validation set, drawn with seed s), "
    "the one of lowest error on the held-out normal validation slices kept; mean ± sd over the start seeds s, beside one "
    "run from the same seeds:",
}


def _is_ablation(row: dict) -> bool:
    """A MAMA Net ablation row: neither a main run nor a restarts / ensemble run."""
    return row["variant"] != "main" and not row["variant"].startswith(MULTI_RUN_PREFIXES)


def _seed_selection_table(groups, task: str) -> list[str]:
    """Which validation number tells the better of several seeds of one model: Spearman's rho over
    seeds between the test AUROC and (a) the validation AUROC on SIMULATED lesions, (b) minus the
    error on the held-out normal validation slices (no lesion needed); and the test AUROC of the
    seed each would keep, beside the mean and the best. Normal data only decide (b)."""
    from scipy.stats import spearmanr

    head = ["model", "rho(validation AUROC, test)", "rho(- validation normal MSE, test)",
            "test AUROC: mean / seed kept by validation AUROC / seed kept by lowest normal MSE / best seed"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for net in NAMES:
        rows = [r for r in groups.get((task, net), []) if r.get("val_auroc") is not None and r.get("val_normal_mse") is not None]
        if len(rows) < 3:
            continue
        test = [r["auroc_percentile"] for r in rows]
        rho_val = spearmanr([r["val_auroc"] for r in rows], test)
        rho_mse = spearmanr([-r["val_normal_mse"] for r in rows], test)
        by_val = max(rows, key=lambda r: r["val_auroc"])["auroc_percentile"]
        by_mse = min(rows, key=lambda r: r["val_normal_mse"])["auroc_percentile"]
        lines.append(f"| {NAMES[net]} | {rho_val[0]:+.2f} (p = {rho_val[1]:.2f}) | {rho_mse[0]:+.2f} (p = {rho_mse[1]:.2f}) | {np.mean(test):.3f} / {by_val:.3f} / {by_mse:.3f} / {max(test):.3f} |")
    return lines if len(lines) > 2 else []


def _multi_run_table(rows: list[dict], task: str, prefix: str = RESTARTS_PREFIX) -> list[str]:
    """Every model with ``training#restarts`` or ``training#ensemble`` (``prefix``; variants
    ``<prefix>: K``) beside its one-run rows of the same seeds: image AUROC, paired t-test (the
    variant minus one run), pixel AUROC, held-out normal error."""
    variants = sorted({r["variant"] for r in rows if r["task"] == task and r["variant"].startswith(prefix)})
    lines, main = [], _group(rows)
    short = prefix.split("#")[1]
    for variant in variants:
        head = ["model", "one run: image AUROC", f"{variant}: image AUROC", "difference (paired t-test over start seeds)",
                f"pixel AUROC: one run / {short}", f"held-out normal MSE: one run / {short}"]  # fmt: skip
        lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        more = _group(rows, variant)
        for net in NAMES:
            kept = more.get((task, net), [])
            seeds = {r["seed"] for r in kept}
            single = [r for r in main.get((task, net), []) if r["seed"] in seeds]
            if not kept or not single:
                continue
            lines.append(
                f"| {NAMES[net]} | {_ms([r['auroc_percentile'] for r in single])} | {_ms([r['auroc_percentile'] for r in kept])} | "
                f"{_paired(kept, single, 'auroc_percentile')} | {np.mean([r['pixel_auroc'] for r in single]):.3f} / "
                f"{np.mean([r['pixel_auroc'] for r in kept]):.3f} | {np.mean([r['val_normal_mse'] for r in single]):.4f} / "
                f"{np.mean([r['val_normal_mse'] for r in kept]):.4f} |"
            )  # fmt: skip
    return lines


REDUCTION_NAMES = {"percentile": "p99 in body (default)", "max": "max", "mean": "mean in body", "paper_mean_error": "paper e_u"}


def _reduction_table(groups, task: str) -> list[str]:
    """Validation against test AUROC of every score reduction: would validation have picked the test's best?"""
    head = ["model"] + [f"{name}: validation / test" for name in REDUCTION_NAMES.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for net in NAMES:
        rows = groups.get((task, net), [])
        if not rows or any(f"val_auroc_{k}" not in r for r in rows for k in REDUCTION_NAMES):
            continue
        cells = [f"{np.mean([r[f'val_auroc_{k}'] for r in rows]):.3f} / {np.mean([r[f'auroc_{k}'] for r in rows]):.3f}" for k in REDUCTION_NAMES]
        lines.append("| " + " | ".join([NAMES[net]] + cells) + " |")
    return lines if len(lines) > 2 else []


def _ablation_table(rows: list[dict], seeds: list[int], task: str = "lidc") -> list[str]:
    brain = task == "brain"
    extra = " bright AUROC | dark AUROC |" if brain else ""
    lines = [f"| MAMA Net variant ({TITLES_SHORT[task]}) | image AUROC (default score) |{extra} pixel AUROC | validation AUROC | "
             "specificity at calibrated threshold | normal MSE: validation / test | slots used / N |",
             "| --- | --- |" + (" --- | --- |" if brain else "") + " --- | --- | --- | --- | --- |"]  # fmt: skip
    variants: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if _is_ablation(row) and row["network"] == "mamanet_compact" and row["seed"] in seeds and row["task"] == task:
            variants[row["variant"]].append(row)
    for name, group in variants.items():
        slots = f"{np.mean([r['slots_used'] for r in group]):.0f} / {group[0]['num_slots']}"
        kinds = "".join(f" {_ms([r[f'{k}_auroc_percentile'] for r in group])} |" for k in ("bright", "dark")) if brain else ""
        lines.append(f"| {name} | {_ms([r['auroc_percentile'] for r in group])} |{kinds} {_ms([r['pixel_auroc'] for r in group])} | "
                     f"{_ms([r['val_auroc'] for r in group])} | {_ms([r['specificity'] for r in group])} | {_normal_mse(group)} | {slots} |")  # fmt: skip
    return lines


def _figures(rows: list[dict], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE
    from sklearn.metrics import roc_curve

    written = []
    for task in TASKS:
        kept = [r for r in rows if r["task"] == task and "_scores" in r]
        if not kept:
            continue
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        for r in sorted(kept, key=lambda r: r["network"]):
            fpr, tpr, _ = roc_curve(r["_scores"]["label"], r["_scores"]["score"])
            ax.plot(fpr, tpr, label=f"{NAMES[r['network']]} ({r['auroc_percentile']:.2f})")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=f"{task}: ROC, seed {kept[0]['seed']}")
        ax.legend(loc="lower right", fontsize=8)
        written.append(_save(fig, folder / f"roc_{task}.png"))
        mama = [r for r in kept if r["network"] == "mamanet_compact" and r.get("_latent")]
        if mama:
            z, y = np.array(mama[0]["_latent"]["z"]), np.array(mama[0]["_latent"]["label"])
            emb = TSNE(n_components=2, perplexity=min(10.0, (len(z) - 1) / 3), random_state=0, init="pca").fit_transform(z)
            fig, ax = plt.subplots(figsize=(4.5, 4.5))
            for label, colour, name in ((0, "tab:blue", "normal"), (1, "tab:red", "anomalous")):
                ax.scatter(*emb[y == label].T, s=14, c=colour, label=name)
            ax.set(title=f"{task}: t-SNE of MAMA Net's latent z (seed {mama[0]['seed']})", xticks=[], yticks=[])
            ax.legend(fontsize=8)
            written.append(_save(fig, folder / f"tsne_{task}.png"))
    return written


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


#: the heading under which notes are written by hand after a run; ``--report-only`` keeps them
NOTES_HEADING = "## Notes on this run"


def _hand_notes(path: Path) -> list[str]:
    """The lines of ``path`` from :data:`NOTES_HEADING` to the end (none if it has no such section)."""
    if not path.is_file():
        return []
    text = path.read_text().splitlines()
    start = next((i for i, line in enumerate(text) if line.startswith(NOTES_HEADING)), None)
    return [] if start is None else text[start:]


def _machine_text(settings: dict[str, Any]) -> str:
    """The machine of a run: its CPU and cores, and its GPU where it trained on one (saved settings
    of runs before 2026-12-08 name neither the cores nor a GPU: they ran on this CPU-only machine)."""
    cpu = f"{settings.get('cpu') or cpu_model()} ({settings.get('cores') or os.cpu_count()} cores"
    if not settings.get("gpu"):
        return cpu + ", no GPU)"
    return f"one {settings['gpu']} GPU ({settings['workers']} runs at a time, bf16 autocast) with {cpu})"


def write_report(rows: list[dict], settings: dict[str, Any], out: Path, seconds: float, fresh: bool = True) -> Path:
    """``out/accuracy.md``, ``out/accuracy/results.json`` and the PNGs beside it. A new run's report
    (``fresh``) starts without notes (those of the previous run described other rows); rewritten
    from ``results.json`` (``fresh=False``, ``--report-only``) it keeps the figures of that run and
    the notes written by hand under :data:`NOTES_HEADING`."""
    folder = out / "accuracy"
    notes: list[str] = []
    if fresh:
        figures = _figures(rows, folder)
        plain = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        (folder / "results.json").write_text(json.dumps({"settings": settings, "rows": plain}, indent=1))
    else:  # rewritten from results.json (--report-only): the figures and hand notes of that run stay
        figures = sorted(p.name for p in folder.glob("*.png"))
        notes = _hand_notes(out / "accuracy.md")
    groups = _group(rows)
    lines = [
        "# Detection accuracy: MAMA Net, the autoencoder and MemAE side by side",
        "",
        f"Written by `python benchmarks/accuracy.py{' --quick' if settings['quick'] else ''}` on "
        f"{settings.get('date') or datetime.date.today().isoformat()}, {_machine_text(settings)}, {f'in {seconds / 60:.0f} min' if seconds else 'run time not recorded'}. "
        f"Input {settings['size']} x {settings['size']}, {settings['iterations']} iterations of batch 8, "
        f"seeds {settings['seeds']}; mean ± sd over seeds. Every run goes through `train_model` (the checkpoint kept: "
        "lowest reconstruction error on the held-out normal validation slices, `training#checkpoint: normal_error`; "
        "threshold = 95th percentile of held-out normal validation scores) and `evaluate_items`: "
        "no number below was chosen on a test slice. Raw rows: `accuracy/results.json`."
        + (f" Note: {settings['note']}." if settings.get("note") else "")
        + (f" Not started within `--budget {settings['budget']:.0f}` s ({len(settings['skipped'])} runs): {'; '.join(settings['skipped'])}."
           if settings.get("skipped") else ""),
        "",
        "How to read it:",
        "",
        "- **Real or simulated.** LIDC: the anomalies are REAL nodules outlined by four radiologists; the normals are "
        "slices 5-15 mm from any mark; the models train on two patients' normal slices (LIDC-IDRI-0001's slices >= 15 mm "
        "from any mark and a second, unlabelled chest CT, `mama_monai/demo_data/PROVENANCE.md`). Brain: the anomalies are SIMULATED (DESIGN.md §7's blurred disks, +-30-50 % of "
        "the local intensity) on real held-out slices; bright and dark are reported apart.",
        "- **Scores.** Default: the 99th percentile of the 2-px-smoothed squared error inside the body (input > 0.02, "
        "eroded 2 px); `max` and `mean in body` are other reductions of the same map; `paper e_u` is the mean squared "
        "error of the whole image (the paper's Eq. 14 input).",
        "- **Operating point.** Sensitivity / specificity / F1 use the threshold stored in the model file: the 95th "
        "percentile of the scores of the held-out normal validation slices.",
        "- **Validation AUROC** is the kept network's AUROC on SIMULATED 'tissue' lesions in held-out training slices "
        "(it no longer selects the checkpoint; the ablation 'checkpoint by validation AUROC' measures the rule it was). "
        "Compare its ranking with the test's: where they differ, validation cannot be trusted to pick models for that task.",
        "- **Uncertainty.** With 11 anomalous test slices one AUROC has a standard error near 0.08; the paired t-tests "
        "over 5 seeds measure training randomness only, not the sampling of patients.",
        "",
    ]
    for task, title in TASKS.items():
        if not any(k[0] == task for k in groups):
            continue
        lines += [f"## {title}", "", *_main_table(groups, task), "", _ranking(groups, task), "",
                  "Paired two-sided t-tests over seeds (mean difference, p):", "", *_tests_table(groups, task), ""]  # fmt: skip
        reductions = _reduction_table(groups, task)
        if reductions:
            lines += ["Each score reduction on validation (SIMULATED lesions, the selected checkpoint) and on the test, mean over "
                      "seeds: the default is kept unless validation prefers another one.", "", *reductions, ""]  # fmt: skip
        selection = _seed_selection_table(groups, task)
        if selection:
            lines += ["Which validation number tells the better seed: Spearman's rho over the seeds above (p from scipy's "
                      "`spearmanr`; with 5 seeds even rho = 0.9 has an exact two-sided p of 0.08), so a rule is only "
                      "trusted where it holds run after run:", "", *selection, ""]  # fmt: skip
        for prefix in MULTI_RUN_PREFIXES:
            table = _multi_run_table(rows, task, prefix)
            if table:
                lines += [MULTI_RUN_TEXT[prefix], "", *table, ""]
        lines += [f"![ROC]({'accuracy/' + f})" for f in figures if f == f"roc_{task}.png"]
        lines += [f"![t-SNE]({'accuracy/' + f})" for f in figures if f == f"tsne_{task}.png"]
        lines.append("")
    for task in TASKS:
        if any(_is_ablation(r) and r["task"] == task for r in rows):
            lines += [f"## MAMA Net ablations ({TITLES_SHORT[task]}, {settings['ablation_size']} x {settings['ablation_size']}, seeds "
                      + ", ".join(map(str, settings["ablation_seeds"])) + ")", "",
                      *_ablation_table(rows, settings["ablation_seeds"], task), ""]  # fmt: skip
    if notes:
        while lines and not lines[-1]:
            lines.pop()
        lines += ["", *notes]
    path = out / "accuracy.md"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
