"""DICOM Segmentation, Parametric Map and Structured Report of one scored DICOM input (highdicom).

``score`` writes these under ``<case>/dicom/`` for every DICOM input (series folder or single
file), so the result goes back to the patient's study in a PACS and opens in OHIF, 3D Slicer or
the PACS viewer. The convention follows MONAI Deploy's ``DICOMSegmentationWriterOperator``:
highdicom builds the objects from the source slices' own headers.

- ``seg.dcm``, **DICOM Segmentation, BINARY**: the anomaly region, i.e. the anomaly map as written
  to ``anomaly_map.nii.gz`` (float32) ``>= threshold`` (the model's calibrated threshold), exactly
  the voxels of ``anomaly_mask.nii.gz``. One segment, "anomaly region": category and type SCT
  49755003 "Morphologically abnormal structure", algorithm type AUTOMATIC, algorithm
  identification ``mama-monai`` (family DCM "Artificial Intelligence"), version = package
  version + model sha256, parameters = the threshold. **One frame per source slice**, each
  referencing its source instance, same Frame of Reference, orientation, spacing and position
  (:func:`~mama_monai.clinical.source_frames.map_to_frames`).
- **An empty region still gives a SEG** (all frames empty, ``omit_empty_frames=False``): a case
  scored "normal" is then visibly analysed in the PACS, with nothing marked, instead of missing.
- ``parametric_map.dcm``, **Parametric Map** rather than a FRACTIONAL SEG. Decision: the map is an
  unbounded squared error, not a probability or an occupancy in [0, 1], which is all a fractional
  SEG can say (and only in 256 steps); a Parametric Map keeps the value with a Real World Value
  Mapping (unit UCUM "1", no units; its explanation states the threshold) and a default window
  centred on the threshold (centre = threshold, width = 2 x threshold: the overlay PNG's colour
  scale), so a viewer windows it like the overlay. Stored as uint16 with the mapping's slope
  (``max / 65535``, error <= half a step, max / 131070), RLE Lossless (mostly zeros outside
  the body: small). Laterality is present and empty (unknown).
- ``sr.dcm``, **Comprehensive 3D SR, TID 1500 Measurement Report** with one volumetric ROI
  (TID 1411) that references the SEG's segment and the source series: measurements "anomaly
  score" (the case score) and "anomaly threshold", the qualitative finding Normal / Abnormal
  (SCT) as labelled, and the image of the slice that gave the case score as the score's source image; the
  algorithm identification as in the SEG; the SEG and the parametric map are listed in its
  evidence. Codes for the score and threshold are our own, in the declared
  private coding scheme ``99MAMAMONAI``.
- **Derived objects**: new Series and SOP Instance UIDs for each object; the Patient and Study
  modules of the source are kept (highdicom copies them: the objects belong to the same
  patient's study; this is the one place identifiers are written, and only because the user
  asked for DICOM outputs); Manufacturer ``mama-monai``, Software Versions = package version,
  Device Serial Number = model sha256 prefix. No private tag, no burned-in annotation and no other
  source element is copied (highdicom builds the objects from scratch; the tests check it).

NIfTI and PNG inputs have no study to attach to: they get the NIfTI map and mask only.

Example:
    >>> paths = write_dicom_outputs(case_dir / "dicom", headers, amap, affine, summary)  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['parametric_map', 'seg', 'sr']
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.uid import RLELossless, generate_uid

import mama_monai
from mama_monai.atomic import atomic_write
from mama_monai.clinical.source_frames import map_to_frames

__all__ = ["CaseSummary", "DicomOutputError", "MANUFACTURER", "write_dicom_outputs"]

#: Manufacturer and Manufacturer's Model Name of every object written
MANUFACTURER = "mama-monai"
_SCHEME = "99MAMAMONAI"
_SCORE = hd.sr.CodedConcept("ANOMALY_SCORE", _SCHEME, "Anomaly score")
_THRESHOLD = hd.sr.CodedConcept("ANOMALY_THRESHOLD", _SCHEME, "Anomaly threshold")
_SERIES = {"seg": 9101, "parametric_map": 9102, "sr": 9103}  # Series Numbers of the derived series


class DicomOutputError(ValueError):
    """The DICOM outputs of a case could not be built (the NIfTI outputs are unaffected)."""


@dataclass(frozen=True)
class CaseSummary:
    """What the objects say about a scored case.

    Attributes:
        score: the case score (the maximum slice score over the counted slices, :mod:`mama_monai.evaluation.case_score`).
        threshold: the model's calibrated threshold.
        label_name: ``"anomalous"`` or ``"normal"``.
        max_slice: index of the slice that gave the case score along the last axis of the map.
        model_sha256: the model file's sha256 (prefix).
    """

    score: float
    threshold: float
    label_name: str
    max_slice: int
    model_sha256: str


def _algorithm(summary: CaseSummary) -> hd.AlgorithmIdentificationSequence:
    return hd.AlgorithmIdentificationSequence(
        name=MANUFACTURER,
        family=codes.cid7162.ArtificialIntelligence,
        version=f"{mama_monai.__version__} model {summary.model_sha256}",
        parameters={"threshold": f"{summary.threshold:.6g}"},
    )


def _equipment(summary: CaseSummary) -> dict[str, str]:
    return {
        "manufacturer": MANUFACTURER,
        "manufacturer_model_name": MANUFACTURER,
        "software_versions": mama_monai.__version__,
        "device_serial_number": summary.model_sha256,
    }


def build_seg(headers: list[pydicom.Dataset], mask: np.ndarray, summary: CaseSummary) -> hd.seg.Segmentation:
    """The BINARY SEG of ``mask`` (``(frames, rows, columns)``, one frame per header)."""
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="anomaly region",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.MorphologicallyAbnormalStructure,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=_algorithm(summary),
        tracking_uid=generate_uid(),
        tracking_id="anomaly region",
    )
    return hd.seg.Segmentation(
        source_images=headers,
        pixel_array=mask.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=generate_uid(),
        series_number=_SERIES["seg"],
        sop_instance_uid=generate_uid(),
        instance_number=1,
        series_description="mama-monai anomaly region",
        content_description=f"anomaly map >= {summary.threshold:.6g}",
        content_label="ANOMALY",
        omit_empty_frames=False,
        **_equipment(summary),
    )


def build_parametric_map(headers: list[pydicom.Dataset], frames: np.ndarray, summary: CaseSummary) -> hd.pm.ParametricMap:
    """The Parametric Map of ``frames`` (float map values, ``(frames, rows, columns)``)."""
    values = np.clip(np.asarray(frames, dtype=np.float64), 0.0, None)
    top = float(values.max())
    slope = top / 65535.0 if top > 0 else 1.0
    stored = np.rint(values / slope).astype(np.uint16)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="ANOMALY",
        lut_explanation=f"smoothed squared error; threshold {summary.threshold:.6g}",
        unit=codes.UCUM.NoUnits,
        value_range=(0, 65535),
        slope=slope,
        intercept=0.0,
    )
    threshold = max(summary.threshold, np.finfo(np.float32).tiny)
    window = hd.VOILUTTransformation(window_center=threshold / slope, window_width=2 * threshold / slope)
    pmap = hd.pm.ParametricMap(
        source_images=headers,
        pixel_array=stored,
        series_instance_uid=generate_uid(),
        series_number=_SERIES["parametric_map"],
        sop_instance_uid=generate_uid(),
        instance_number=1,
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[window],
        transfer_syntax_uid=RLELossless,
        series_description="mama-monai anomaly map",
        content_description="anomaly map (smoothed squared error)",
        content_label="ANOMALYMAP",
        **_equipment(summary),
    )
    pmap.Laterality = None  # General Series, Type 2C: present and empty = unknown (dciodvfy requires it here)
    return pmap


def build_sr(
    headers: list[pydicom.Dataset], seg: hd.seg.Segmentation, summary: CaseSummary, max_frame: int | None,
    parametric_map: pydicom.Dataset | None = None,
) -> hd.sr.Comprehensive3DSR:
    """The TID 1500 measurement report: score, threshold and finding, referencing the SEG and the source
    series; the source slices, the SEG and the parametric map (when given) are its evidence."""
    algorithm = hd.sr.AlgorithmIdentification(
        name=MANUFACTURER, version=f"{mama_monai.__version__} model {summary.model_sha256}",
        parameters=[f"threshold {summary.threshold:.6g}"],
    )  # fmt: skip
    top = None if max_frame is None else [hd.sr.SourceImageForMeasurement.from_source_image(headers[max_frame])]
    measurements = [
        hd.sr.Measurement(name=_SCORE, value=summary.score, unit=codes.UCUM.NoUnits, algorithm_id=algorithm, referenced_images=top),
        hd.sr.Measurement(name=_THRESHOLD, value=summary.threshold, unit=codes.UCUM.NoUnits, algorithm_id=algorithm),
    ]
    finding = hd.sr.QualitativeEvaluation(
        name=codes.DCM.Finding, value=codes.SCT.Abnormal if summary.label_name == "anomalous" else codes.SCT.Normal
    )
    roi = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier="anomaly region"),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=1,
            source_series=hd.sr.SourceSeriesForSegmentation(headers[0].SeriesInstanceUID),
        ),
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=[finding],
    )  # fmt: skip
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=MANUFACTURER, manufacturer_name=MANUFACTURER, model_name=MANUFACTURER,
            serial_number=summary.model_sha256,
        ),
    )  # fmt: skip
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=[roi],
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*headers, seg, *([] if parametric_map is None else [parametric_map])],
        content=report,
        series_instance_uid=generate_uid(),
        series_number=_SERIES["sr"],
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description="mama-monai anomaly report",
        is_complete=True,
    )
    scheme = pydicom.Dataset()  # the private coding scheme of the score and threshold codes, declared (SOP Common)
    scheme.CodingSchemeDesignator = _SCHEME
    scheme.CodingSchemeName = "mama-monai local codes"
    scheme.CodingSchemeResponsibleOrganization = "mama-monai developers"
    sr.CodingSchemeIdentificationSequence = [scheme]
    return sr


def _max_frame(affine: np.ndarray, headers: list[pydicom.Dataset], max_slice: int, ndim: int) -> int | None:
    """The source frame lying on map slice ``max_slice`` (last axis), or ``None`` when none does."""
    if ndim < 3 or "ImagePositionPatient" not in headers[0]:
        return 0 if len(headers) == 1 else None
    to_voxel = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    for number, ds in enumerate(headers):
        world = np.array([float(v) for v in ds.ImagePositionPatient]) * np.array([-1.0, -1.0, 1.0])
        if int(np.rint(to_voxel[2, :3] @ world + to_voxel[2, 3])) == max_slice:
            return number
    return None


def _save(dataset: pydicom.Dataset, path: Path) -> Path:
    return atomic_write(path, lambda f: dataset.save_as(f, enforce_file_format=True))


def write_dicom_outputs(
    folder: str | os.PathLike,
    headers: list[pydicom.Dataset],
    volume: np.ndarray,
    affine: np.ndarray,
    summary: CaseSummary,
) -> dict[str, Path]:
    """Write ``seg.dcm``, ``parametric_map.dcm`` and ``sr.dcm`` into ``folder`` (atomically).

    Args:
        folder: the case's ``dicom/`` folder.
        headers: the source slices (:func:`~mama_monai.clinical.source_frames.read_source_headers`).
        volume: the anomaly map as written to ``anomaly_map.nii.gz`` (float32, input grid).
        affine: its NIfTI (RAS) affine.
        summary: score, threshold, label, slice of the maximum, model hash.

    Returns:
        ``{"seg", "parametric_map", "sr"}`` -> written paths.

    Raises:
        DicomOutputError: the objects cannot be built (the message says why); nothing is written then.
    """
    volume = np.asarray(volume, dtype=np.float32)
    quiet = logging.getLogger("highdicom")
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))  # its INFO lines list every copied module and the source UIDs
    try:
        with warnings.catch_warnings():  # the source's own PatientName style is not ours to judge
            warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name", category=UserWarning)
            frames = map_to_frames(volume, affine, headers)
            seg = build_seg(headers, frames >= np.float32(summary.threshold), summary)
            pmap = build_parametric_map(headers, frames, summary)
            sr = build_sr(headers, seg, summary, _max_frame(affine, headers, summary.max_slice, volume.ndim), pmap)
    except Exception as err:  # highdicom refuses a source in many ways; the case itself stays scored
        raise DicomOutputError(f"no DICOM outputs: {type(err).__name__}: {' '.join(str(err).split())}") from err
    finally:
        quiet.setLevel(level)
    folder = Path(folder)
    return {
        "seg": _save(seg, folder / "seg.dcm"),
        "parametric_map": _save(pmap, folder / "parametric_map.dcm"),
        "sr": _save(sr, folder / "sr.dcm"),
    }
