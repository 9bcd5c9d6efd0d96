"""benchmarks/accuracy.validation_draws and validation_noise.py: the copies measured are the product's."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import accuracy, validation_noise  # noqa: E402
from mama_monai.engines import AnomalyMap, anomaly_map_args, score_items  # noqa: E402
from mama_monai.workflows.config import workflow_config  # noqa: E402
from mama_monai.workflows.splits import prepare_splits  # noqa: E402

BASE = {"data#spatial_size": [32, 32], "data#num_workers": 0}


@pytest.mark.parametrize("copies", [1, 3])
def test_draw_d_with_k_copies_is_the_products_validation_with_that_seed_and_that_many_copies(copies):
    torch.manual_seed(0)
    parser = workflow_config("autoencoder", overrides={**BASE, "data#validation_lesion_copies": 1})
    network = parser.get_parsed_content("network_def", lazy=False).eval()  # untrained: the bookkeeping is under test
    scoring = parser.get_parsed_content("scoring")
    val = prepare_splits(parser)["val"]
    draws = accuracy.validation_draws(network, val, scoring, 2, "cpu")
    assert sorted(draws, key=int) == [str(k) for k in range(1, 9)] and all(len(v) == 2 for v in draws.values())
    for d in range(2):  # the product's own validation set, drawn with seed 1000 + d and `copies` copies
        product = workflow_config("autoencoder", overrides={**BASE, "seed": 1000 + d, "data#validation_lesion_copies": copies})
        items = prepare_splits(product)["val"]
        out = score_items(network, AnomalyMap(2, **anomaly_map_args(scoring)), items, "cpu")
        assert (out["label"] == 1).sum() == copies * (out["label"] == 0).sum()
        assert draws[str(copies)][d] == pytest.approx(roc_auc_score(out["label"].astype(int), out["score"]), abs=1e-12)


def test_the_page_gives_the_sd_over_draws_and_the_paired_setting_difference_known_answers():
    def row(seed, variant, one, auto, test, val):
        draws = {str(k): one for k in range(1, 9)}
        draws["6"] = auto  # LIDC's 38 held-out normals: auto = 6 copies
        return {"task": "lidc", "seed": seed, "variant": variant, "n_val_normal": 38, "validation_draws": draws,
                "auroc_percentile": test, "val_auroc": val}  # fmt: skip

    rows = [row(0, "default", [0.5, 0.7], [0.60, 0.62], 0.70, 0.4), row(1, "default", [0.6, 0.6], [0.60, 0.60], 0.60, 0.3),
            row(0, "coarse", [0.5, 0.5], [0.70, 0.72], 0.90, 0.2), row(1, "coarse", [0.5, 0.5], [0.64, 0.64], 0.80, 0.1)]  # fmt: skip
    settings = {"date": "d", "cpu": "c", "seconds": 60, "size": 64, "iterations": 300, "seeds": [0, 1], "draws": 2, "output": "/x/v.json"}
    page = validation_noise.summary(rows, settings)
    sd_one = [np.std(v, ddof=1) for v in ([0.5, 0.7], [0.6, 0.6], [0.5, 0.5], [0.5, 0.5])]
    sd_auto = [np.std(v, ddof=1) for v in ([0.60, 0.62], [0.60, 0.60], [0.70, 0.72], [0.64, 0.64])]
    line = next(line for line in page.splitlines() if line.startswith("| LIDC (38 held-out normals) | 4 |"))
    assert f"| {np.mean(sd_one):.3f} (0.000-0.141) |" in line
    assert f"| {np.mean(sd_auto):.3f} (0.000-0.014) (K = 6) |" in line
    # coarse minus default, draws averaged, paired by seed: (0.71 - 0.61, 0.64 - 0.60) = (+0.10, +0.04)
    coarse = next(line for line in page.splitlines() if line.startswith("| lidc | coarse |"))
    assert "| +0.070, p = " in coarse and coarse.endswith("| 0.500 | -0.050 |")  # draw 0, one copy: 0.5 vs (0.5 + 0.6) / 2
    # validation against the test over the four runs: draws averaged (0.61, 0.60, 0.71, 0.64) rank the tests (0.7, 0.6,
    # 0.9, 0.8) exactly (rho +1); the product's val_auroc (0.4, 0.3, 0.2, 0.1) ranks the runs 4, 3, 2, 1, the test 2, 1, 4, 3
    tracking = next(line for line in page.splitlines() if line.startswith("| lidc | 4 |"))
    assert tracking.startswith("| lidc | 4 | +1.00 (p = 0) | -0.60 (p = 0.4) |")
