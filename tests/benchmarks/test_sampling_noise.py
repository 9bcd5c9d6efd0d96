"""benchmarks/sampling_noise.py: the resampling units, the weighted AUROC and the paired resamples, known answers."""

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import sampling_noise  # noqa: E402

#: the demo's LIDC test as slices.csv has it: nodule slices 66, 76, 86-94, and normals
NODULES = [66, 76, *range(86, 95)]
NORMALS = [56, 57, 80, 81, 100, 101]


def _lidc(scores_by_model):
    index = NORMALS + NODULES
    labels = [0] * len(NORMALS) + [1] * len(NODULES)
    return [{"task": "lidc", "network": m, "seed": s, "auroc_percentile": roc_auc_score(labels, sc),
             "_scores": {"label": labels, "score": list(sc), "slice_index": index}}
            for m, per_seed in scores_by_model.items() for s, sc in enumerate(per_seed)]  # fmt: skip


def test_units_are_slices_or_nodules_of_contiguous_slices_or_source_slices():
    labels = [0] * len(NORMALS) + [1] * len(NODULES)
    clusters = sampling_noise.units("lidc", labels, NORMALS + NODULES, "clusters")
    assert list(clusters[: len(NORMALS)]) == NORMALS  # each normal slice its own unit
    assert list(clusters[len(NORMALS):]) == [-1000, -1001] + [-1002] * 9  # three nodules
    assert list(sampling_noise.units("lidc", labels, NORMALS + NODULES, "slices")) == list(range(len(labels)))
    brain = sampling_noise.units("brain", [0, 1, 1, 0, 1, 1], [3, 3, 3, 9, 9, 9], "clusters")
    assert list(brain) == [3, 3, 3, 9, 9, 9]  # a source slice with its bright and dark copies


def test_the_weighted_auroc_of_slice_scores_is_the_auroc_of_the_items_repeated():
    rng = np.random.default_rng(0)
    labels, scores = np.array([0] * 6 + [1] * 5), rng.normal(size=11)
    scores[7] = scores[0] = scores[3]  # ties between normal and anomalous items count half
    weights = np.array([2, 0, 1, 3, 1, 0, 1, 2, 0, 1, 4], dtype=float)
    repeated = np.repeat(np.arange(11), weights.astype(int))
    (got,) = sampling_noise.weighted_auroc(scores, labels == 1, np.arange(11), weights[None])  # each slice its own item
    assert got == pytest.approx(roc_auc_score(labels[repeated], scores[repeated]))


def test_a_resample_draws_whole_nodules_and_is_shared_by_every_model_and_seed(monkeypatch):
    perfect = [np.r_[np.zeros(len(NORMALS)), np.ones(len(NODULES))]] * 2
    flat = [np.full(len(NORMALS) + len(NODULES), 0.5)] * 2
    rows = _lidc({"mamanet_compact": perfect, "autoencoder": flat, "memae": perfect})
    seen = []
    real = sampling_noise.weighted_auroc
    monkeypatch.setattr(sampling_noise, "weighted_auroc", lambda v, y, i, w: seen.append(w.copy()) or real(v, y, i, w))
    diffs = sampling_noise.resampled_differences(rows, "lidc", "clusters", resamples=50)
    # perfect minus flat is 1 - 0.5 in every resample; perfect minus perfect 0
    assert np.all(diffs["autoencoder"] == 0.5) and np.all(diffs["memae"] == 0.0)
    assert len(seen) == 3 * 2 and all(w.shape == (50, len(NORMALS) + len(NODULES)) for w in seen)  # a run's 50 resamples at once
    assert all(np.array_equal(seen[0], w) for w in seen)  # one set of resamples for every model and seed
    for w in seen[0]:
        nodule = w[len(NORMALS) + 2:]
        assert np.all(nodule == nodule[0])  # the nine slices of one nodule go together
        assert w[: len(NORMALS)].sum() == len(NORMALS) and (w[len(NORMALS):len(NORMALS) + 2].sum() + nodule[0]) == 3


def test_the_weighted_pixel_auroc_is_sklearns_on_the_items_pixels_repeated():
    rng = np.random.default_rng(1)
    item = np.repeat(np.arange(4), [30, 20, 25, 15])
    values = np.round(rng.normal(size=90), 1)  # rounded: ties between lesion and other pixels
    lesion = rng.random(90) < 0.3
    weights = np.array([[1, 1, 1, 1], [2, 0, 1, 0], [0, 3, 0, 1]], dtype=float)
    got = sampling_noise.weighted_auroc(values, lesion, item, weights)
    for row, g in zip(weights, got):
        repeated = np.concatenate([np.flatnonzero(item == k).repeat(int(w)) for k, w in enumerate(row)])
        assert g == pytest.approx(roc_auc_score(lesion[repeated], values[repeated]))


def test_unit_resamples_draw_the_distinct_units_and_weight_a_units_items_alike():
    units = np.array([-1000, -1001, -1002, -1002, -1002])  # two small nodules, one nodule over three slices
    weights = sampling_noise.unit_resamples(units, resamples=200)
    assert weights.shape == (200, 5)
    assert np.all(weights[:, 2] == weights[:, 3]) and np.all(weights[:, 3] == weights[:, 4])
    assert np.all(weights[:, 0] + weights[:, 1] + weights[:, 2] == 3)  # three units drawn each time
    assert np.array_equal(weights, sampling_noise.unit_resamples(units, resamples=200))  # every run draws the same


def test_the_per_nodule_table_scores_each_nodule_against_every_normal():
    normal = np.zeros(len(NORMALS))
    mama = np.r_[normal, 1.0, -1.0, np.zeros(9)]  # nodule 66 above every normal, 76 below, 86-94 tied with them
    rows = _lidc({"mamanet_compact": [mama, mama], "autoencoder": [mama, mama], "memae": [mama, mama]})
    lines = sampling_noise._per_nodule_table(rows)
    assert "| model | slices 66 | slices 76 | slices 86-94 |" in lines
    assert "| MAMA Net (compact) | 1.000 ± 0.000 | 0.000 ± 0.000 | 0.500 ± 0.000 |" in lines
