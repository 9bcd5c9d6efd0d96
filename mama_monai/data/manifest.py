"""The manifest: one JSON file that lists a data set's cases, labels, masks and splits.

Format (``schema_version`` 1; documented with an example in ``data_manifests/README.md``)::

    {
      "schema_version": 1,
      "dataset": "covid_ct",            # free text name
      "root": ".",                      # folder the case paths are relative to; a relative root
                                        # is relative to the manifest file's own folder
      "num_folds": 5,                   # optional: number of cross-validation folds used
      "description": "...",             # optional free text
      "cases": [
        {"case_id": "a", "image": "img/a.png", "label": 0, "fold": 3},
        {"case_id": "b", "image": "ct.nii.gz", "label": 1, "mask": "mask.nii.gz",
         "slice_index": 42, "split": "test", "group": "patient-7", "simulated": false,
         "meta": {"z_mm": -115.0}}
      ]
    }

Case fields: ``case_id`` (unique string), ``image`` (file or folder, e.g. a DICOM series),
``label`` (0 normal, 1 anomalous), and optional ``mask``, ``fold`` (int, the cross-validation fold
in which the case is held out), ``split`` ("train" or "test": a fixed role in every fold),
``group`` (patient id), ``slice_index`` (axial slice of a 3D ``image``, last spatial axis),
``simulated`` (true when the anomaly is synthetic) and ``meta`` (free-form dict). A case carries
``fold`` or ``split``, not both. Unknown keys are rejected so that typos do not pass silently.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mama_monai.atomic import atomic_write

__all__ = ["SCHEMA_VERSION", "ManifestCase", "Manifest", "load_manifest", "write_manifest", "split_cases"]

SCHEMA_VERSION = 1
_CASE_KEYS = {"case_id", "image", "label", "mask", "fold", "split", "group", "slice_index", "simulated", "meta"}
_TOP_KEYS = {"schema_version", "dataset", "root", "num_folds", "description", "cases"}
_SPLITS = ("train", "test")


@dataclass
class ManifestCase:
    """One case of a manifest. Paths are relative to the manifest's ``root``; see module docstring."""

    case_id: str
    image: str
    label: int
    mask: str | None = None
    fold: int | None = None
    split: str | None = None
    group: str | None = None
    slice_index: int | None = None
    simulated: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The case as a JSON-ready dict; optional fields that are unset are left out."""
        out: dict[str, Any] = {"case_id": self.case_id, "image": self.image, "label": self.label}
        for key in ("mask", "fold", "split", "group", "slice_index"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.simulated:
            out["simulated"] = True
        if self.meta:
            out["meta"] = self.meta
        return out


@dataclass
class Manifest:
    """A validated manifest: the data set name, the absolute ``root`` and the cases."""

    dataset: str
    root: Path
    cases: list[ManifestCase]
    num_folds: int | None = None
    description: str = ""

    def to_dicts(self) -> list[dict[str, Any]]:
        """MONAI-ready data dicts (absolute ``image``/``mask`` paths) for ``monai.data.Dataset``.

        Example:
            >>> ds = monai.data.Dataset(load_manifest("m.json").to_dicts(), transform=...)  # doctest: +SKIP
        """
        dicts = []
        for case in self.cases:
            d = case.to_json()
            d["image"] = str(self.root / case.image)
            if case.mask is not None:
                d["mask"] = str(self.root / case.mask)
            dicts.append(d)
        return dicts


def _case_from_json(raw: Any, index: int, source: str) -> ManifestCase:
    where = f"{source}: cases[{index}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object, got {type(raw).__name__}.")
    unknown = sorted(set(raw) - _CASE_KEYS)
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; allowed keys are {sorted(_CASE_KEYS)}.")
    for key in ("case_id", "image", "label"):
        if key not in raw:
            raise ValueError(f"{where} lacks the required key {key!r}.")
    case_id, image, label = raw["case_id"], raw["image"], raw["label"]
    if not isinstance(case_id, str) or not case_id:
        raise ValueError(f"{where}: case_id must be a non-empty string, got {case_id!r}.")
    if not isinstance(image, str) or not image:
        raise ValueError(f"{where} ({case_id}): image must be a non-empty path string, got {image!r}.")
    if isinstance(label, bool) or label not in (0, 1):
        raise ValueError(f"{where} ({case_id}): label must be 0 (normal) or 1 (anomalous), got {label!r}.")
    for key in ("fold", "slice_index"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{where} ({case_id}): {key} must be a non-negative integer, got {value!r}.")
    split = raw.get("split")
    if split is not None and split not in _SPLITS:
        raise ValueError(f"{where} ({case_id}): split must be one of {_SPLITS}, got {split!r}.")
    if split is not None and raw.get("fold") is not None:
        raise ValueError(f"{where} ({case_id}) has both fold={raw['fold']!r} and split={split!r}; expected one of them.")
    for key in ("mask", "group"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{where} ({case_id}): {key} must be a non-empty string, got {value!r}.")
    if not isinstance(raw.get("simulated", False), bool):
        raise ValueError(f"{where} ({case_id}): simulated must be true or false, got {raw['simulated']!r}.")
    if not isinstance(raw.get("meta", {}), dict):
        raise ValueError(f"{where} ({case_id}): meta must be an object, got {raw['meta']!r}.")
    return ManifestCase(
        case_id=case_id, image=image, label=int(label), mask=raw.get("mask"), fold=raw.get("fold"), split=split,
        group=raw.get("group"), slice_index=raw.get("slice_index"), simulated=raw.get("simulated", False),
        meta=dict(raw.get("meta", {})),
    )


def _validate(manifest: Manifest, source: str, check_files: bool) -> None:
    dupes = sorted(cid for cid, n in Counter(c.case_id for c in manifest.cases).items() if n > 1)
    if dupes:
        raise ValueError(f"{source}: duplicate case_id values {dupes}; every case_id must be unique.")
    if manifest.num_folds is not None:
        bad = [c.case_id for c in manifest.cases if c.fold is not None and c.fold >= manifest.num_folds]
        if bad:
            raise ValueError(f"{source}: cases {bad} have fold >= num_folds={manifest.num_folds}.")
    if check_files:
        paths = sorted({p for c in manifest.cases for p in (c.image, c.mask) if p is not None})
        missing = [p for p in paths if not (manifest.root / p).exists()]
        if missing:
            shown = ", ".join(missing[:20]) + (f" ... and {len(missing) - 20} more" if len(missing) > 20 else "")
            raise FileNotFoundError(
                f"{source}: {len(missing)} file(s) named in the manifest do not exist under root {manifest.root}: {shown}"
            )


def load_manifest(path: str | os.PathLike, check_files: bool = True) -> Manifest:
    """Read and validate a manifest JSON file.

    Args:
        path: the manifest file.
        check_files: check that every ``image`` and ``mask`` exists under ``root`` (default True);
            all missing files are listed by name in one error.

    Raises:
        ValueError: bad JSON, schema version, unknown keys, label not 0/1, duplicate ids, fold
            out of range. FileNotFoundError: the manifest or files it names are missing.

    Example:
        >>> m = load_manifest("data_manifests/covid_ct.json")  # doctest: +SKIP
        >>> m.to_dicts()[0]["image"]  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest file {path} does not exist.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}).") from e
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level, got {type(raw).__name__}.")
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version must be {SCHEMA_VERSION}, got {raw.get('schema_version')!r}.")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {unknown}; allowed keys are {sorted(_TOP_KEYS)}.")
    for key in ("dataset", "root"):
        if not isinstance(raw.get(key), str):
            raise ValueError(f"{path}: {key!r} must be a string, got {raw.get(key)!r}.")
    if not isinstance(raw.get("cases"), list):
        raise ValueError(f"{path}: 'cases' must be a list, got {type(raw.get('cases')).__name__}.")
    num_folds = raw.get("num_folds")
    if num_folds is not None and (isinstance(num_folds, bool) or not isinstance(num_folds, int) or num_folds < 2):
        raise ValueError(f"{path}: num_folds must be an integer >= 2, got {num_folds!r}.")
    root = Path(raw["root"])
    root = root if root.is_absolute() else (path.parent / root)
    cases = [_case_from_json(c, i, str(path)) for i, c in enumerate(raw["cases"])]
    manifest = Manifest(raw["dataset"], root.resolve(), cases, num_folds, str(raw.get("description", "")))
    _validate(manifest, str(path), check_files)
    return manifest


def write_manifest(
    manifest: Manifest, path: str | os.PathLike, root: str | None = None, check_files: bool = True
) -> Path:
    """Validate ``manifest`` and write it atomically (temporary file + ``os.replace``).

    Args:
        manifest: the manifest to write.
        path: output file (``.json``); its folder is created.
        root: the ``root`` string to store; default: ``manifest.root`` relative to the output
            folder when possible (so the folder can be moved as a whole), else absolute.
        check_files: refuse to write when an image or mask is missing (default True).

    Returns:
        the path written.
    """
    path = Path(path)
    _validate(manifest, str(path), check_files)
    path.parent.mkdir(parents=True, exist_ok=True)
    if root is None:
        try:
            root = os.path.relpath(Path(manifest.root).resolve(), path.parent.resolve())
        except ValueError:  # different drives on Windows
            root = str(Path(manifest.root).resolve())
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "dataset": manifest.dataset, "root": Path(root).as_posix()}
    if manifest.num_folds is not None:
        doc["num_folds"] = manifest.num_folds
    if manifest.description:
        doc["description"] = manifest.description
    doc["cases"] = [c.to_json() for c in manifest.cases]
    text = json.dumps(doc, indent=1) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def split_cases(manifest: Manifest, fold: int | None = None) -> dict[str, list[ManifestCase]]:
    """The train and test cases of one fold (or of the fixed split when ``fold`` is None).

    In fold k the test set is every case with ``fold == k`` or ``split == "test"``; the train set
    is every case with another fold or ``split == "train"``. Train lists may contain anomalous
    cases (e.g. RIDER folds); unsupervised training keeps only ``label == 0``.

    Args:
        manifest: a loaded manifest.
        fold: the held-out fold, or None to use only the fixed ``split`` field.

    Raises:
        ValueError: ``fold`` outside 0 .. num_folds-1, or ``fold`` None while some cases carry
            only a fold.
    """
    if fold is None:
        only_fold = [c.case_id for c in manifest.cases if c.split is None and c.fold is not None]
        if only_fold:
            raise ValueError(
                f"fold=None but {len(only_fold)} cases (e.g. {only_fold[:3]}) have only a fold; pass fold=0..{(manifest.num_folds or 1) - 1}."
            )
        return {s: [c for c in manifest.cases if c.split == s] for s in _SPLITS}
    num_folds = manifest.num_folds or (1 + max((c.fold for c in manifest.cases if c.fold is not None), default=-1))
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < num_folds:
        raise ValueError(f"fold must be an integer in 0..{num_folds - 1}, got {fold!r}.")
    test = [c for c in manifest.cases if c.fold == fold or c.split == "test"]
    train = [c for c in manifest.cases if (c.fold is not None and c.fold != fold) or c.split == "train"]
    return {"train": train, "test": test}
