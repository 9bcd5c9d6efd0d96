"""Clinical outputs of ``score``: DICOM Segmentation, Parametric Map and Structured Report for DICOM
inputs (:mod:`~mama_monai.clinical.dicom_outputs`), built with highdicom on the source series'
own slices (:mod:`~mama_monai.clinical.source_frames`)."""

from mama_monai.clinical.dicom_outputs import DicomOutputError, write_dicom_outputs
from mama_monai.clinical.source_frames import SourceFrameError, map_to_frames, read_source_headers

__all__ = ["DicomOutputError", "SourceFrameError", "map_to_frames", "read_source_headers", "write_dicom_outputs"]
