"""A manifest from a plain folder tree: ``mama-monai manifest folder`` (anomalib's ``Folder`` convention).

A user points at a folder of normal scans (``normal``), optionally one of abnormal scans
(``abnormal``) and one of their masks (``masks``); :func:`build_folder_manifest` writes a
validated manifest (:mod:`mama_monai.data.manifest`) that ``train`` / ``evaluate`` / ``cv`` read.

Inputs, found by walking each folder (hidden files skipped):

- every folder holding DICOM files is **one DICOM series** (recognised by content, any suffix;
  a folder holding several series is refused: put each series in its own folder);
- every file whose name ends with one of ``extensions`` (default: NIfTI, NRRD, MetaImage,
  PNG/JPEG/TIFF, ``readers.INPUT_SUFFIXES``); other files are ignored and counted.

Each input is read once, with the reader training uses, to count its slices and check its mask.
Cases: a 2D image is one case; a volume is **one case per axial slice** (``slice_index`` along the
last axis in canonical orientation, :mod:`mama_monai.data.orientation`), since the models are 2D.
Labels: inputs under ``normal`` are 0; a 2D abnormal image is 1; an abnormal volume needs a mask,
and each of its slices is 1 where the mask has a voxel on it, else 0 (a volume without a mask is
refused: which of its slices are abnormal is unknown).

Masks are paired **by name**: the mask of ``ct_07.nii.gz`` (or of the series folder ``ct_07``) is
the file under ``masks`` whose name without suffix is ``ct_07``, optionally followed by ``_mask``,
``_seg``, ``_label`` or ``_labels`` (``ct_07_mask.nrrd``). Two masks for one input, two inputs of
one name, a mask that fits no abnormal input, or a mask on another grid than its image are refused
with one error naming the files. A mask must be on its image's voxel grid.

Groups (``group_by``), so that one patient's cases never sit on both sides of a split:
``patient`` (default): the DICOM PatientID (stored as a hash, never in clear), else the first
folder under ``normal`` / ``abnormal`` that holds the input, else the input itself; ``series`` or
``file``: every input (a DICOM series or an image file) is its own group. The slices of one volume
always share a group.

Splits: abnormal inputs are always test cases (``split: test``, as anomalib's ``Folder`` and the
paper's X-ray protocol); normal groups are either spread over ``folds`` cross-validation folds, or a
seeded ``test_fraction`` of them (default 0.2) is held out for testing. The counts go to the
manifest's ``description``.

Example:
    >>> m = build_folder_manifest("my.json", normal="scans/normal", abnormal="scans/lesion",
    ...                           masks="scans/masks", test_fraction=0.25)  # doctest: +SKIP
    >>> m.description  # doctest: +SKIP
    'mama-monai manifest folder: 12 normal inputs (1320 slices), 3 abnormal inputs ...'
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from mama_monai.data.dicom_series import find_dicom_series, is_dicom_file
from mama_monai.data.folds import assign_folds
from mama_monai.data.loading import load_image
from mama_monai.data.manifest import Manifest, ManifestCase, write_manifest
from mama_monai.data.orientation import to_canonical
from mama_monai.data.readers import INPUT_SUFFIXES

__all__ = ["GROUP_BY", "MASK_SUFFIXES", "FolderManifestError", "build_folder_manifest"]

GROUP_BY = ("patient", "series", "file")
#: what may follow an input's name in its mask's name
MASK_SUFFIXES = ("", "_mask", "_seg", "_label", "_labels")


class FolderManifestError(ValueError):
    """A folder tree that cannot become a manifest; the message names the files and what was expected."""


@dataclass
class _Input:
    path: Path  # a file, or a folder holding one DICOM series
    kind: str  # "normal" | "abnormal"
    name: str  # the file name without suffix, or the folder name
    group: str
    mask: Path | None = None


def _stem(path: Path, extensions: Sequence[str]) -> str:
    name = path.name
    for suffix in sorted(extensions, key=len, reverse=True):
        if name.lower().endswith(suffix.lower()) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return path.stem


def _patient_key(folder: Path) -> str | None:
    series = find_dicom_series(folder, recursive=False)
    if len(series) > 1:
        uids = ", ".join(s.uid for s in series)
        raise FolderManifestError(
            f"folder {str(folder)!r} holds {len(series)} DICOM series ({uids}); expected one series per folder "
            "(each becomes one input): move each series into its own folder."
        )
    header = pydicom.dcmread(series[0].files[0], stop_before_pixels=True, force=True, specific_tags=["PatientID"])
    pid = str(getattr(header, "PatientID", "") or "").strip()
    return "patient-" + hashlib.sha256(pid.encode()).hexdigest()[:12] if pid else None


def _scan(top: Path, kind: str, extensions: Sequence[str], group_by: str) -> tuple[list[_Input], int]:
    """The inputs under ``top`` and the number of ignored files."""
    if not top.is_dir():
        raise FolderManifestError(f"--{kind} {str(top)!r} is not a folder; expected a folder of scans.")
    found, ignored = [], 0
    exts = tuple(e.lower() for e in extensions)
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(root)
        names = sorted(f for f in files if not f.startswith("."))
        dicom = [here / f for f in names if is_dicom_file(here / f)]  # by content, whatever the suffix
        images = [here / f for f in names if f.lower().endswith(exts) and here / f not in dicom]
        ignored += len(names) - len(dicom) - len(images)
        first = here.relative_to(top).parts[:1]
        folder_group = f"folder-{first[0]}" if first else None
        for path in images:
            group = folder_group if group_by == "patient" and folder_group else f"input-{path.relative_to(top).as_posix()}"
            found.append(_Input(path, kind, _stem(path, extensions), group))
        if dicom:
            patient = _patient_key(here) if group_by == "patient" else None
            group = patient or (folder_group if group_by == "patient" and folder_group else f"input-{here.relative_to(top).as_posix()}")
            found.append(_Input(here, kind, here.name if here != top else top.name, group))
    if not found:
        raise FolderManifestError(
            f"--{kind} {str(top)!r} holds no DICOM series and no file ending in {', '.join(extensions)}."
        )
    return found, ignored


def _pair_masks(inputs: list[_Input], masks_dir: Path, extensions: Sequence[str]) -> int:
    """Attach each mask under ``masks_dir`` to the abnormal input of its name; returns the mask count."""
    if not masks_dir.is_dir():
        raise FolderManifestError(f"--masks {str(masks_dir)!r} is not a folder; expected a folder of mask files.")
    by_name: dict[str, list[_Input]] = {}
    for item in inputs:
        if item.kind == "abnormal":
            by_name.setdefault(item.name, []).append(item)
    masks = sorted(p for p in masks_dir.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(tuple(e.lower() for e in extensions)))
    unmatched = []
    for mask in masks:
        stem = _stem(mask, extensions)
        owners = {id(i): i for s in MASK_SUFFIXES if stem.endswith(s) for i in by_name.get(stem[: len(stem) - len(s)] if s else stem, [])}
        owners_list = list(owners.values())
        if not owners_list:
            unmatched.append(str(mask))
            continue
        if len(owners_list) > 1:
            raise FolderManifestError(
                f"mask {str(mask)!r} fits {len(owners_list)} abnormal inputs of the same name: "
                f"{', '.join(str(i.path) for i in owners_list)}; expected input names to be unique."
            )
        owner = owners_list[0]
        if owner.mask is not None:
            raise FolderManifestError(
                f"abnormal input {str(owner.path)!r} has two masks, {str(owner.mask)!r} and {str(mask)!r}; expected one."
            )
        owner.mask = mask
    if unmatched:
        raise FolderManifestError(
            f"{len(unmatched)} mask(s) fit no abnormal input by name: {', '.join(unmatched[:10])}; expected "
            f"<input name>{{{','.join(MASK_SUFFIXES)}}}<suffix> for an input under --abnormal."
        )
    return len(masks)


def _cases(item: _Input, index: int, root: Path) -> list[ManifestCase]:
    """The manifest cases of one input: one per axial slice of a volume, one for a 2D image."""
    image = load_image(item.path, to_grayscale=True)
    rel = item.path.resolve().relative_to(root).as_posix()
    case_id = f"{item.kind}_{index:04d}"
    if image.ndim == 3:  # (C, W, H): one 2D image
        if item.mask is not None:
            label = int(bool((load_image(item.mask, to_grayscale=True).as_tensor() > 0).any()))
            mask = item.mask.resolve().relative_to(root).as_posix()
        else:
            label, mask = int(item.kind == "abnormal"), None
        return [ManifestCase(case_id, rel, label, mask=mask, group=item.group)]
    depth = int(to_canonical(image).shape[-1])
    labels = np.zeros(depth, dtype=int)
    mask = None
    if item.kind == "abnormal":
        if item.mask is None:
            raise FolderManifestError(
                f"abnormal volume {str(item.path)!r} has no mask: which of its {depth} slices are abnormal is unknown; "
                "expected a mask named like it under --masks (e.g. <name>_mask.nii.gz), or 2D abnormal images."
            )
        seg = to_canonical(load_image(item.mask))
        if tuple(seg.shape[1:]) != tuple(to_canonical(image).shape[1:]):
            raise FolderManifestError(
                f"mask {str(item.mask)!r} has grid {tuple(seg.shape[1:])} but its image {str(item.path)!r} has "
                f"{tuple(to_canonical(image).shape[1:])}; expected the mask on the image's voxel grid."
            )
        labels = (seg.as_tensor() > 0).reshape(-1, depth).any(0).numpy().astype(int)
        mask = item.mask.resolve().relative_to(root).as_posix()
    return [
        ManifestCase(f"{case_id}_s{k:03d}", rel, int(labels[k]), mask=mask, group=item.group, slice_index=k)
        for k in range(depth)
    ]


def _checked_arguments(
    group_by: str, folds: int | None, test_fraction: float | None, masks: Any, abnormal: Any, extensions: Sequence[str] | None
) -> tuple[float | None, tuple[str, ...]]:
    """``(test_fraction, extensions)`` with their defaults, after checking every argument."""
    if group_by not in GROUP_BY:
        raise FolderManifestError(f"--group-by must be one of {', '.join(GROUP_BY)}, got {group_by!r}.")
    if folds is not None and test_fraction is not None:
        raise FolderManifestError(f"give --folds or --test-fraction, not both (got {folds!r} and {test_fraction!r}).")
    if folds is not None and (isinstance(folds, bool) or not isinstance(folds, int) or folds < 2):
        raise FolderManifestError(f"--folds must be an integer >= 2, got {folds!r}.")
    if folds is None:
        test_fraction = 0.2 if test_fraction is None else test_fraction
        if not 0.0 < float(test_fraction) < 1.0:
            raise FolderManifestError(f"--test-fraction must be in (0, 1), got {test_fraction!r}.")
    if masks is not None and abnormal is None:
        raise FolderManifestError(f"--masks {str(masks)!r} given without --abnormal; masks belong to abnormal scans.")
    extensions = tuple(extensions or INPUT_SUFFIXES)
    bad = [e for e in extensions if not e.startswith(".")]
    if bad:
        raise FolderManifestError(f"--extensions must start with a dot (e.g. .nii.gz .png), got {bad}.")
    return test_fraction, extensions


def _assign_splits(
    cases: list[ManifestCase], normal_groups: list[str], folds: int | None, test_fraction: float | None, group_by: str, seed: int
) -> str:
    """Abnormal cases to test; normal groups to ``folds`` folds or, by ``test_fraction``, to
    train/test (a group never split); returns the split's description."""
    if folds is not None:
        if len(normal_groups) < folds:
            raise FolderManifestError(
                f"--folds {folds} needs at least {folds} normal groups (--group-by {group_by}), found {len(normal_groups)}; "
                "use fewer folds, --group-by series, or --test-fraction."
            )
        fold_of = dict(zip(normal_groups, assign_folds([0] * len(normal_groups), folds, seed)))
    else:
        if len(normal_groups) < 2:
            raise FolderManifestError(
                f"--test-fraction needs at least 2 normal groups (--group-by {group_by}), found {len(normal_groups)}; "
                "expected normal scans of several patients, or --group-by series."
            )
        shuffled = random.Random(seed).sample(normal_groups, len(normal_groups))
        n_test = min(len(shuffled) - 1, max(1, round(float(test_fraction) * len(shuffled))))
        held_out = set(shuffled[:n_test])
    for case in cases:
        if not case.case_id.startswith("normal_"):
            case.split = "test"
        elif folds is not None:
            case.fold = fold_of[case.group]
        else:
            case.split = "test" if case.group in held_out else "train"
    if folds is not None:
        return f"{folds} folds of the normal groups"
    return f"{len(held_out)} of {len(normal_groups)} normal groups held out for test"


def build_folder_manifest(
    output: str | os.PathLike,
    normal: str | os.PathLike,
    abnormal: str | os.PathLike | None = None,
    masks: str | os.PathLike | None = None,
    extensions: Sequence[str] | None = None,
    folds: int | None = None,
    test_fraction: float | None = None,
    group_by: str = "patient",
    seed: int = 0,
    dataset: str | None = None,
) -> Manifest:
    """Scan the folders, build the cases and splits, and write the manifest to ``output`` (atomically).

    Args:
        output: the manifest JSON to write (its folder is created); paths in it are relative.
        normal: folder of normal scans (required).
        abnormal: folder of abnormal scans (default none).
        masks: folder of the abnormal scans' masks, paired by name (default none).
        extensions: file name endings read as images (default ``readers.INPUT_SUFFIXES``); DICOM
            files are recognised by content whatever their name.
        folds: spread the normal groups over this many cross-validation folds (>= 2).
        test_fraction: hold this fraction of the normal groups out for testing (0 < F < 1; default
            0.2 when ``folds`` is not given). Not both.
        group_by: ``patient`` (default), ``series`` or ``file`` (module docstring).
        seed: seed of the fold assignment or of the test draw (default 0).
        dataset: the manifest's name (default: the ``output`` file's name without suffix).

    Returns:
        The written :class:`~mama_monai.data.manifest.Manifest`.

    Raises:
        FolderManifestError: a bad argument, an empty folder, ambiguous or unmatched masks, an
            abnormal volume without mask, or too few normal groups for the split.
    """
    test_fraction, extensions = _checked_arguments(group_by, folds, test_fraction, masks, abnormal, extensions)
    inputs, ignored = _scan(Path(normal), "normal", extensions, group_by)
    if abnormal is not None:
        more, skipped = _scan(Path(abnormal), "abnormal", extensions, group_by)
        inputs, ignored = inputs + more, ignored + skipped
    n_masks = _pair_masks(inputs, Path(masks), extensions) if masks is not None else 0
    dirs = [Path(d).resolve() for d in (normal, abnormal, masks) if d is not None]
    root = Path(os.path.commonpath([str(d) for d in dirs]))
    counters = {"normal": 0, "abnormal": 0}
    cases: list[ManifestCase] = []
    for item in inputs:
        counters[item.kind] += 1
        cases += _cases(item, counters[item.kind], root)
    normal_groups = sorted({c.group for c in cases if c.case_id.startswith("normal_")})
    split = _assign_splits(cases, normal_groups, folds, test_fraction, group_by, seed)
    n_anom = sum(c.label for c in cases)
    description = (
        f"mama-monai manifest folder: {counters['normal']} normal inputs, {counters['abnormal']} abnormal inputs ({n_masks} masks); "
        f"{len(cases)} cases (slices): {len(cases) - n_anom} normal, {n_anom} anomalous; {len(normal_groups)} normal groups "
        f"(--group-by {group_by}); split: {split}, abnormal inputs in test; seed {seed}; {ignored} other files ignored."
    )
    manifest = Manifest(dataset or _stem(Path(output), (".json",)), root, cases, folds, description)
    write_manifest(manifest, output)
    return manifest
