"""Score new cases with a saved model: per-case score and label, NIfTI anomaly maps, overlays, a report.

``mama-monai score`` runs :func:`score_cases`. Each input (a DICOM series folder, a DICOM file,
a NIfTI file or a PNG/JPEG) is loaded and preprocessed exactly as training does (the checkpoint's
preset with its pinned loader, at the checkpoint's ``spatial_size``), cut into axial slices (the
last axis; a 2D image is one slice) and scored slice by slice with the checkpoint's
:class:`~mama_monai.engines.anomaly_map.AnomalyMap` settings (DESIGN.md §2, "scores in deployment").

Output layout (``output_dir``)::

    index.html                  the report to look at: cases ranked by score, per-case figures, links
    scores.csv                  one row per input; failed inputs have status=failed and an error
    scores.json                 the same cases with slice scores, plus the model, failures, warnings
    <case>/anomaly_map.nii.gz   the anomaly map on the input's own grid (shape, spacing, affine), float32
    <case>/anomaly_mask.nii.gz  uint8 label map, 1 where anomaly_map >= threshold (same grid): a segmentation
    <case>/overlay.png          the slice that decided the case score, the map as a heat overlay
    <case>/slices.png           up to 12 slices (always the case's slice) with the map overlaid
    <case>/slice_scores.png     the slice score along the case, the threshold and the case's slice;
                                slices that do not count toward the case score (too little body) grey
    <case>/dicom/seg.dcm, parametric_map.dcm, sr.dcm
                                DICOM inputs only (default; ``dicom_output=False`` / --no-dicom-output
                                turns them off): :mod:`mama_monai.clinical.dicom_outputs`

DICOM outputs are on by default for DICOM inputs: whoever scores a DICOM series wants the result
back in the patient's study in the PACS and viewer, and building them takes seconds. They are the
one output that carries patient identifiers: the source's Patient and Study modules, which a
DICOM object must carry to be filed in that study. NIfTI and PNG/JPEG inputs have no study to
attach to and get the NIfTI map and mask only (the report says so per case). A case whose DICOM
objects cannot be built (e.g. a multi-frame source) is still scored; the reason is in its warnings.

Every file is written atomically (a temporary file in the same folder, then ``os.replace``), and
the report last: an interrupted run leaves complete files only, and no report.

Privacy (:mod:`mama_monai.workflows.score_inputs`): case names are ``case_001``, ``case_002``, ...
in input order and every message about an input is redacted of its path, file names and DICOM
patient data, on every path (scored, failed, refused, warned), everywhere but inside the DICOM
objects of ``<case>/dicom/`` (above), unless ``include_identifiers=True``
(names from the file names, plus the ``input`` and ``patient_id`` columns). Cells of ``scores.csv``
that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or CR)
are prefixed with ``'``.

Output safety (:mod:`mama_monai.outputs`): the run holds an exclusive lock on ``output_dir``, an
output that already holds results is refused without ``overwrite``, temporaries left by a killed
run are removed, and no link inside ``output_dir`` is followed when writing.

Example:
    >>> report = score_cases("model.pt", ["ct_folder", "chest.nii.gz"], "scores")  # doctest: +SKIP
    >>> [(c["case"], c["score"], c["label_name"]) for c in report["cases"]]  # doctest: +SKIP
    [('case_001', 0.0123, 'normal'), ('case_002', 0.0481, 'anomalous')]
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import Resize
from tqdm.auto import tqdm

import mama_monai
from mama_monai.atomic import atomic_write
from mama_monai.data.dicom_series import is_dicom_file
from mama_monai.data.nifti import write_nifti
from mama_monai.data.orientation import restore_orientation
from mama_monai.data.slicing import slice_volume, stack_slices
from mama_monai.engines.evaluator import score_items
from mama_monai.engines.model_spec import ModelSpec, load_model_spec
from mama_monai.workflows.devices import resolve_device
from mama_monai.evaluation.case_score import CaseScore, SliceCoverage, body_fractions
from mama_monai.evaluation.images import overlay_png
from mama_monai.evaluation.metrics import normality_scores
from mama_monai.outputs import OutputExistsError, existing_results, lock_output, refuse_to_replace
from mama_monai.reports.case_figures import slice_score_curve_png, slice_strip_png
from mama_monai.reports.html import write_score_page
from mama_monai.workflows.score_inputs import ScoreInput, inspect_inputs

__all__ = ["IDENTIFIER_COLUMNS", "REPORT_COLUMNS", "ModalityMismatchError", "OutputExistsError", "score_cases"]

logger = logging.getLogger(__name__)

#: Columns of ``scores.csv``; ``input_index`` is the input's 1-based position on the command line.
REPORT_COLUMNS = (
    "case", "input_index", "status", "score", "normality", "label", "label_name", "threshold",
    "threshold_method", "max_slice", "num_slices", "slices_counted", "model", "model_sha256", "warnings", "error",
)  # fmt: skip
#: Columns appended with ``include_identifiers=True``: the input path as given and the DICOM PatientID.
IDENTIFIER_COLUMNS = ("input", "patient_id")
#: A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: library deprecation notices raised while loading are dropped, not reported per case
_QUIET = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


class ModalityMismatchError(ValueError):
    """An input's DICOM Modality differs from the modality the model was trained on."""


def _check_modalities(inputs: Sequence[ScoreInput], expected: str, force: bool) -> None:
    bad = [
        f"{item.name} (input {item.index}) is {item.modality}"
        for item in inputs
        if expected and item.modality and item.modality != expected
    ]
    if bad and not force:
        raise ModalityMismatchError(
            f"the model was trained on {expected} images but {'; '.join(bad)}: refused, a model scores only "
            "its own modality. Pass --force (force=True) to score anyway."
        )


class _Scorer:
    """Load + preprocess one input as training does, run the network on its slices, keep the maps."""

    def __init__(self, network: torch.nn.Module, spec: ModelSpec, device: torch.device, batch_size: int) -> None:
        self.network, self.device, self.batch_size = network, device, batch_size
        self.preset, self.in_channels = spec.preset, spec.network_def.get("in_channels")
        self.preprocess = spec.preprocessor()
        self.anomaly = spec.anomaly_map().to(device)
        self.coverage = SliceCoverage.from_threshold(spec.threshold_entry)

    def __call__(self, path: str, series_uid: str | None) -> dict[str, Any]:
        data = self.preprocess({"image": path, "series_uid": series_uid})
        image = data["image"]
        if self.in_channels is not None and image.shape[0] != self.in_channels:
            raise ValueError(
                f"the image has {image.shape[0]} channel(s) after preset {self.preset!r}; the model expects {self.in_channels}."
            )
        slices = [s["image"] for s in slice_volume({"image": image})]
        items = [{"image": s.as_tensor().float(), "label": 0} for s in slices]
        out = score_items(self.network, self.anomaly, items, self.device, self.batch_size)  # MONAI's evaluator engine
        maps = list(torch.from_numpy(out["map"]))
        slice_scores = out["score"].astype(np.float64)
        if not np.all(np.isfinite(slice_scores)):
            raise ValueError("the network produced non-finite values (NaN or inf) for this input.")
        canonical = stack_slices(maps, reference=slices[0].meta, grid="original")
        case = self.coverage.case_score(slice_scores, body_fractions(out["map"]))
        k = case.slice_index
        map2d = canonical.as_tensor()[0].numpy()
        map2d = map2d if map2d.ndim == 2 else map2d[..., k]
        volume = restore_orientation(canonical, image.meta.get("source_axcodes"))  # the file's own voxel grid
        array = volume.as_tensor()[0].numpy()  # (W, H[, D])
        picture = slices[k].as_tensor().float().mean(0, keepdim=True)
        picture = torch.as_tensor(Resize(spatial_size=map2d.shape, mode="bilinear")(picture))[0].numpy()
        model_maps = torch.stack([m[0] for m in maps]).numpy()  # (N, W, H) at the model size, canonical order
        model_pictures = torch.stack([s.as_tensor().float().mean(0) for s in slices]).numpy()
        return {
            "model_slices": (model_pictures, model_maps),
            "map": array,
            "affine": np.asarray(volume.affine, dtype=np.float64),
            "slice_scores": slice_scores,
            "case": case,
            "max_slice": k,
            "overlay": (picture, map2d),
            "modality": str(image.meta.get("modality", "") or "").upper(),
        }


def score_cases(
    model_path: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    series_uid: str | None = None,
    force: bool = False,
    overwrite: bool = False,
    include_identifiers: bool = False,
    batch_size: int = 16,
    progress: bool = False,
    dicom_output: bool = True,
) -> dict[str, Any]:
    """Score each input with the model at ``model_path``; write maps, overlays and the run report.

    The **case score is the maximum slice score over the slices with enough body**
    (:mod:`mama_monai.evaluation.case_score`; ``max_slice`` is that slice along the last axis as
    loaded); the label is ``score >= threshold`` (calibrated on held-out normal slices). The
    normality (paper Eq. 14) rescales this run's scores to [0, 1]: for reports only.

    Args:
        model_path: a model file written by :func:`~mama_monai.engines.checkpoint.save_model`.
        inputs: DICOM series folders or files, NIfTI, NRRD, MHA/MHD, PNG/JPEG/TIFF images.
        output_dir: new or empty output folder (module docstring), locked while the run writes.
        device: ``"cpu"`` (default), ``"cuda"`` or ``"auto"``.
        series_uid: SeriesInstanceUID to read from folders holding several series (default ``None``).
        force: score inputs whose DICOM Modality differs from the model's (default ``False``: refused).
        overwrite: replace results already in ``output_dir`` (default ``False``: refused).
        include_identifiers: case names from file names, unredacted messages, ``input`` and
            ``patient_id`` columns (default ``False``: nothing derived from a path or a header).
        batch_size: slices per forward pass (default 16).
        progress: show a progress bar over the cases (default ``False``).
        dicom_output: DICOM SEG, Parametric Map and SR for DICOM inputs (default ``True``).

    Returns:
        The report written to ``scores.json``: ``cases`` (one dict per scored input, keys of
        :data:`REPORT_COLUMNS` plus ``slice_scores``, ``anomaly_map``, ``overlay``), ``failures``
        (``input_index``, ``case``, ``error``), ``model``, ``warnings`` and the paths of the reports.

    Raises:
        OutputExistsError: ``output_dir`` already holds results, without ``overwrite``.
        OutputLockedError: another run is writing into ``output_dir``.
        CheckpointError: a missing, corrupted or foreign model file.
        ModalityMismatchError: a DICOM input of another modality than the model's, without ``force``.
        ValueError: no inputs or a bad ``batch_size``.
    """
    _check_arguments(inputs, batch_size)
    output_dir, model_path = Path(output_dir), Path(model_path)
    device = resolve_device(device)
    with lock_output(output_dir):
        refuse_to_replace(output_dir, existing_results(output_dir), overwrite)
        run = _Run(model_path, device, batch_size, force, dicom_output)
        items = inspect_inputs(inputs, series_uid, include_identifiers)
        _check_modalities(items, run.modality, force)
        cases, failures = _score_each(run, items, output_dir, series_uid, include_identifiers, progress)
        report = run.report(cases, failures, output_dir)
        write_score_page(output_dir, report)
        _write_reports(output_dir, report, include_identifiers)
    return report


def _check_arguments(inputs: Sequence[str | os.PathLike], batch_size: int) -> None:
    if not inputs:
        raise ValueError("inputs must name at least one DICOM folder/file, NIfTI or PNG/JPEG, got none.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")


def _score_each(
    run: _Run, items: Sequence[ScoreInput], output_dir: Path, series_uid: str | None, include_identifiers: bool, progress: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each input scored in turn: ``(cases, failures)``; one bad input never stops the others
    (its error, redacted, is logged and listed)."""
    cases, failures = [], []
    for item in tqdm(items, desc="scoring", unit="case", disable=not progress):
        try:
            case = run.score(item, output_dir, series_uid)
        except Exception as err:
            message = item.redact(" ".join(str(err).split()) or type(err).__name__)
            failures.append({**_identity(item, include_identifiers), "error": f"{type(err).__name__}: {message}"})
            logger.warning("skipped %s (input %d): %s", item.name, item.index, message)
            continue
        cases.append({**case, **_identity(item, include_identifiers)})
    return cases, failures


def _identity(item: ScoreInput, include_identifiers: bool) -> dict[str, Any]:
    """The keys naming an input in the report: case and position; path and PatientID only on request."""
    out: dict[str, Any] = {"case": item.name, "input_index": item.index}
    if include_identifiers:
        out.update(input=item.path, patient_id=item.patient_id)
    return out


class _Run:
    """The model side of a scoring run: the network, its threshold and settings, and one case at a time."""

    def __init__(self, model_path: Path, device: torch.device, batch_size: int, force: bool, dicom_output: bool = True) -> None:
        network, self.spec = load_model_spec(model_path, device)
        self.modality = str(self.spec.modality or "").upper()
        self.threshold, self.method = self.spec.threshold, self.spec.threshold_method
        self.model = {"file": model_path.name, "sha256": self.spec.sha256[:12]}
        self.reduction = self.spec.scoring.get("reduction", "max")
        self.scorer = _Scorer(network, self.spec, device, batch_size)
        self.force, self.dicom_output = force, dicom_output

    def _notes(self, item: ScoreInput, result: dict[str, Any], caught: list) -> list[str]:
        notes = [item.redact(" ".join(str(w.message).split())) for w in caught if not issubclass(w.category, _QUIET)]
        for note in notes:  # what Python would have printed, redacted
            logger.warning("%s (input %d): %s", item.name, item.index, note)
        modality = item.modality or result["modality"]
        if not modality:
            notes.append(f"no modality information in the input; scored as {self.modality or 'the model modality'}, unchecked.")
        elif self.modality and modality != self.modality:
            if not self.force:
                raise ModalityMismatchError(f"the input is {modality}, the model {self.modality}; pass --force to score it.")
            notes.append(f"input modality {modality} differs from the model's {self.modality}; scored with --force.")
        return notes

    @staticmethod
    def _coverage_notes(case: CaseScore, slice_scores: np.ndarray, threshold: float) -> list[str]:
        """Warnings about the slices the case score did not count (:mod:`mama_monai.evaluation.case_score`)."""
        if case.all_counted_by_fallback:
            return ["no slice shows as much body as the model's validation slices (another field of view or "
                    "anatomy?): every slice counted."]  # fmt: skip
        above = [int(i) for i in np.flatnonzero(~case.counted & (np.asarray(slice_scores) >= threshold))]
        if above:
            return [f"slice(s) {', '.join(map(str, above))} score above the threshold but show less body than the "
                    "model's validation slices, so they do not count toward the case score; review them."]  # fmt: skip
        return []

    def score(self, item: ScoreInput, output_dir: Path, series_uid: str | None) -> dict[str, Any]:
        """Score one input and write its map and overlay; the report row without the identity keys."""
        with warnings.catch_warnings(record=True) as caught:  # re-issued redacted, in the report
            warnings.simplefilter("always")
            result = self.scorer(item.path, series_uid)
        notes = self._notes(item, result, caught)
        name, threshold = item.name, self.threshold
        case_dir = output_dir / name
        amap = np.asarray(result["map"], dtype=np.float32)  # exactly what anomaly_map.nii.gz holds
        write_nifti(case_dir / "anomaly_map.nii.gz", amap, result["affine"], np.float32)
        write_nifti(case_dir / "anomaly_mask.nii.gz", amap >= np.float32(threshold), result["affine"], np.uint8)
        case = result["case"]
        score = case.score
        label = int(score >= threshold)
        notes += self._coverage_notes(case, result["slice_scores"], threshold)
        label_name = "anomalous" if label else "normal"
        summary = (score, threshold, label_name, result["max_slice"], self.model["sha256"])
        dicom = self._dicom(item, series_uid, amap, result["affine"], summary, case_dir / "dicom", notes)
        pictures, model_maps = result["model_slices"]
        slice_strip_png(pictures, model_maps, result["slice_scores"], threshold, case_dir / "slices.png", top=case.slice_index)
        slice_score_curve_png(
            result["slice_scores"], threshold, case_dir / "slice_scores.png", title=f"{name}: slice scores",
            counted=case.counted, top=case.slice_index,
        )  # fmt: skip
        picture, map2d = result["overlay"]
        # with a max or percentile score the case is anomalous where the map exceeds the threshold: show that region
        by_max = self.reduction in ("max", "percentile") and threshold > 0
        overlay_png(
            picture.T,  # (W, H) index order -> rows = image rows, as DICOM viewers show a slice
            map2d.T,
            case_dir / "overlay.png",
            threshold=threshold if by_max else None,
            vmax=2 * threshold if by_max else None,
            title=f"{name}: score {score:.4g} ({label_name}), slice {result['max_slice']}",
        )
        return {
            "case": name, "status": "ok", "score": score, "normality": None, "label": label,
            "label_name": label_name, "threshold": threshold, "threshold_method": self.method,
            "max_slice": result["max_slice"], "num_slices": int(result["slice_scores"].size),
            "slices_counted": int(case.counted.sum()),
            "slices_not_counted": [int(i) for i in np.flatnonzero(~case.counted)],
            "model": self.model["file"], "model_sha256": self.model["sha256"], "warnings": notes, "error": "",
            "slice_scores": [float(s) for s in result["slice_scores"]],
            "anomaly_map": f"{name}/anomaly_map.nii.gz", "anomaly_mask": f"{name}/anomaly_mask.nii.gz",
            "overlay": f"{name}/overlay.png", "slices": f"{name}/slices.png", "slice_curve": f"{name}/slice_scores.png",
            "dicom": {kind: f"{name}/dicom/{path.name}" for kind, path in dicom.items()} if dicom is not None else None,
        }  # fmt: skip

    def _dicom(
        self, item: ScoreInput, series_uid: str | None, amap: np.ndarray, affine: np.ndarray, summary: tuple,
        folder: Path, notes: list[str],
    ) -> dict[str, Path] | None:
        """The case's DICOM SEG, Parametric Map and SR (DICOM inputs, ``dicom_output``); ``None`` otherwise,
        with the reason in ``notes`` when they were asked for but could not be built."""
        path = Path(item.path)
        if not self.dicom_output or not (path.is_dir() or is_dicom_file(path)):
            return None
        from mama_monai.clinical import dicom_outputs, source_frames  # highdicom: only when needed

        try:
            headers = source_frames.read_source_headers(path, series_uid)
            return dicom_outputs.write_dicom_outputs(folder, headers, amap, affine, dicom_outputs.CaseSummary(*summary))
        except (dicom_outputs.DicomOutputError, source_frames.SourceFrameError) as err:
            note = item.redact(" ".join(str(err).split()))
            logger.warning("%s (input %d): %s", item.name, item.index, note)
            notes.append(note if note.startswith("no DICOM outputs") else f"no DICOM outputs: {note}")
            return None

    def report(self, cases: list[dict], failures: list[dict], output_dir: Path) -> dict[str, Any]:
        """The run report (``scores.json``): model, definitions, cases with normality, failures."""
        if cases:
            for case, value in zip(cases, normality_scores([c["score"] for c in cases])):
                case["normality"] = float(value)
        scoring = self.spec.scoring
        return {
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "mama_monai_version": mama_monai.__version__,
            "model": {
                **self.model,
                "threshold": self.spec.threshold_entry,
                "preset": self.spec.preset, "spatial_size": list(self.spec.spatial_size), "modality": self.spec.modality,
                "scoring": scoring,
            },
            "definitions": {
                "score": (
                    f"maximum of the slice score ({self.reduction} of the smoothed squared error map) over the slices that "
                    f"count: body fraction >= {self.scorer.coverage.floor:.4g} ({self.scorer.coverage.factor:g} x the smallest of "
                    "the model's validation normals; every slice if none has that much body)"
                ),
                "slices_not_counted": "0-based indices of the slices with less body than that: scored and mapped, not in the case score",
                "label": "1 (anomalous) when score >= threshold, else 0 (normal)",
                "normality": "paper Eq. 14 over the scored cases of this run (1 = most normal); for reports only",
                "max_slice": "0-based index of the slice that gave the score (the highest-scoring counted slice) along the last axis of the input as loaded",
                "input_index": "1-based position of the input on the command line (the inputs' names are not reported)",
                "anomaly_mask": "1 where the anomaly map (as written, float32) >= threshold, else 0; the region of the DICOM SEG",
                "dicom": "DICOM SEG, Parametric Map and SR of DICOM inputs (null for NIfTI and PNG/JPEG inputs: no study to attach to)",
            },
            "cases": cases,
            "failures": failures,
            "warnings": [] if self.modality else ["the model records no modality: input modalities were not checked."],
            "reports": {
                "csv": str(output_dir / "scores.csv"), "json": str(output_dir / "scores.json"),
                "html": str(output_dir / "index.html"),
            },  # fmt: skip
        }


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: strings that start like a formula get a leading ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write_reports(output_dir: Path, report: dict[str, Any], include_identifiers: bool) -> None:
    columns = list(REPORT_COLUMNS) + (list(IDENTIFIER_COLUMNS) if include_identifiers else [])
    rows = [{**c, "warnings": " | ".join(c["warnings"])} for c in report["cases"]]
    rows += [{**f, "status": "failed"} for f in report["failures"]]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)
    atomic_write(output_dir / "scores.csv", lambda f: f.write(text.getvalue().encode("utf-8")))
    body = json.dumps(report, indent=2, allow_nan=False) + "\n"
    atomic_write(output_dir / "scores.json", lambda f: f.write(body.encode("utf-8")))
