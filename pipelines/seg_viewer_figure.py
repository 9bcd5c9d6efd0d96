"""The README's viewer-style picture of score's DICOM outputs: SEG and Parametric Map over the CT.

Reads back what ``mama-monai score`` wrote for a DICOM series (highdicom for the SEG, pydicom for
the Parametric Map and the source slice) and draws one axial slice as a viewer shows it: the CT in
a lung window, the SEG's region filled and outlined, and the Parametric Map in real-world values
windowed like the overlay (0 to 2 x threshold); optionally a reference mask outlined in green.

    python pipelines/seg_viewer_figure.py SCORES_DIR/case_001 SERIES_DIR docs/seg_viewer.png --z -115 \
        --outline mama_monai/demo_data/lidc_idri_0001/nodule_mask.nii.gz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure


def _frame(ds: pydicom.Dataset, uid: str) -> int:
    for i, f in enumerate(ds.PerFrameFunctionalGroupsSequence):
        if f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID == uid:
            return i
    raise ValueError(f"no frame references {uid}")


def _resampled(path: Path, source: pydicom.Dataset) -> np.ndarray:
    """The NIfTI mask at ``path`` sampled (nearest voxel) at every pixel centre of ``source``."""
    import nibabel as nib

    image = nib.load(path)
    mask = np.asanyarray(image.dataobj) > 0
    r, c = np.mgrid[0 : int(source.Rows), 0 : int(source.Columns)]
    iop = np.array([float(v) for v in source.ImageOrientationPatient])
    dy, dx = (float(v) for v in source.PixelSpacing)
    lps = np.array([float(v) for v in source.ImagePositionPatient]) + c[..., None] * dx * iop[:3] + r[..., None] * dy * iop[3:]
    ras = lps * np.array([-1.0, -1.0, 1.0])
    to_voxel = np.linalg.inv(image.affine)
    index = np.rint(ras @ to_voxel[:3, :3].T + to_voxel[:3, 3]).astype(int)
    inside = np.all((index >= 0) & (index < np.array(mask.shape[:3])), axis=-1)
    out = np.zeros(index.shape[:2], bool)
    out[inside] = mask[index[inside][:, 0], index[inside][:, 1], index[inside][:, 2]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case_dir", type=Path)
    parser.add_argument("series_dir", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--z", type=float, required=True, help="slice position (mm) to show")
    parser.add_argument("--outline", type=Path, default=None, help="a NIfTI mask to outline in green (e.g. the radiologists' nodules)")
    args = parser.parse_args()
    sources = [pydicom.dcmread(p) for p in sorted(args.series_dir.iterdir()) if p.suffix == ".dcm"]
    source = min(sources, key=lambda ds: abs(float(ds.ImagePositionPatient[2]) - args.z))
    hu = source.pixel_array * float(source.RescaleSlope) + float(source.RescaleIntercept)
    seg = hd.seg.segread(args.case_dir / "dicom" / "seg.dcm")
    region = seg.pixel_array[_frame(seg, source.SOPInstanceUID)] > 0
    pm = pydicom.dcmread(args.case_dir / "dicom" / "parametric_map.dcm")
    mapping = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    values = pm.pixel_array[_frame(pm, source.SOPInstanceUID)] * float(mapping.RealWorldValueSlope)
    threshold = float(pm.SharedFunctionalGroupsSequence[0].FrameVOILUTSequence[0].WindowCenter) * float(mapping.RealWorldValueSlope)
    fig = Figure(figsize=(11, 5.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        ax.imshow(hu, cmap="gray", vmin=-1000, vmax=400)
        ax.set_axis_off()
    fill = np.zeros((*region.shape, 4))
    fill[region] = (1.0, 0.15, 0.1, 0.45)
    left.imshow(fill)
    left.contour(region, levels=[0.5], colors="yellow", linewidths=0.8)
    if args.outline is not None:
        reference = _resampled(args.outline, source)
        for ax in (left, right):
            ax.contour(reference, levels=[0.5], colors="lime", linewidths=1.2)
    left.set_title(f"DICOM SEG 'anomaly region' (map >= {threshold:.3g}) over the CT, z = {float(source.ImagePositionPatient[2]):g} mm", fontsize=9)
    norm = Normalize(0.0, 2 * threshold, clip=True)
    heat = colormaps["jet"](norm(values))
    heat[..., 3] = 0.6 * norm(values)
    right.imshow(heat)
    right.set_title("DICOM Parametric Map (real-world values, window 0 to 2 x threshold)", fontsize=9)
    if args.outline is not None:
        fig.suptitle(f"green: {args.outline.name}", fontsize=9)
    fig.savefig(args.output, dpi=80)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
