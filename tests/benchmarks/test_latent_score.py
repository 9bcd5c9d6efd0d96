"""benchmarks/latent_score.py: the latent map is the distance between the code and the memory's
readout, upsampled bilinearly; the latent and combined scores against an independent reference
(numpy / scipy on the network's own ``reconstruct``)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import latent_score  # noqa: E402
from mama_monai.engines import AnomalyMap, anomaly_map_args  # noqa: E402
from mama_monai.workflows.config import workflow_config  # noqa: E402
from mama_monai.workflows.splits import prepare_splits  # noqa: E402

BASE = {"data#spatial_size": [32, 32], "data#num_workers": 0}


def _reference_maps(network, items) -> np.ndarray:
    """mean over channels of (z - m)^2 per latent cell, zoomed to the image by scipy (linear,
    pixel-area grid: what ``align_corners=False`` means)."""
    x = torch.stack([torch.as_tensor(it["image"]) for it in items]).float()
    with torch.no_grad():
        out = network.reconstruct(x)
    d = ((out.latent - out.memory.output) ** 2).mean(dim=1).double().numpy()
    factor = x.shape[-1] // d.shape[-1]
    return np.stack([ndimage.zoom(cell, factor, order=1, grid_mode=True, mode="nearest") for cell in d])


@pytest.fixture(scope="module", params=["mamanet_compact", "memae"])
def trained(request):
    torch.manual_seed(0)
    parser = workflow_config(request.param, overrides=BASE)
    network = parser.get_parsed_content("network_def", lazy=False)
    splits = prepare_splits(parser)
    x = torch.stack([torch.as_tensor(it["image"]) for it in splits["train"][:16]]).float()
    optimiser = torch.optim.Adam(network.parameters(), 1e-3)
    for _ in range(5):  # a few steps, so that the memory is initialised from data and z != m
        optimiser.zero_grad()
        out = network.reconstruct(x)
        ((out.reconstruction - x) ** 2).mean().add(out.memory.loss).backward()
        optimiser.step()
    return network.eval(), parser.get_parsed_content("scoring"), splits


def test_the_latent_map_is_the_code_to_readout_distance_upsampled_bilinearly(trained):
    network, _, splits = trained
    items = splits["val"][:12]
    maps = latent_score.latent_maps(network, items, batch_size=5)  # batches of 5: the batching is under test too
    reference = _reference_maps(network, items)
    assert maps.shape == (12, 1, 32, 32)
    assert reference.std() > 0
    np.testing.assert_allclose(maps[:, 0].numpy(), reference, rtol=1e-4, atol=1e-9)


def _p99_in_body(maps: np.ndarray, body: np.ndarray) -> np.ndarray:
    out = []
    for m, b in zip(maps, body):
        inside = (m * b)[(m * b) > 0]
        out.append(np.percentile(inside if inside.size else m, 99))
    return np.array(out)


def test_latent_and_combined_scores_match_an_independent_reference(trained):
    network, scoring, splits = trained
    val, test = splits["val"], splits["test"]
    row = latent_score.network_values(network, val, scoring, "cpu", {"task": "lidc"}, test)
    amap = AnomalyMap(2, **anomaly_map_args(scoring))

    def scores(items):
        x = torch.stack([torch.as_tensor(it["image"]) for it in items]).float()
        with torch.no_grad():
            product = amap(x, network(x)).double().numpy()
        body = amap.foreground(x).numpy()[:, 0]
        return product, _p99_in_body(_reference_maps(network, items), body), np.array([int(it["label"]) for it in items])

    vp, vl, vlab = scores(val)
    tp, tl, tlab = scores(test)
    normal = vlab == 0
    z = [(vp[normal].mean(), vp[normal].std(ddof=1)), (vl[normal].mean(), vl[normal].std(ddof=1))]
    np.testing.assert_allclose(row["_latent_scores"]["latent"], tl, rtol=1e-4)  # the test's scores themselves
    np.testing.assert_allclose(row["_latent_scores"]["percentile"], tp, rtol=1e-4)
    for prefix, (p, lat, lab) in (("val_", (vp, vl, vlab)), ("", (tp, tl, tlab))):
        combined = (p - z[0][0]) / z[0][1] + (lat - z[1][0]) / z[1][1]
        # float32 maps against float64 ones: near-equal scores may order differently, a pair or two of AUROC
        assert row[prefix + "auroc_latent"] == pytest.approx(roc_auc_score(lab, lat), abs=2e-3)
        assert row[prefix + "auroc_combined"] == pytest.approx(roc_auc_score(lab, combined), abs=2e-3)
    assert 0 < tlab.sum() < len(tlab) and 0 < vlab.sum() < len(vlab)  # both classes: the AUROCs are defined
    # the latent map's pixel AUROC over the nodule slices' body pixels (the product's pixels)
    x = torch.stack([torch.as_tensor(it["image"]) for it in test]).float()
    masks = np.stack([np.asarray(it["mask"])[0] > 0 for it in test])
    nodule = (tlab == 1) & masks.reshape(len(test), -1).any(1)  # a nodule too small for 32 x 32 leaves no mask: not counted
    masks = masks[nodule]
    body = amap.foreground(x).numpy()[:, 0][nodule] > 0
    maps = (_reference_maps(network, test) * amap.foreground(x).numpy()[:, 0])[nodule]
    assert row["pixel_auroc_latent"] == pytest.approx(roc_auc_score(masks[body].ravel(), maps[body].ravel()), abs=2e-3)
