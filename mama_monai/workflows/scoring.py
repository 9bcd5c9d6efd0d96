"""Score new cases with a saved model: per-case score and label, NIfTI anomaly maps, overlays, a report.

``mama-monai score`` runs :func:`score_cases`. Each input (a DICOM series folder, a DICOM file,
a NIfTI file or a PNG/JPEG) is loaded and preprocessed exactly as training does (the checkpoint's
preset with its pinned loader, at the checkpoint's ``spatial_size``), cut into axial slices (the
last axis; a 2D image is one slice) and scored slice by slice with the checkpoint's
:class:`~mama_monai.engines.anomaly_map.AnomalyMap` settings (DESIGN.md §2, "scores in deployment").

Output layout (``output_dir``)::

    scores.csv                  one row per input; failed inputs have status=failed and an error
    scores.json                 the same cases with slice scores, plus the model, failures, warnings
    <case>/anomaly_map.nii.gz   the anomaly map on the input's own grid (shape, spacing, affine)
    <case>/overlay.png          the slice with the highest score, the map as a heat overlay

Every file is written atomically (a temporary file in the same folder, then ``os.replace``), and
the report last: an interrupted run leaves complete files only, and no report.

Privacy: case names come from the input file or folder name (letters, digits, ``-_.``); a DICOM
input whose name or path contains its own PatientName, PatientID or BirthDate gets ``case_<n>``
and those strings are replaced by ``[redacted]`` in the report. Patient data are never copied
into names, logs or reports, except the DICOM PatientID column with ``include_identifiers=True``.

Example:
    >>> report = score_cases("model.pt", ["ct_folder", "chest.nii.gz"], "scores")  # doctest: +SKIP
    >>> [(c["case"], c["score"], c["label_name"]) for c in report["cases"]]  # doctest: +SKIP
    [('ct_folder', 0.0123, 'normal'), ('chest', 0.0481, 'anomalous')]
"""

from __future__ import annotations

import csv
import datetime
import gzip
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import torch
from monai.transforms import Resize
from tqdm.auto import tqdm

import mama_monai
from mama_monai.atomic import atomic_write
from mama_monai.data.dicom_series import find_dicom_series, is_dicom_file, select_series
from mama_monai.data.presets import get_preset
from mama_monai.data.slicing import slice_volume, stack_slices
from mama_monai.engines.anomaly_map import AnomalyMap
from mama_monai.engines.checkpoint import load_model
from mama_monai.evaluation.images import overlay_png
from mama_monai.evaluation.metrics import normality_scores

__all__ = ["REPORT_COLUMNS", "ModalityMismatchError", "OutputExistsError", "score_cases"]

logger = logging.getLogger(__name__)

#: Columns of ``scores.csv`` (``patient_id`` is appended with ``include_identifiers=True``).
REPORT_COLUMNS = (
    "case", "input", "status", "score", "normality", "label", "label_name", "threshold",
    "threshold_method", "max_slice", "num_slices", "model", "model_sha256", "warnings", "error",
)  # fmt: skip
_REPORT_FILES = ("scores.csv", "scores.json")
_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".dicom", ".png", ".jpg", ".jpeg")
_IDENTIFIER_TAGS = ("Modality", "PatientName", "PatientID", "PatientBirthDate", "OtherPatientIDs")
_REDACTED = "[redacted]"


class ModalityMismatchError(ValueError):
    """An input's DICOM Modality differs from the modality the model was trained on."""


class OutputExistsError(FileExistsError):
    """The output folder exists and is not empty, and overwriting was not asked for."""


@dataclass
class _Input:
    """One input as given, with what its DICOM header says (nothing for NIfTI / PNG)."""

    path: str
    modality: str = ""
    patient_id: str = ""
    identifiers: list[str] = field(default_factory=list)

    def redact(self, text: str) -> str:
        for ident in self.identifiers:
            text = re.sub(re.escape(ident), _REDACTED, text, flags=re.IGNORECASE)
        return text


def _header(path: Path, series_uid: str | None) -> pydicom.Dataset | None:
    """The DICOM header of a file or of the first file of the chosen series; ``None`` otherwise."""
    try:
        if path.is_dir():
            first = select_series(find_dicom_series(path), path, series_uid).files[0]
        elif path.is_file() and is_dicom_file(path):
            first = path
        else:
            return None
        return pydicom.dcmread(first, stop_before_pixels=True, force=True, specific_tags=list(_IDENTIFIER_TAGS))
    except Exception:  # unreadable: the loader reports it when the case is scored
        return None


def _inspect(path: str, series_uid: str | None) -> _Input:
    ds = _header(Path(path), series_uid)
    if ds is None:
        return _Input(path)
    values = [str(ds.get(tag, "") or "") for tag in _IDENTIFIER_TAGS[1:]]
    parts = set(values) | set(re.split(r"[\^\s=,\\]+", values[0]))
    identifiers = sorted((p.strip() for p in parts if len(p.strip()) >= 3), key=len, reverse=True)
    return _Input(path, str(ds.get("Modality", "") or "").upper(), str(ds.get("PatientID", "") or ""), identifiers)


def _case_names(inputs: Sequence[_Input]) -> list[str]:
    """Names from the file / folder names, sanitised, unique (case-insensitively), free of identifiers."""
    taken = {name.lower() for name in _REPORT_FILES}
    names = []
    for index, item in enumerate(inputs, start=1):
        base = Path(item.path.rstrip("/\\")).name
        for suffix in _SUFFIXES:
            if base.lower().endswith(suffix) and len(base) > len(suffix):
                base = base[: -len(suffix)]
                break
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._-")
        if not base or item.redact(base) != base:
            base = f"case_{index:03d}"
        name, n = base, 2
        while name.lower() in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name.lower())
        names.append(name)
    return names


def _write_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    image = nib.Nifti1Image(np.asarray(array, dtype=np.float32), np.asarray(affine, dtype=np.float64))
    image.set_qform(image.affine, code=1)  # scanner coordinates, read by ITK-SNAP / 3D Slicer
    image.set_sform(image.affine, code=1)
    image.header.set_xyzt_units("mm")
    atomic_write(path, lambda f: f.write(gzip.compress(image.to_bytes(), mtime=0)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputExistsError(f"output {str(output_dir)!r} exists and is not a folder; choose another --output.")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"output folder {str(output_dir)!r} exists and is not empty; choose a new folder or pass "
            "--overwrite (overwrite=True) to replace the files of the same names in it."
        )


def _check_modalities(inputs: Sequence[_Input], expected: str, force: bool) -> None:
    bad = [
        f"{item.redact(item.path)!r} is {item.modality}"
        for item in inputs
        if expected and item.modality and item.modality != expected
    ]
    if bad and not force:
        raise ModalityMismatchError(
            f"the model was trained on {expected} images but input {'; '.join(bad)}: refused, a model scores only "
            "its own modality. Pass --force (force=True) to score anyway."
        )


class _Scorer:
    """Load + preprocess one input as training does, run the network on its slices, keep the maps."""

    def __init__(
        self, network: torch.nn.Module, payload: dict[str, Any], device: torch.device, batch_size: int
    ) -> None:
        config = payload["config"]
        pre = config["preprocessing"]
        self.network, self.device, self.batch_size = network, device, batch_size
        self.preset, self.spatial_size = pre["preset"], list(pre["spatial_size"])
        self.in_channels = config["network_def"].get("in_channels")
        self.loader = get_preset(self.preset, self.spatial_size, 2, with_loader=True).transforms[0]
        self.chains = {dims: get_preset(self.preset, self.spatial_size, dims) for dims in (2, 3)}
        self.anomaly = AnomalyMap(2, **config["scoring"]).to(device)

    def __call__(self, path: str, series_uid: str | None) -> dict[str, Any]:
        data = self.loader({"image": path, "series_uid": series_uid})
        data = self.chains[data["image"].ndim - 1](data)
        image = data["image"]
        if self.in_channels is not None and image.shape[0] != self.in_channels:
            raise ValueError(
                f"the image has {image.shape[0]} channel(s) after preset {self.preset!r}; the model expects {self.in_channels}."
            )
        slices = [s["image"] for s in slice_volume({"image": image})]
        maps, scores = [], []
        with torch.no_grad():
            for start in range(0, len(slices), self.batch_size):
                batch = torch.stack([s.as_tensor().float() for s in slices[start : start + self.batch_size]]).to(
                    self.device
                )
                amap = self.anomaly.map(batch, self.network(batch))
                maps.extend(amap.cpu())
                scores.append(self.anomaly.score(amap).cpu())
        slice_scores = torch.cat(scores).double().numpy()
        if not np.all(np.isfinite(slice_scores)):
            raise ValueError("the network produced non-finite values (NaN or inf) for this input.")
        volume = stack_slices(maps, reference=slices[0].meta, grid="original")
        array = volume.as_tensor()[0].numpy()  # (W, H[, D])
        k = int(np.argmax(slice_scores))
        map2d = array if array.ndim == 2 else array[..., k]
        picture = slices[k].as_tensor().float().mean(0, keepdim=True)
        picture = torch.as_tensor(Resize(spatial_size=map2d.shape, mode="bilinear")(picture))[0].numpy()
        return {
            "map": array,
            "affine": np.asarray(volume.affine, dtype=np.float64),
            "slice_scores": slice_scores,
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
) -> dict[str, Any]:
    """Score each input with the model at ``model_path``; write maps, overlays and the run report.

    The **case score is the maximum of the slice scores** (each slice scored by the checkpoint's
    ``AnomalyMap`` reduction), so a case is as anomalous as its most anomalous slice; the label is
    ``score >= threshold`` with the threshold stored in the checkpoint (calibrated on held-out
    normal slices), i.e. a case is anomalous when any slice is. ``max_slice`` is that slice's
    index along the last axis of the input as loaded (and of ``anomaly_map.nii.gz``). The
    normality (paper Eq. 14) rescales the scores of this run's cases to [0, 1] (1 = most
    normal): for reports only, it changes with the set of cases.

    Args:
        model_path: a model file written by :func:`~mama_monai.engines.checkpoint.save_model`.
        inputs: DICOM series folders, DICOM files, NIfTI files, PNG/JPEG images.
        output_dir: new or empty folder for the outputs (layout in the module docstring).
        device: ``"cpu"`` (default) or ``"cuda"``.
        series_uid: SeriesInstanceUID to read from folders holding several series (default ``None``).
        force: score inputs whose DICOM Modality differs from the model's (default ``False``: refused).
        overwrite: write into an existing non-empty ``output_dir``, replacing files of the same
            names (default ``False``: refused). Other files there are left alone.
        include_identifiers: add the DICOM PatientID column (default ``False``: no patient data).
        batch_size: slices per forward pass (default 16).
        progress: show a progress bar over the cases (default ``False``).

    Returns:
        The report written to ``scores.json``: ``cases`` (one dict per scored input, keys of
        :data:`REPORT_COLUMNS` plus ``slice_scores``, ``anomaly_map``, ``overlay``), ``failures``
        (``input``, ``case``, ``error``), ``model``, ``warnings`` and the paths of the reports.

    Raises:
        OutputExistsError: ``output_dir`` exists and is not empty, without ``overwrite``.
        CheckpointError: a missing, corrupted or foreign model file.
        ModalityMismatchError: a DICOM input of another modality than the model's, without ``force``.
        ValueError: no inputs or a bad ``batch_size``.
    """
    if not inputs:
        raise ValueError("inputs must name at least one DICOM folder/file, NIfTI or PNG/JPEG, got none.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    output_dir, model_path = Path(output_dir), Path(model_path)
    _check_output_dir(output_dir, overwrite)
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device must be 'cpu' here: {str(device)!r} was asked for but CUDA is not available.")
    network, payload = load_model(model_path, device)
    pre = payload["config"]["preprocessing"]
    model_modality = str(pre.get("modality") or "").upper()
    threshold = float(payload["threshold"]["value"])
    method = str(payload["threshold"].get("method", "unknown"))
    model = {"file": model_path.name, "sha256": _sha256(model_path)[:12]}
    items = [_inspect(str(p), series_uid) for p in inputs]
    _check_modalities(items, model_modality, force)
    names = _case_names(items)
    scorer = _Scorer(network, payload, device, batch_size)
    reduction = payload["config"]["scoring"].get("reduction", "max")
    output_dir.mkdir(parents=True, exist_ok=True)

    run_warnings = [] if model_modality else ["the model records no modality: input modalities were not checked."]
    cases, failures = [], []
    for item, name in tqdm(list(zip(items, names)), desc="scoring", unit="case", disable=not progress):
        shown = item.redact(item.path)
        try:
            result = scorer(item.path, series_uid)
            notes = []
            modality = item.modality or result["modality"]
            if not modality:
                notes.append(
                    f"no modality information in the input; scored as {model_modality or 'the model modality'}, unchecked."
                )
            elif model_modality and modality != model_modality:
                if not force:
                    raise ModalityMismatchError(
                        f"the input is {modality}, the model {model_modality}; pass --force to score it."
                    )
                notes.append(
                    f"input modality {modality} differs from the model's {model_modality}; scored with --force."
                )
            case_dir = output_dir / name
            case_dir.mkdir(exist_ok=True)
            _write_nifti(case_dir / "anomaly_map.nii.gz", result["map"], result["affine"])
            score = float(result["slice_scores"].max())
            label = int(score >= threshold)
            label_name = "anomalous" if label else "normal"
            picture, map2d = result["overlay"]
            by_max = reduction == "max" and threshold > 0
            overlay_png(
                picture.T,  # (W, H) index order -> rows = image rows, as DICOM viewers show a slice
                map2d.T,
                case_dir / "overlay.png",
                threshold=threshold if by_max else None,
                vmax=2 * threshold if by_max else None,
                title=f"{name}: score {score:.4g} ({label_name}), slice {result['max_slice']}",
            )
        except Exception as err:  # one bad input never stops the others
            message = item.redact(" ".join(str(err).split()) or type(err).__name__)
            failures.append({"input": shown, "case": name, "error": f"{type(err).__name__}: {message}"})
            logger.warning("skipped %s: %s", shown, message)
            continue
        case = {
            "case": name, "input": shown, "status": "ok", "score": score, "normality": None, "label": label,
            "label_name": label_name, "threshold": threshold, "threshold_method": method,
            "max_slice": result["max_slice"], "num_slices": int(result["slice_scores"].size),
            "model": model["file"], "model_sha256": model["sha256"], "warnings": notes, "error": "",
            "slice_scores": [float(s) for s in result["slice_scores"]],
            "anomaly_map": f"{name}/anomaly_map.nii.gz", "overlay": f"{name}/overlay.png",
        }  # fmt: skip
        if include_identifiers:
            case["patient_id"] = item.patient_id
        cases.append(case)

    if cases:
        for case, value in zip(cases, normality_scores([c["score"] for c in cases])):
            case["normality"] = float(value)
    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mama_monai_version": mama_monai.__version__,
        "model": {
            **model,
            "threshold": payload["threshold"],
            **{key: pre.get(key) for key in ("preset", "spatial_size", "modality")},
            "scoring": payload["config"]["scoring"],
        },
        "definitions": {
            "score": f"maximum over the case's slices of the slice score ({reduction} of the smoothed squared error map)",
            "label": "1 (anomalous) when score >= threshold, else 0 (normal)",
            "normality": "paper Eq. 14 over the scored cases of this run (1 = most normal); for reports only",
            "max_slice": "0-based index of the highest-scoring slice along the last axis of the input as loaded",
        },
        "cases": cases,
        "failures": failures,
        "warnings": run_warnings,
        "reports": {"csv": str(output_dir / "scores.csv"), "json": str(output_dir / "scores.json")},
    }
    _write_reports(output_dir, report, include_identifiers)
    return report


def _write_reports(output_dir: Path, report: dict[str, Any], include_identifiers: bool) -> None:
    columns = list(REPORT_COLUMNS) + (["patient_id"] if include_identifiers else [])
    rows = [{**c, "warnings": " | ".join(c["warnings"])} for c in report["cases"]]
    rows += [
        {"case": f["case"], "input": f["input"], "status": "failed", "error": f["error"]} for f in report["failures"]
    ]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(output_dir / "scores.csv", lambda f: f.write(text.getvalue().encode("utf-8")))
    body = json.dumps(report, indent=2, allow_nan=False) + "\n"
    atomic_write(output_dir / "scores.json", lambda f: f.write(body.encode("utf-8")))
