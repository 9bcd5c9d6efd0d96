"""Manifest builders for the paper's three data sets, and a registry to run one by name.

Each builder scans the folder where the user put the public download (laid out as the real
download is), applies the paper's protocol (DESIGN.md §4) and returns a validated
:class:`~mama_monai.data.manifest.Manifest`. :func:`build_manifest` runs one and writes the JSON.
Missing expected files raise one ``FileNotFoundError`` naming them; unused files raise an
:class:`ExtraFilesWarning` naming them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mama_monai.data.builders._common import ExtraFilesWarning
from mama_monai.data.builders.covid_ct import build_covid_ct
from mama_monai.data.builders.covid_xray import build_covid_xray
from mama_monai.data.builders.rider import build_rider
from mama_monai.data.manifest import Manifest, write_manifest

__all__ = ["BUILDERS", "ExtraFilesWarning", "build_manifest", "build_covid_ct", "build_covid_xray", "build_rider"]

BUILDERS: dict[str, Callable[..., Manifest]] = {
    "covid_ct": build_covid_ct,
    "covid_xray": build_covid_xray,
    "rider": build_rider,
}


def build_manifest(
    dataset: str, download_dir: str | Path, output: str | Path, folds: int = 5, seed: int = 0, **kwargs: Any
) -> Manifest:
    """Build the manifest of one of the paper's data sets and write it to ``output``.

    Args:
        dataset: ``"covid_ct"``, ``"covid_xray"`` or ``"rider"``.
        download_dir: the folder with the public download (layouts in each builder's docstring).
        output: the manifest JSON to write (atomically).
        folds: number of cross-validation folds, for the protocols that use folds (X-ray, RIDER);
            COVID-CT uses the paper's fixed train/test split and takes no folds. Default 5.
        seed: seed of the fold assignment or draw. Default 0.
        kwargs: builder-specific arguments: ``normals_dir`` and ``views`` (covid_xray),
            ``labels_csv`` (rider), ``split_source`` (covid_ct).

    Returns:
        the manifest written.

    Example:
        >>> build_manifest("rider", "/data/RIDER Neuro MRI", "manifests/rider.json",
        ...                labels_csv="/data/rider_labels.csv")  # doctest: +SKIP
    """
    if dataset not in BUILDERS:
        raise ValueError(f"dataset must be one of {sorted(BUILDERS)}, got {dataset!r}.")
    builder = BUILDERS[dataset]
    params = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise TypeError(f"build_manifest({dataset!r}) got unknown arguments {unknown}; the builder takes {sorted(params)}.")
    if "folds" in params:
        kwargs["folds"] = folds
    if "seed" in params:
        kwargs["seed"] = seed
    manifest = builder(download_dir, **kwargs)
    write_manifest(manifest, output)
    return manifest
