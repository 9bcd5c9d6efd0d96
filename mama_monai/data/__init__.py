"""Medical image data in: readers, DICOM handling, presets, slicing, conversion, manifests and demo data.

Each line imports the public names of one module; ``__all__`` collects them.
"""

from mama_monai.data.manifest import Manifest, ManifestCase, load_manifest, split_cases, write_manifest
from mama_monai.data.folds import assign_folds
from mama_monai.data.builders import BUILDERS, ExtraFilesWarning, build_manifest
from mama_monai.data.lidc import parse_lidc_xml, rasterize_reading
from mama_monai.data.simulated_lesions import Lesion, RandSimulatedLesion, RandSimulatedLesiond, insert_lesions, simulate_lesions
from mama_monai.data.demo import demo_data_dir, demo_manifest, demo_slice_table, load_demo_brain, load_demo_ct

__all__ = [
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
    "RandSimulatedLesion",
    "RandSimulatedLesiond",
    "insert_lesions",
    "simulate_lesions",
    "demo_data_dir",
    "demo_manifest",
    "demo_slice_table",
    "load_demo_brain",
    "load_demo_ct",
]
