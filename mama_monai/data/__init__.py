"""Medical image data in: readers, DICOM handling, presets, slicing, conversion, manifests and demo data.

Each line imports the public names of one module; ``__all__`` collects them.
"""

from mama_monai.data.errors import ImageLoadError, UnsupportedTransferSyntaxError
from mama_monai.data.dicom_series import SeriesInfo, find_dicom_series, select_series, validate_series
from mama_monai.data.dicom_pixels import read_dicom_file
from mama_monai.data.readers import SimpleITKReader
from mama_monai.data.loading import LoadFailure, LoadMedicalImaged, load_image, load_many
from mama_monai.data.presets import get_preset, list_presets, preset_path
from mama_monai.data.slicing import slice_volume, stack_slices
from mama_monai.data.convert import convert
from mama_monai.data.manifest import Manifest, ManifestCase, load_manifest, split_cases, write_manifest
from mama_monai.data.folds import assign_folds
from mama_monai.data.builders import BUILDERS, ExtraFilesWarning, build_manifest
from mama_monai.data.lidc import parse_lidc_xml, rasterize_reading
from mama_monai.data.simulated_lesions import Lesion, insert_lesions, simulate_lesions
from mama_monai.data.demo import demo_data_dir, demo_manifest, demo_slice_table, load_demo_brain, load_demo_ct

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
    "get_preset",
    "list_presets",
    "preset_path",
    "slice_volume",
    "stack_slices",
    "convert",
    "Manifest",
    "ManifestCase",
    "load_manifest",
    "split_cases",
    "write_manifest",
    "assign_folds",
    "BUILDERS",
    "ExtraFilesWarning",
    "build_manifest",
    "parse_lidc_xml",
    "rasterize_reading",
    "Lesion",
    "insert_lesions",
    "simulate_lesions",
    "demo_data_dir",
    "demo_manifest",
    "demo_slice_table",
    "load_demo_brain",
    "load_demo_ct",
]
