"""benchmarks/memory_use.py: each variant decodes what it says (the trained pass, another slice's
memory answer, no answer, no code), and the hook's numbers are the product's scores of those
reconstructions."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import memory_use  # noqa: E402
from mama_monai.engines import AnomalyMap, anomaly_map_args, score_items  # noqa: E402
from mama_monai.workflows.config import workflow_config  # noqa: E402
from mama_monai.workflows.splits import prepare_splits  # noqa: E402

BASE = {"data#spatial_size": [32, 32], "data#num_workers": 0}


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    parser = workflow_config("mamanet_compact", overrides=BASE)
    network = parser.get_parsed_content("network_def", lazy=False)
    splits = prepare_splits(parser)
    x = torch.stack([torch.as_tensor(it["image"]) for it in splits["train"][:16]]).float()
    optimiser = torch.optim.Adam(network.parameters(), 3e-3)
    for _ in range(5):  # a few steps: the memory initialised from data
        optimiser.zero_grad()
        out = network.reconstruct(x)
        ((out.reconstruction - x) ** 2).mean().add(out.memory.loss).backward()
        optimiser.step()
    return network.eval(), parser.get_parsed_content("scoring"), splits


def _decoder_inputs(network, x):
    """What the bottleneck receives, caught at its input: the concatenation [m, z]."""
    seen = []
    handle = network.bottleneck.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach().clone()))
    return seen, handle


def test_each_variant_feeds_the_decoder_what_it_names(trained):
    network, _, splits = trained
    items = splits["val"][:6]
    x = torch.stack([torch.as_tensor(it["image"]) for it in items]).float()
    partners = memory_use.half_away([it["case_id"] for it in items])
    with torch.no_grad():
        z = network.encode(x)[0]
        m = network.address(z).output
        expected = network.reconstruct(x).reconstruction
    c = m.shape[1]
    seen, handle = _decoder_inputs(network, x)
    try:
        outputs = {v: memory_use.reconstructions(network, x, v, partners) for v in memory_use.VARIANTS}
    finally:
        handle.remove()
    torch.testing.assert_close(outputs["product"], expected)  # the trained pass, exactly
    product, other, zero_m, zero_z = seen
    assert sorted(partners) == list(range(6)) and all(p != i for i, p in enumerate(partners))
    torch.testing.assert_close(other[:, :c], m[partners])  # item i gets its partner's answer
    torch.testing.assert_close(other[:, c:], z)
    assert zero_m[:, :c].abs().max() == 0 and torch.equal(zero_m[:, c:], product[:, c:])
    assert zero_z[:, c:].abs().max() == 0 and torch.equal(zero_z[:, :c], product[:, :c])
    assert all((outputs[v] - expected).abs().max() > 1e-4 for v in ("other_m", "zero_m", "zero_z"))
    with pytest.raises(ValueError, match="variant must be one of"):
        memory_use.reconstructions(network, x, "shuffled")
    with pytest.raises(ValueError, match="variant 'other_m' needs partners"):
        memory_use.reconstructions(network, x, "other_m")


def test_the_hook_scores_the_product_variant_as_the_product_does(trained):
    network, scoring, splits = trained
    val, test = splits["val"], splits["test"]
    row = memory_use.network_values(network, val, scoring, "cpu", {"task": "lidc"}, test)
    amap = AnomalyMap(2, **anomaly_map_args(scoring))
    product_val, product_test = score_items(network, amap, val, "cpu"), score_items(network, amap, test, "cpu")
    assert row["use_val_product"] == pytest.approx(roc_auc_score(product_val["label"].astype(int), product_val["score"]), abs=1e-9)
    assert row["use_test_product"] == pytest.approx(roc_auc_score(product_test["label"].astype(int), product_test["score"]), abs=1e-9)
    normal = product_val["label"] == 0
    mse = ((product_val["image"] - product_val["pred"]) ** 2).reshape(len(val), -1).mean(1)[normal].mean()
    assert row["use_mse_product"] == pytest.approx(float(mse), rel=1e-5)
    # another variant: its own reconstruction scored by the product's map (an independent pass here)
    x = torch.stack([torch.as_tensor(it["image"]) for it in val]).float()
    r = memory_use.reconstructions(network, x, "zero_z")
    assert row["use_mse_zero_z"] == pytest.approx(float(((x - r) ** 2).flatten(1).mean(1).numpy()[normal].mean()), rel=1e-5)
    assert row["use_val_zero_z"] == pytest.approx(roc_auc_score(product_val["label"].astype(int), amap(x, r).numpy()), abs=1e-9)
    # pixel AUROC as the product reports it (metrics_report: the nodule slices' body pixels)
    from mama_monai.workflows.metrics_report import _pixel_metrics

    masks = np.stack([np.asarray(it["mask"])[0] for it in test])
    assert row["use_pixel_product"] == pytest.approx(_pixel_metrics(product_test, masks, test, amap)["pixel_auroc"], abs=1e-12)


def test_the_partner_is_another_slice_never_the_slice_itself_or_its_copies(trained):
    _, _, splits = trained
    for items in (splits["val"], splits["test"]):
        ids = [it["case_id"] for it in items]
        partners = memory_use.half_away(ids)
        assert sorted(partners) == list(range(len(ids)))  # a permutation: every answer used once

        def source(i):
            return (ids[i].split("_simulated")[0], items[i]["slice_index"])

        assert all(source(p) != source(i) for i, p in enumerate(partners))
        # far in the volume: at least 10 slices apart on average (the sets span 39-130 slices)
        assert np.mean([abs(items[p]["slice_index"] - items[i]["slice_index"]) for i, p in enumerate(partners)]) >= 10
