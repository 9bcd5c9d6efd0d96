"""Manifest builder for COVID-CT (Zhao et al. 2020, github.com/UCSD-AI4H/COVID-CT).

Expected layout (the repository cloned or downloaded, with its two zip files unpacked in place)::

    download_dir/
      Images-processed/CT_COVID/*.png            # COVID-19 slices (label 1)
      Images-processed/CT_NonCOVID/*.png|*.jpg   # non-COVID slices (label 0)
      Data-split/COVID/{train,val,test}CT_COVID.txt        # one file name per line
      Data-split/NonCOVID/{train,val,test}CT_NonCOVID.txt

Paper protocol (Chen et al., TMI 2021, Sec. IV-A; DESIGN.md §4): train on non-COVID slices only,
test on non-COVID + COVID slices (the paper reports 463 train, 168 + 100 test). The current
repository holds fewer non-COVID images (397) than the paper's 463 + 168, so the paper's counts
cannot be reproduced exactly from it. Two fixed splits are offered:

- ``split_source="repo"`` (default): the repository's own split files. Non-COVID train + val ->
  ``train``; non-COVID test and COVID test -> ``test``. COVID train/val images are left out (an
  unsupervised model never trains on anomalies), and the counts are written in the description.
- ``split_source="paper_counts"``: a seeded draw of 168 non-COVID and 100 COVID test slices; all
  other non-COVID slices are ``train``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mama_monai.data.builders._common import list_files, raise_missing, require_dir, warn_extras
from mama_monai.data.manifest import Manifest, ManifestCase

__all__ = ["build_covid_ct"]

_CLASSES = {"COVID": 1, "NonCOVID": 0}


def _read_split_file(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} does not exist; expected the repository's Data-split folder.")
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def build_covid_ct(
    download_dir: str | Path, split_source: str = "repo", seed: int = 0, n_test_normal: int = 168, n_test_covid: int = 100
) -> Manifest:
    """Scan a COVID-CT download and return the manifest of the paper's fixed train/test split.

    Args:
        download_dir: the folder holding ``Images-processed/`` (and ``Data-split/``).
        split_source: ``"repo"`` (the repository's split files) or ``"paper_counts"`` (seeded draw
            of ``n_test_normal`` non-COVID and ``n_test_covid`` COVID test slices). Default "repo".
        seed: seed of the ``paper_counts`` draw. Default 0.
        n_test_normal: non-COVID test slices for ``paper_counts``. Default 168 (the paper's).
        n_test_covid: COVID test slices for ``paper_counts``. Default 100 (the paper's).

    Raises:
        FileNotFoundError: a folder is missing, or split files name images that are not there
            (all listed by name). ValueError: bad ``split_source`` or too few images.

    Example:
        >>> m = build_covid_ct("/data/COVID-CT")  # doctest: +SKIP
    """
    root = Path(download_dir)
    if split_source not in ("repo", "paper_counts"):
        raise ValueError(f"split_source must be 'repo' or 'paper_counts', got {split_source!r}.")
    images = _class_images(root)
    if split_source == "repo":
        split, detail = _repo_split(root, images)
    else:
        split, detail = _seeded_split(images, seed, n_test_normal, n_test_covid)
    cases = [
        ManifestCase(case_id=f"{cls.lower()}/{name}", image=images[cls][name].relative_to(root).as_posix(), label=_CLASSES[cls], split=part)
        for cls, name, part in split
    ]
    n_train = sum(c.split == "train" for c in cases)
    n_test = [sum(c.split == "test" and c.label == k for c in cases) for k in (0, 1)]
    description = (
        f"COVID-CT (UCSD-AI4H), fixed split from {detail}: train {n_train} non-COVID, "
        f"test {n_test[0]} non-COVID + {n_test[1]} COVID (paper: 463; 168 + 100)."
    )
    return Manifest("covid_ct", root.resolve(), cases, None, description)


def _class_images(root: Path) -> dict[str, dict[str, Path]]:
    """``{class: {file name: path}}`` of the two image folders (a still-zipped folder is named)."""
    images: dict[str, dict[str, Path]] = {}
    for cls in _CLASSES:
        folder = root / "Images-processed" / f"CT_{cls}"
        if not folder.is_dir() and folder.with_suffix(".zip").is_file():
            raise FileNotFoundError(f"{folder} does not exist but {folder.with_suffix('.zip')} does; unzip it in place first.")
        require_dir(folder, f"COVID-CT {cls} image")
        images[cls] = {p.name: p for p in list_files(folder, (".png", ".jpg", ".jpeg"))}
    return images


def _repo_split(root: Path, images: dict[str, dict[str, Path]]) -> tuple[list[tuple[str, str, str]], str]:
    """``(class, name, split)`` from the repository's split files (non-COVID train + val train on,
    the test lists test; COVID train/val are left out), and a description of it."""
    listed: dict[str, dict[str, list[str]]] = {}
    missing: list[str] = []
    for cls in _CLASSES:
        listed[cls] = {s: _read_split_file(root / "Data-split" / cls / f"{s}CT_{cls}.txt") for s in ("train", "val", "test")}
        named = {n for names in listed[cls].values() for n in names}
        missing += [f"Images-processed/CT_{cls}/{n}" for n in named - set(images[cls])]
        warn_extras(set(images[cls]) - named, f"{root / 'Images-processed' / f'CT_{cls}'}")
    raise_missing(missing, f"{root} (named in Data-split/)")
    split = [("NonCOVID", n, "train") for n in listed["NonCOVID"]["train"] + listed["NonCOVID"]["val"]]
    split += [("NonCOVID", n, "test") for n in listed["NonCOVID"]["test"]]
    split += [("COVID", n, "test") for n in listed["COVID"]["test"]]
    left_out = len(listed["COVID"]["train"]) + len(listed["COVID"]["val"])
    return split, f"repository split files; {left_out} COVID train/val slices left out"


def _seeded_split(
    images: dict[str, dict[str, Path]], seed: int, n_test_normal: int, n_test_covid: int
) -> tuple[list[tuple[str, str, str]], str]:
    """``(class, name, split)`` of a seeded draw of the paper's test counts, and its description."""
    normals, covid = sorted(images["NonCOVID"]), sorted(images["COVID"])
    if len(normals) <= n_test_normal or len(covid) < n_test_covid:
        raise ValueError(
            f"paper_counts needs more than n_test_normal={n_test_normal} non-COVID and at least "
            f"n_test_covid={n_test_covid} COVID images; found {len(normals)} and {len(covid)}."
        )
    rng = np.random.default_rng(seed)
    test_normals = set(rng.choice(normals, size=n_test_normal, replace=False).tolist())
    test_covid = set(rng.choice(covid, size=n_test_covid, replace=False).tolist())
    split = [("NonCOVID", n, "test" if n in test_normals else "train") for n in normals]
    split += [("COVID", n, "test") for n in sorted(test_covid)]
    return split, f"seeded draw (seed={seed}) of {n_test_normal} non-COVID + {n_test_covid} COVID test slices"
