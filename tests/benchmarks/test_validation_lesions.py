"""benchmarks/validation_lesions.py: each design's AUROC is the product's validation with those
options, and the page's orders, rhos and differences are known answers."""

import sys
from pathlib import Path

import pytest
import torch
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import validation_lesions  # noqa: E402
from mama_monai.engines import AnomalyMap, anomaly_map_args, score_items  # noqa: E402
from mama_monai.workflows.config import workflow_config  # noqa: E402
from mama_monai.workflows.splits import prepare_splits  # noqa: E402

BASE = {"data#spatial_size": [32, 32], "data#num_workers": 0}
#: the designs as product config keys (what the README's recipe tells a user to write)
AS_CONFIG = {
    "bright": {"data#validation_lesion_sign": "bright"},
    "nodule": {"data#validation_lesion_centres": [0.05, 0.357], "data#validation_lesion_enclosed": True,
               "data#validation_lesion_target": [0.643, 0.786], "data#validation_lesion_sign": "bright"},
    "scale": {"data#validation_lesion_mode": "scale"},
}  # fmt: skip


@pytest.mark.parametrize("design", ["product", "bright", "nodule", "scale"])
def test_a_designs_draw_d_is_the_products_validation_with_its_keys_and_seed_1000_plus_d(design):
    torch.manual_seed(0)
    parser = workflow_config("autoencoder", overrides=BASE)
    network = parser.get_parsed_content("network_def", lazy=False).eval()  # untrained: the bookkeeping is under test
    scoring = parser.get_parsed_content("scoring")
    val = prepare_splits(parser)["val"]
    row = validation_lesions.network_values(network, val, scoring, "cpu", {"task": "lidc", "draws": 2})
    assert row["val_copies"] == 6 and len(row[f"vdraws_{design}"]) == 2 and len(row[f"vpixel_{design}"]) == 2
    for d in range(2):
        product = workflow_config("autoencoder", overrides={**BASE, "seed": 1000 + d, **AS_CONFIG.get(design, {})})
        out = score_items(network, AnomalyMap(2, **anomaly_map_args(scoring)), prepare_splits(product)["val"], "cpu")
        assert row[f"vdraws_{design}"][d] == pytest.approx(roc_auc_score(out["label"].astype(int), out["score"]), abs=1e-12)


def test_the_page_orders_the_models_and_ranks_the_networks_known_answers():
    def row(net, seed, product, nodule, test):
        values = {"product": product, "bright": 0.5, "nodule": nodule, "scale": 0.5}
        out = {"task": "lidc", "network": net, "seed": seed, "auroc_percentile": test, "pixel_auroc": 0.9}
        for d, v in values.items():
            out[f"vdraws_{d}"], out[f"vpixel_{d}"] = [v - 0.01, v + 0.01], [0.8, 0.8]
        return out

    # test: MemAE > MAMA Net > autoencoder; "product" puts MAMA Net first, "nodule" orders as the test
    rows = [row("mamanet_compact", 0, 0.70, 0.80, 0.75), row("mamanet_compact", 1, 0.72, 0.82, 0.77),
            row("autoencoder", 0, 0.60, 0.70, 0.65), row("autoencoder", 1, 0.62, 0.72, 0.67),
            row("memae", 0, 0.65, 0.90, 0.85), row("memae", 1, 0.66, 0.92, 0.87)]  # fmt: skip
    settings = {"date": "d", "cpu": "c", "seconds": 60, "size": 64, "iterations": 300, "seeds": [0, 1], "draws": 2, "output": "/x/v.json"}
    lines = validation_lesions.summary(rows, settings).splitlines()
    product = next(line for line in lines if line.startswith("| product |"))
    nodule = next(line for line in lines if line.startswith("| nodule |"))
    assert "| MAMA Net (compact) > MemAE > autoencoder | no |" in product
    assert "| MemAE > MAMA Net (compact) > autoencoder | yes |" in nodule
    # rho over the six networks: nodule's values rank them exactly as the test (+1.00); product's ranks differ from
    # the test's by 0, 0 (autoencoder), -2, -2 (MemAE), +2, +2 (MAMA Net): 1 - 6 x 16 / (6 x 35) = +0.54
    assert "| +1.00 (p = 0) |" in nodule and "| +0.54 (p = 0.27) |" in product
    # MAMA Net minus MemAE, paired by seed: product (0.05 + 0.06) / 2 on validation, test -0.10
    assert product.endswith("| +0.055 / -0.100 |") and nodule.endswith("| -0.100 / -0.100 |")
    assert "| MemAE | 0.655 ± 0.007 | 0.500 ± 0.000 | 0.910 ± 0.014 | 0.500 ± 0.000 | 0.860 ± 0.014 |" in lines
