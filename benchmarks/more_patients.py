"""A third normal training patient, left out in turn: does more normal anatomy help another
patient's scan? (``docs/accuracy/more_patients.md``; predicted before the run in
``docs/accuracy/more_patients_prediction.txt``.)

The two chest CTs of pyradiomics' source distribution (``external_tumours.py``) take turns: one
patient's slices at >= 15 mm from its labelled tumour (the demo's training rule for
LIDC-IDRI-0001) join the demo's two training patients, and the other patient is scored with the
external check's slice sets. The condition ``two patients`` is the demo's manifest as it is.
Every run trains through ``accuracy.run_one`` (the product's path; the demo's LIDC test is scored
as always) and scores both pyradiomics patients as ``mama-monai score`` does.

    python benchmarks/more_patients.py /tmp/sdist/pyradiomics-3.1.0.tar.gz --output docs/accuracy/more_patients.json
    python benchmarks/more_patients.py /tmp/sdist/pyradiomics-3.1.0.tar.gz --output docs/accuracy/more_patients.json --report-only
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import external_tumours, rows_file  # noqa: E402
from benchmarks.accuracy import MODELS, _cost  # noqa: E402
from benchmarks.accuracy_report import NAMES  # noqa: E402
from benchmarks.settings_sweep import paired  # noqa: E402

#: the demo's training rule: slices at least this far (mm) from any mark
TRAIN_GAP_MM = 15.0
BASELINE = "two patients"
#: condition -> (the patient added to training, the patient scored)
CONDITIONS = {BASELINE: (None, None), "+ lung2": ("lung2", "lung1"), "+ lung1": ("lung1", "lung2")}


def training_slices(sets: dict[str, list[int]], slices: int, slice_mm: float) -> list[int]:
    """The slices at >= ``TRAIN_GAP_MM`` from every labelled slice (all slices of the volume)."""
    return np.flatnonzero(external_tumours.distance_mm(slices, sets["anomalous"], slice_mm) >= TRAIN_GAP_MM).tolist()


def manifest_with(case: dict[str, Any], folder: Path) -> str:
    """The demo's LIDC manifest plus ``case``'s training slices as normal training cases, written
    into ``folder``."""
    from mama_monai.data.demo import demo_manifest
    from mama_monai.data.manifest import ManifestCase, write_manifest

    demo = demo_manifest("lidc")
    added = [
        ManifestCase(case_id=f"{case['name']}_s{k:03d}", image=case["image"], label=0, split="train",
                     group=f"pyradiomics-{case['name']}", slice_index=k, meta={"role": "train (added patient)"})
        for k in training_slices(case["sets"], case["slices"], case["slice_mm"])
    ]  # fmt: skip
    path = folder / f"plus_{case['name']}" / "manifest.json"
    return str(write_manifest(dataclasses.replace(demo, cases=demo.cases + added), path, root=str(demo.root)))


def make_jobs(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    cases = {c["name"]: c for c in external_tumours.prepare_cases(Path(args.sdist), tmp, ["lidc"])["lidc"]}
    args.cases = {"lidc": external_tumours.page_cases(list(cases.values()))}
    args.added_slices = {n: len(training_slices(c["sets"], c["slices"], c["slice_mm"])) for n, c in cases.items()}
    base = {"size": args.size, "iterations": args.iterations, "interval": min(50, args.iterations), "task": "lidc"}
    jobs = []
    for name, (added, held) in CONDITIONS.items():
        overrides = {"data#manifest": manifest_with(cases[added], tmp)} if added else {}
        scored = [cases[held]] if held else list(cases.values())  # the baseline is every condition's reference
        for net in args.models:
            for seed in args.seeds:
                jobs.append(dict(base, network=net, seed=seed, variant=name, overrides=overrides, labelled_series=scored))
    return sorted(jobs, key=lambda j: -_cost(j))


def summary(rows: list[dict], settings: dict) -> str:
    sets = {c["name"]: c["sets"] for c in settings["cases"]["lidc"]}
    lines = [
        "# A third normal training patient, left out in turn",
        "",
        f"Written by `python benchmarks/more_patients.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min; seeds {settings['seeds']}, input {settings['size']} x {settings['size']}, "
        f"{settings['iterations']} iterations, one network per run, mean ± sd over seeds. Predictions were written "
        "before the run: `more_patients_prediction.txt`.",
        "",
        "*Added*: the pyradiomics patient whose slices at >= 15 mm from its labelled tumour join the demo's two "
        f"training patients ({', '.join(f'{n}: {k} slices' for n, k in settings['added_slices'].items())}); "
        "*held out*: the other one, scored with the external check's slice sets (`external_tumours.md`). Slice "
        "AUROC and the specificity at the stored threshold on the held-out patient; the demo's LIDC test beside it.",
        "",
        "| model | held out | trained on | slice AUROC, held-out patient | specificity / sensitivity at stored threshold | pixel AUROC, held-out patient | LIDC test AUROC | difference in held-out slice AUROC (paired over seeds) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for net in MODELS:
        base = [r for r in rows if r["network"] == net and r["variant"] == BASELINE]
        for name, (added, held) in CONDITIONS.items():
            if added is None:
                continue
            plus = [r for r in rows if r["network"] == net and r["variant"] == name]
            for label, sel in ((BASELINE, base), (name, plus)):
                if not sel:
                    continue
                ops = [external_tumours.operating_point(r, sets, [held]) for r in sel]
                diff = paired(plus, base, lambda r: external_tumours.slice_auroc(r, sets, [held])) if label == name else ""
                lines.append("| " + " | ".join([
                    NAMES[net], held, label,
                    rows_file.mean_sd([external_tumours.slice_auroc(r, sets, [held]) for r in sel]),
                    f"{np.mean([o[1] for o in ops]):.3f} / {np.mean([o[0] for o in ops]):.3f}",
                    rows_file.mean_sd([r["labelled_series"]["cases"][held]["pixel_auroc"] for r in sel]),
                    rows_file.mean_sd([r["auroc_percentile"] for r in sel]), diff,
                ]) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sdist", help="pyradiomics-3.1.0.tar.gz (PyPI's source distribution; its data/ holds the scans)")


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, make_jobs, MODELS, extra_arguments=_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
