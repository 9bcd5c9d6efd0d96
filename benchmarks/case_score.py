"""Whole volumes scored as cases: does one odd slice decide the case? (``docs/accuracy/case_score.md``)

``mama-monai score`` gives a volume the maximum of its slice scores over the slices that show as
much body as the model's validation normals (``scoring#slice_coverage``, default 0.5;
``mama_monai/evaluation/case_score.py``); before, over every slice. This script measures the
difference on the embedded data, through the product's own path (``train_model`` as
``benchmarks/accuracy.py`` runs it, then ``score_cases`` on whole volumes):

- brain: the real MNI152 T1 volume (78 slices) and its copy with SIMULATED lesions on the 11 test
  slices, scored as two cases by models trained on the brain task's training slices. The lesion
  volume should score above the normal one; the table says whether it does under each rule and
  which slice decided (train / test / excluded in the demo's slice table: "excluded" are mostly
  the two ends of the head, which no model saw).
- lidc: the whole LIDC-IDRI-0001 CT (133 slices), which holds real nodules on slices 66-94, by the
  LIDC task's models: does the slice that decides the case lie on a nodule?

Each case is scored once; the rule without the coverage check is the maximum of the same slice
scores (``scores.json`` keeps them all).

    python benchmarks/case_score.py --output docs/accuracy/case_score.json   # ~12 min on 2 CPU cores
    python benchmarks/case_score.py --output docs/accuracy/case_score.json --report-only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rows_file  # noqa: E402
from benchmarks.accuracy import MODELS, _task_overrides  # noqa: E402


def _slice_sets(task: str) -> dict[int, str]:
    from mama_monai.data.demo import demo_slice_table

    rows = demo_slice_table(task)
    if task == "lidc":
        return {r["slice_index"]: ("nodule" if r["n_readers"] > 0 else r["split"]) for r in rows}
    return {r["slice_index"]: r["split"] for r in rows}


def run_one(task: str, network: str, seed: int, size: int, iterations: int) -> dict:
    import torch

    from mama_monai.data.demo import load_demo_brain, load_demo_ct
    from mama_monai.workflows.config import workflow_config
    from mama_monai.workflows.distributed import init_distributed
    from mama_monai.workflows.scoring import score_cases
    from mama_monai.workflows.splits import prepare_splits
    from mama_monai.workflows.training import train_model

    torch.set_num_threads(1)
    over = dict(_task_overrides(task, size, iterations, min(50, iterations)), seed=seed)
    volumes = [load_demo_brain()["image"], load_demo_brain()["simulated_image"]] if task == "brain" else [load_demo_ct()["image"]]
    sets = _slice_sets(task)
    with tempfile.TemporaryDirectory() as tmp:
        parser = workflow_config(network, overrides=over)
        splits = prepare_splits(parser)
        result = train_model(parser, splits["train"], splits["val"], tmp, init_distributed("cpu"), progress=False)
        report = score_cases(result.model_path, volumes, Path(tmp) / "scores")
    cases = []
    for case in report["cases"]:
        scores = np.asarray(case["slice_scores"])
        top_all = int(np.argmax(scores))
        cases.append({
            "score_counted": case["score"], "slice_counted": case["max_slice"], "set_counted": sets.get(case["max_slice"], "?"),
            "score_every": float(scores[top_all]), "slice_every": top_all, "set_every": sets.get(top_all, "?"),
            "not_counted": case["slices_not_counted"], "label": case["label"], "threshold": case["threshold"],
        })  # fmt: skip
    return {"task": task, "network": network, "seed": seed, "floor": result.threshold["slice_coverage"]["floor"], "cases": cases}


def _sets(sets: list[str]) -> str:
    return ", ".join(f"{s} {sets.count(s)}" for s in sorted(set(sets)))


def summary(rows: list[dict], settings: dict) -> str:
    """``case_score.md``: what decided each case under each rule, per model, and every run."""
    lines = [
        "# Whole volumes scored as cases: the slice that decides",
        "",
        f"Written by `python benchmarks/case_score.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min: {settings['size']} x {settings['size']}, {settings['iterations']} iterations, "
        f"seeds {settings['seeds']} (the time includes other jobs sharing the cores), trained as `benchmarks/accuracy.py` trains (held-out normal error keeps the checkpoint), "
        "then `score_cases` on whole volumes. *Every slice*: the case score is the maximum of all slice scores (the rule "
        "until 2026-12-02); *counted*: over the slices with at least `scoring#slice_coverage` (0.5) times the smallest "
        "body fraction of the validation normals (`mama_monai/evaluation/case_score.py`). Rows: `case_score.json`.",
        "",
        "Brain: two cases, the real MNI152 T1 (78 slices) and its copy with SIMULATED lesions on the 11 test slices; "
        "the slice that decided is named by the demo's slice table (train / test / excluded: neither trained on nor "
        "tested, the two ends of the head and the slice beside each test slice). LIDC: the whole LIDC-IDRI-0001 CT (133 slices; "
        "its training slices included), where 'nodule' names the slices any of the four readers outlined.",
        "",
        "| task | model | runs | case decided by: every slice | case decided by: counted slices | lesion volume scored above the normal one: every slice / counted |",
        "| --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for task in ("brain", "lidc"):
        for network in MODELS:
            mine = [r for r in rows if r["task"] == task and r["network"] == network]
            if not mine:
                continue
            every = _sets([c["set_every"] for r in mine for c in r["cases"]])
            counted = _sets([c["set_counted"] for r in mine for c in r["cases"]])
            order = "–"
            if task == "brain":
                above_every = sum(r["cases"][1]["score_every"] > r["cases"][0]["score_every"] for r in mine)
                above_counted = sum(r["cases"][1]["score_counted"] > r["cases"][0]["score_counted"] for r in mine)
                order = f"{above_every} / {above_counted} of {len(mine)}"
            lines.append(f"| {task} | {network} | {len(mine)} | {every} | {counted} | {order} |")
    lines += ["", "Every run (score, deciding slice and its set; slices not counted):", "",
              "| task | model | seed | floor | case | every slice | counted | not counted |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        names = ("normal T1", "T1 with lesions") if r["task"] == "brain" else ("LIDC-IDRI-0001",)
        for name, c in zip(names, r["cases"]):
            lines.append(
                f"| {r['task']} | {r['network']} | {r['seed']} | {r['floor']:.3f} | {name} | {c['score_every']:.4g} (slice {c['slice_every']}, "
                f"{c['set_every']}) | {c['score_counted']:.4g} (slice {c['slice_counted']}, {c['set_counted']}) | {_ranges(c['not_counted'])} |"
            )  # fmt: skip
    return "\n".join(lines) + "\n"


def _ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5, 76, 77]`` -> ``0-2, 5, 76-77``."""
    out, start = [], None
    for k, i in enumerate(indices):
        if start is None:
            start = i
        if k + 1 == len(indices) or indices[k + 1] != i + 1:
            out.append(f"{start}-{i}" if i > start else f"{start}")
            start = None
    return ", ".join(out) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rows_file.add_arguments(parser)
    parser.add_argument("--tasks", nargs="+", default=["brain", "lidc"], choices=["brain", "lidc"])
    args = parser.parse_args(argv)
    if args.report_only:
        return rows_file.rewrite_report(args.output, summary)
    start, rows = time.time(), []
    for task in args.tasks:
        for network in MODELS:
            for seed in args.seeds:
                rows.append(run_one(task, network, seed, args.size, args.iterations))
                c = rows[-1]["cases"]
                print(f"{task} {network} seed {seed}: " + "; ".join(
                    f"every {x['score_every']:.4g} (slice {x['slice_every']}, {x['set_every']}) counted {x['score_counted']:.4g} "
                    f"(slice {x['slice_counted']}, {x['set_counted']})" for x in c), flush=True)  # fmt: skip
    return rows_file.save(args, rows, start, summary)


if __name__ == "__main__":
    raise SystemExit(main())
