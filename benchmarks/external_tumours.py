"""An external check: other patients' REAL tumours, scored by models trained as the benchmark trains
them (``docs/accuracy/external_tumours.md``; slice rules and predictions written before the run
in ``docs/accuracy/external_tumours_prediction.txt``).

The scans are the four labelled test cases that pyradiomics ships in its source distribution
(``pyradiomics-3.1.0.tar.gz`` on PyPI, BSD-3-Clause; not part of this project, passed by path):
``lung1``, ``lung2`` (chest CT, 5 mm slices, one labelled finding each) and ``brain1``,
``brain2`` (T1-weighted MR, 6.5 mm slices, one labelled lesion each). No model of this project
has seen them, and nothing is chosen on them: this is a test only.

Every (task, network, seed) trains through ``accuracy.run_one`` (the product's path; the ``lidc``
task's models score the CTs, the ``brain`` task's the MRs), once as one network and once with
``training#ensemble: 3``; the model file then scores each volume as ``mama-monai score`` does
(``accuracy.labelled_series``: the .nrrd read directly, maps on its own grid).

Slices (:func:`slice_sets`, fixed before the run): *anomalous* where the label has a voxel;
unlabelled slices within 10 mm of one are left out; the *primary* normals are the other slices
of the organ the models learnt (CT: lung area at least 25 % of the volume's largest; MR: head
area at least 50 % of the largest); the *all* set adds every other slice.

    pip download --no-deps --no-binary :all: pyradiomics==3.1.0 -d /tmp/sdist   # or fetch the .tar.gz from PyPI
    python benchmarks/external_tumours.py /tmp/sdist/pyradiomics-3.1.0.tar.gz --output docs/accuracy/external_tumours.json
    python benchmarks/external_tumours.py /tmp/sdist/pyradiomics-3.1.0.tar.gz --output docs/accuracy/external_tumours.json --report-only
    mama-monai demo --output /tmp/demo_run      # its MAMA Net: the benchmark's one network of seed 0
    python benchmarks/external_tumours.py /tmp/sdist/pyradiomics-3.1.0.tar.gz --figure /tmp/demo_run/model.pt docs/accuracy/external_tumours.png
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rows_file  # noqa: E402
from benchmarks.accuracy import ENSEMBLE, MODELS, _cost  # noqa: E402
from benchmarks.accuracy_report import NAMES  # noqa: E402
from benchmarks.settings_sweep import paired  # noqa: E402

#: task -> the scans its models score, the modality's name
SCANS = {"lidc": (("lung1", "lung2"), "chest CT"), "brain": (("brain1", "brain2"), "brain MR")}
#: leave out unlabelled slices this close (mm, centre to centre) to a labelled one
GAP_MM = 10.0
#: CT: a slice is chest where its lung area is at least this share of the volume's largest
LUNG_SHARE = 0.25
#: MR: a slice is head where its head area is at least this share of the largest
HEAD_SHARE = 0.5
ENSEMBLE_K = 3


def _largest(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    return labels == 1 + int(np.argmax(ndimage.sum_labels(mask, labels, index=range(1, n + 1))))


def body_mask(image: np.ndarray, modality: str) -> np.ndarray:
    """The body (CT: the largest 3D region above -400 HU) or head (MR: above 10 % of the volume's
    99th percentile), its holes filled slice by slice; ``image`` (W, H, D) as loaded."""
    inside = image > (-400 if modality == "CT" else 0.1 * np.percentile(image, 99))
    body = _largest(inside)
    return np.stack([ndimage.binary_fill_holes(body[..., k]) for k in range(body.shape[-1])], axis=-1)


def distance_mm(slices: int, marked, spacing_mm: float) -> np.ndarray:
    """Each of ``slices`` slices' distance (mm, centre to centre) to the nearest ``marked`` slice."""
    index = np.arange(slices)
    return np.abs(index[:, None] - np.asarray(marked)[None, :]).min(axis=1) * spacing_mm


def slice_sets(image: np.ndarray, label: np.ndarray, spacing_mm: float, modality: str) -> dict[str, list[int]]:
    """``anomalous``, ``primary`` (normals of the organ) and ``all`` (every normal) slice indices
    along the last axis, and ``pixels`` (the anomalous and primary slices); see the module doc."""
    body = body_mask(image, modality)
    if modality == "CT":
        organ = (body & (image < -400)).sum(axis=(0, 1))  # the lungs: air inside the body's outline
        share = LUNG_SHARE
    else:
        organ = body.sum(axis=(0, 1))
        share = HEAD_SHARE
    marked = np.flatnonzero(label.any(axis=(0, 1)))
    if marked.size == 0:
        raise ValueError("slice_sets: the label marks no voxel")
    normal = distance_mm(image.shape[-1], marked, spacing_mm) >= GAP_MM
    primary = normal & (organ >= share * organ.max())
    sets = {"anomalous": marked.tolist(), "primary": np.flatnonzero(primary).tolist(), "all": np.flatnonzero(normal).tolist()}
    sets["pixels"] = sorted(sets["anomalous"] + sets["primary"])
    return sets


def prepare_cases(sdist: Path, folder: Path, tasks=tuple(SCANS)) -> dict[str, list[dict[str, Any]]]:
    """The scans of ``tasks`` out of the source distribution into ``folder``, each label and body
    mask as NIfTI on the grid the product loads (``mama_monai.data.convert``, no preset), and their
    slice sets: task -> the ``labelled_series`` cases."""
    import nibabel as nib

    from mama_monai.data.convert import convert

    with tarfile.open(sdist) as tar:
        wanted = [m for m in tar.getmembers() if m.name.endswith(("_image.nrrd", "_label.nrrd")) and "/data/" in m.name]
        tar.extractall(folder, wanted, filter="data")
    found = {Path(m.name).name: folder / m.name for m in wanted}
    cases: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        modality = "CT" if task == "lidc" else "MR"
        for name in SCANS[task][0]:
            image_path, label_path = found[f"{name}_image.nrrd"], found[f"{name}_label.nrrd"]
            image = convert(image_path, folder / f"{name}_image.nii.gz")
            label = convert(label_path, folder / f"{name}_label.nii.gz")
            affine = nib.load(folder / f"{name}_image.nii.gz").affine
            array = image[0].numpy().astype(np.float32)
            spacing = float(np.linalg.norm(affine[:3, 2]))
            body = body_mask(array, modality)
            nib.save(nib.Nifti1Image(body.astype(np.uint8), affine), folder / f"{name}_body.nii.gz")
            sets = slice_sets(array, label[0].numpy() > 0, spacing, modality)
            cases.setdefault(task, []).append(
                {"name": name, "image": str(image_path), "label": str(folder / f"{name}_label.nii.gz"),
                 "body": str(folder / f"{name}_body.nii.gz"), "pixels": sets["pixels"], "sets": sets,
                 "slice_mm": round(spacing, 3), "slices": int(array.shape[-1])}
            )  # fmt: skip
    return cases


def page_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a page needs of :func:`prepare_cases`' cases (name, slice sets, slice spacing and
    count), saved with the settings so that ``--report-only`` can rewrite the page."""
    return [{k: c[k] for k in ("name", "sets", "slice_mm", "slices")} for c in cases]


def make_jobs(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    cases = prepare_cases(Path(args.sdist), tmp, args.tasks)
    # the slice sets go into the saved settings (rows_file.save writes vars(args)): the page is rewritten from them
    args.cases = {task: page_cases(found) for task, found in cases.items()}
    base = {"size": args.size, "iterations": args.iterations, "interval": min(50, args.iterations)}
    jobs = []
    for task in args.tasks:
        for net in args.models:
            for seed in args.seeds:
                job = dict(base, task=task, network=net, seed=seed, labelled_series=cases[task])
                jobs.append(dict(job, variant="one network"))
                if args.ensemble > 1:
                    k = args.ensemble
                    jobs.append(dict(job, variant=ENSEMBLE.format(k=k), overrides={"training#ensemble": k}))
    return sorted(jobs, key=lambda j: -_cost(j))  # the slowest first, so the two processes finish together


# ----------------------------------------------------------------------------- the page
def slice_auroc(row: dict, sets: dict[str, dict], names: list[str], normals: str = "primary") -> float:
    """AUROC of the slice score over ``names``' anomalous slices against their ``normals`` (pooled);
    ``sets``: case name -> its slice sets (:func:`slice_sets`)."""
    from sklearn.metrics import roc_auc_score

    scores, labels = [], []
    for name in names:
        case, mine = row["labelled_series"]["cases"][name], sets[name]
        for key, y in (("anomalous", 1), (normals, 0)):
            scores += [case["slice_scores"][i] for i in mine[key]]
            labels += [y] * len(mine[key])
    return float(roc_auc_score(labels, scores))


def operating_point(row: dict, sets: dict[str, dict], names: list[str]) -> tuple[float, float]:
    """Sensitivity and specificity at the model's stored threshold, over the primary slices."""
    hits = positives = passes = negatives = 0
    for name in names:
        case, mine = row["labelled_series"]["cases"][name], sets[name]
        above = np.asarray(case["slice_scores"]) >= case["threshold"]
        hits, positives = hits + int(above[mine["anomalous"]].sum()), positives + len(mine["anomalous"])
        passes, negatives = passes + int((~above[mine["primary"]]).sum()), negatives + len(mine["primary"])
    return hits / positives, passes / negatives


def _mean(rows: list[dict], value) -> str:
    return rows_file.mean_sd([value(r) for r in rows])


def prediction_file(settings: dict) -> str:
    """The prediction written before the run: ``<output stem>_prediction.txt`` beside the rows
    (``external_tumours.json`` -> ``external_tumours_prediction.txt``; a later run written to
    ``external_tumours_rates.json`` has its own, ``external_tumours_rates_prediction.txt``)."""
    return f"{Path(settings.get('output') or 'external_tumours.json').stem}_prediction.txt"


def summary(rows: list[dict], settings: dict) -> str:
    cases = settings["cases"]
    lines = [
        "# External check: other patients' REAL tumours (pyradiomics' test cases)",
        "",
        f"Written by `python benchmarks/external_tumours.py` on {settings['date']}, {settings['cpu']}, in "
        f"{settings['seconds'] / 60:.0f} min; seeds {settings['seeds']}, input {settings['size']} x {settings['size']}, "
        f"{settings['iterations']} iterations, mean ± sd over seeds. Slice rules and predictions were written before the "
        f"run: `{prediction_file(settings)}`. Nothing here chose anything: a test only.",
        "",
        "The models are trained as `benchmarks/accuracy.py` trains them (the `lidc` task's models score the CTs, the "
        "`brain` task's the MRs) and score each file as `mama-monai score` does. *Demo test*: the same networks' image "
        "AUROC on the demo's own test (LIDC nodules; brain SIMULATED lesions). *Pooled*: the slices of both patients "
        "ranked together (a patient's offset counts); *all slices*: every normal slice, not only those of the organ "
        "the models learnt. Sensitivity / specificity: at the threshold stored in the model file (the demo's held-out "
        "normals), primary slices. A slice AUROC ranks slices, not findings: `--figure MODEL.pt OUT.png` prints where "
        "each slice's map peaks (at the finding, or at the image's edge) and draws a finding's slice beside the "
        "highest-scoring normal one (`docs/accuracy.md`, the note on this check).",
        "",
    ]
    for task, (names, title) in SCANS.items():
        task_rows = [r for r in rows if r["task"] == task]
        if not task_rows:
            continue
        sets = {c["name"]: c["sets"] for c in cases[task]}
        counts = ", ".join(
            f"{c['name']}: {len(c['sets']['anomalous'])} anomalous, {len(c['sets']['primary'])} primary normal "
            f"({len(c['sets']['all'])} in all) of {c['slices']} slices of {c['slice_mm']:g} mm" for c in cases[task]
        )
        lines += [f"## {title}: {' + '.join(names)}", "", f"Slices: {counts}.", ""]
        header = ["model", "variant", "slice AUROC, pooled", *[f"slice AUROC, {n}" for n in names],
                  "slice AUROC, pooled, all slices", "pixel AUROC (in body)", "sens / spec at stored threshold", "demo test AUROC"]  # fmt: skip
        lines += ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
        variants = list(dict.fromkeys(r["variant"] for r in task_rows))
        for variant in variants:
            for net in MODELS:
                sel = [r for r in task_rows if r["network"] == net and r["variant"] == variant]
                if not sel:
                    continue
                ops = [operating_point(r, sets, list(names)) for r in sel]
                lines.append("| " + " | ".join([
                    NAMES[net], variant, _mean(sel, lambda r: slice_auroc(r, sets, list(names))),
                    *[_mean(sel, lambda r, n=n: slice_auroc(r, sets, [n])) for n in names],
                    _mean(sel, lambda r: slice_auroc(r, sets, list(names), "all")),
                    _mean(sel, lambda r: r["labelled_series"]["pixel_auroc"]),
                    f"{np.mean([o[0] for o in ops]):.3f} / {np.mean([o[1] for o in ops]):.3f}",
                    _mean(sel, lambda r: r["auroc_percentile"]),
                ]) + " |")  # fmt: skip
        lines += ["", "Paired two-sided t-tests over seeds, MAMA Net minus each baseline (mean difference, p):", ""]
        lines += ["| variant | minus | slice AUROC, pooled | pixel AUROC |", "| --- | --- | --- | --- |"]
        for variant in variants:
            mama = [r for r in task_rows if r["network"] == "mamanet_compact" and r["variant"] == variant]
            for net in MODELS[1:]:
                other = [r for r in task_rows if r["network"] == net and r["variant"] == variant]
                if mama and other:
                    lines.append(f"| {variant} | {NAMES[net]} | {paired(mama, other, lambda r: slice_auroc(r, sets, list(names)))} | "
                                 f"{paired(mama, other, lambda r: r['labelled_series']['pixel_auroc'])} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the figure
def figure_slices(scores: list[float], sets: dict[str, list[int]]) -> dict[str, int]:
    """The slices a figure shows: the labelled finding's middle slice and the primary normal
    slice of highest score (the one that outranks the finding, where one does)."""
    anomalous = sets["anomalous"]
    return {"finding": anomalous[len(anomalous) // 2], "top normal": max(sets["primary"], key=lambda k: scores[k])}


#: the map's maximum counts as at the finding within this many pixels of its label (input grid)
PEAK_REACH_PX = 10
#: a normal slice's maximum counts as at the image's edge within this many pixels of it
EDGE_PX = 20


def where_peaks(amap: np.ndarray, label: np.ndarray, sets: dict[str, list[int]]) -> dict[str, int]:
    """Where each slice's map has its maximum (input grid, (W, H, D)): on how many finding slices
    within ``PEAK_REACH_PX`` of the label, and on how many primary normal slices within ``EDGE_PX``
    of the image's edge (where a field of view that cuts the body puts an error no training slice
    showed). A slice AUROC whose finding slices peak elsewhere ranks slices, not findings."""
    near = ndimage.binary_dilation(label, structure=np.ones((3, 3, 1), bool), iterations=PEAK_REACH_PX)
    at_finding = at_edge = 0
    for k in sets["anomalous"]:
        i, j = np.unravel_index(int(np.argmax(amap[..., k])), amap.shape[:2])
        at_finding += int(near[i, j, k])
    for k in sets["primary"]:
        i, j = np.unravel_index(int(np.argmax(amap[..., k])), amap.shape[:2])
        at_edge += int(min(i, j, amap.shape[0] - 1 - i, amap.shape[1] - 1 - j) < EDGE_PX)
    return {"finding_slices": len(sets["anomalous"]), "peak_at_finding": at_finding,
            "primary_normals": len(sets["primary"]), "peak_at_edge": at_edge}  # fmt: skip


def figure(model: Path, sdist: Path, output: Path) -> None:
    """``output`` (PNG): for each CT patient, the finding's middle slice and the highest-scoring
    normal slice, the lung window beside ``model``'s anomaly map on the input grid, the label
    outlined, each slice's score over the model's threshold in the title; and on the terminal,
    per patient, where the map peaks (:func:`where_peaks`)."""
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nibabel as nib

    from mama_monai.workflows.scoring import score_cases

    with tempfile.TemporaryDirectory() as tmp:
        cases = prepare_cases(sdist, Path(tmp), ["lidc"])["lidc"]
        report = score_cases(model, [Path(c["image"]) for c in cases], Path(tmp) / "scored", dicom_output=False)
        fig, axes = plt.subplots(len(cases), 4, figsize=(13, 3.4 * len(cases)), squeeze=False)
        for row, case, scored in zip(axes, cases, report["cases"]):
            image = np.asarray(nib.load(Path(tmp) / f"{case['name']}_image.nii.gz").dataobj, dtype=np.float32)
            label = np.asarray(nib.load(case["label"]).dataobj) > 0
            amap = np.asarray(nib.load(Path(tmp) / "scored" / scored["anomaly_map"]).dataobj, dtype=np.float32)
            scores, threshold = scored["slice_scores"], scored["threshold"]
            print(json.dumps({"model": str(model), "case": case["name"], **where_peaks(amap, label, case["sets"])}))
            for i, (kind, k) in enumerate(figure_slices(scores, case["sets"]).items()):
                window = np.clip((image[..., k] + 1000) / 1400, 0, 1)
                for j, (picture, cmap) in enumerate(((window, "gray"), (amap[..., k], "inferno"))):
                    ax = row[2 * i + j]
                    ax.imshow(picture.T, cmap=cmap, vmin=0, vmax=1 if j == 0 else float(np.percentile(amap, 99.9)))
                    if label[..., k].any():
                        ax.contour(label[..., k].T, levels=[0.5], colors="lime", linewidths=0.8)
                    ax.set_axis_off()
                row[2 * i].set_title(f"{case['name']} slice {k} ({kind})", fontsize=9)
                row[2 * i + 1].set_title(f"map; slice score {scores[k] / threshold:.2f} x threshold", fontsize=9)
        fig.tight_layout()
        output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(output, dpi=60)
        plt.close(fig)
    from PIL import Image  # 256 colours: the committed figure stays small

    Image.open(output).convert("RGB").quantize(256).save(output, optimize=True)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sdist", help="pyradiomics-3.1.0.tar.gz (PyPI's source distribution; its data/ holds the scans)")
    parser.add_argument("--ensemble", type=int, default=ENSEMBLE_K, help=f"also train training#ensemble: K (default {ENSEMBLE_K}; 1 skips)")
    parser.add_argument("--figure", nargs=2, metavar=("MODEL.pt", "OUT.png"), help="draw and print where MODEL's maps peak on the CTs (trains nothing)")


def main(argv: list[str] | None = None) -> int:
    drawing = argparse.ArgumentParser(add_help=False)  # --figure needs no --output: it trains nothing
    drawing.add_argument("sdist", nargs="?")
    drawing.add_argument("--figure", nargs=2)
    known, _ = drawing.parse_known_args(argv)
    if known.figure and known.sdist:
        figure(Path(known.figure[0]), Path(known.sdist), Path(known.figure[1]))
        return 0
    return rows_file.main(argv, __doc__, summary, make_jobs, MODELS, extra_arguments=_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
