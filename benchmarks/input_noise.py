"""The coarse input noise of denoising training (``training#input_noise``), swept: finer, coarser
and stronger than the default, for every network on both tasks (``docs/accuracy/input_noise.md``;
predicted before the run in ``docs/accuracy/input_noise_prediction.txt``).

Every (task, network, seed, setting) trains and is scored by ``benchmarks/accuracy.py``'s
``run_one`` (the product's path; :mod:`benchmarks.settings_sweep`). A setting is chosen on the
validation AUROC (SIMULATED lesions in held-out normal slices) only, by the rule written before
the run; the test AUROC beside it can only veto.

    python benchmarks/input_noise.py --output docs/accuracy/input_noise.json    # ~50 min on 2 CPU cores
    python benchmarks/input_noise.py --output docs/accuracy/input_noise.json --report-only
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import rows_file, settings_sweep  # noqa: E402
from benchmarks.accuracy import MODELS  # noqa: E402

SWEEP = settings_sweep.Sweep(
    key="training#input_noise",
    settings={
        "default": {"std": 0.2, "resolution": 16},
        "fine": {"std": 0.2, "resolution": 32},
        "coarse": {"std": 0.2, "resolution": 8},
        "strong": {"std": 0.4, "resolution": 16},
    },
    title="The input noise of denoising training, swept",
    script="input_noise.py",
    prediction="input_noise_prediction.txt",
    note="*resolution*: noise grid points per image axis (at 64 x 64: 16 gives blobs of about 4 px, 32 about 2 px, "
    "8 about 8 px); *std* in units of the normalised image. The validation lesions have radii of 2-6 % of the width.",
)


def summary(rows: list[dict], settings: dict) -> str:
    return settings_sweep.summary(rows, settings, SWEEP)


def main(argv: list[str] | None = None) -> int:
    return rows_file.main(argv, __doc__, summary, lambda args, tmp: settings_sweep.plan(args, SWEEP), MODELS)


if __name__ == "__main__":
    raise SystemExit(main())
