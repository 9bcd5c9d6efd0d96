"""Medical image data in: readers, DICOM handling, presets, slicing and conversion.

Each line imports the public names of one module; ``__all__`` collects them.
"""

from mama_monai.data.errors import ImageLoadError, UnsupportedTransferSyntaxError
from mama_monai.data.dicom_series import SeriesInfo, find_dicom_series, select_series, validate_series
from mama_monai.data.dicom_pixels import read_dicom_file
from mama_monai.data.readers import SimpleITKReader
from mama_monai.data.loading import LoadFailure, LoadMedicalImaged, load_image, load_many

__all__ = [
    "ImageLoadError",
    "UnsupportedTransferSyntaxError",
    "SeriesInfo",
    "find_dicom_series",
    "select_series",
    "validate_series",
    "read_dicom_file",
    "SimpleITKReader",
    "LoadFailure",
    "LoadMedicalImaged",
    "load_image",
    "load_many",
]
