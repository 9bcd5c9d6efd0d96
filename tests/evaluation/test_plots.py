"""PNG figures: valid files, atomic writes, fixed inputs rejected, no pyplot state."""

from __future__ import annotations

import matplotlib.figure
import matplotlib.image
import numpy as np
import pytest

from mama_monai.evaluation import (
    normality_scores,
    overlay_png,
    plot_montage,
    plot_normality_per_case,
    plot_roc,
    plot_score_histograms,
)

RNG = np.random.default_rng(0)
LABELS = np.r_[np.zeros(12, int), np.ones(8, int)]
SCORES = RNG.normal(size=20) + LABELS


def _images(n=5, size=24):
    rng = np.random.default_rng(1)
    x = rng.random((n, size, size))
    r = x + rng.normal(scale=0.05, size=x.shape)
    masks = np.zeros_like(x, dtype=bool)
    masks[-1, 8:14, 8:14] = True
    return x, r, (x - r) ** 2, masks


def _plot_calls(tmp_path):
    x, r, e, masks = _images()
    labels = np.array([0, 0, 0, 1, 1])
    return {
        "roc": lambda p: plot_roc(SCORES, LABELS, p, title="test", threshold=0.5),
        "hist": lambda p: plot_score_histograms(SCORES, LABELS, p, threshold=0.5),
        "normality": lambda p: plot_normality_per_case(normality_scores(SCORES), LABELS, p, sort=True),
        "montage": lambda p: plot_montage(x, r, e, labels, p, titles=list("abcde"), masks=masks),
        "overlay": lambda p: overlay_png(x[0], e[0], p, threshold=float(np.quantile(e[0], 0.9)), alpha=0.4),
    }


@pytest.mark.parametrize("kind", ["roc", "hist", "normality", "montage", "overlay"])
def test_plot_writes_a_valid_png_and_leaves_no_temporary_file(tmp_path, kind):
    path = tmp_path / "sub" / f"{kind}.png"
    returned = _plot_calls(tmp_path)[kind](path)
    assert returned == path
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 0 and pixels.shape[1] > 0
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("kind", ["roc", "hist", "normality", "montage", "overlay"])
def test_interrupted_write_leaves_no_file_at_the_target(tmp_path, kind, monkeypatch):
    def broken_savefig(self, *args, **kwargs):
        raise KeyboardInterrupt("interrupted while writing")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    path = tmp_path / f"{kind}.png"
    with pytest.raises(KeyboardInterrupt):
        _plot_calls(tmp_path)[kind](path)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_keeps_the_previous_complete_file(tmp_path, monkeypatch):
    path = tmp_path / "roc.png"
    plot_roc(SCORES, LABELS, path)
    before = path.read_bytes()
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        plot_roc(SCORES, LABELS, path, title="other")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["roc.png"]


def test_plots_do_not_touch_pyplot_state(tmp_path):
    import matplotlib.pyplot as plt

    backend = plt.get_backend()
    calls = _plot_calls(tmp_path)
    for kind in ("roc", "overlay"):
        calls[kind](tmp_path / f"{kind}.png")
    assert plt.get_fignums() == []
    assert plt.get_backend() == backend


def test_montage_accepts_channel_axis_and_more_cases_than_rows(tmp_path):
    x, r, e, masks = _images(n=10)
    labels = np.r_[np.zeros(7, int), np.ones(3, int)]
    path = plot_montage(x[:, None], r[:, None], e[:, None], labels, tmp_path / "m.png", max_rows=4, masks=masks[:, None])
    small = plot_montage(x, r, e, labels, tmp_path / "m1.png", max_rows=1, error_vmax=0.01)
    assert matplotlib.image.imread(path).shape[0] > matplotlib.image.imread(small).shape[0]


def test_montage_row_selection_balances_classes():
    from mama_monai.evaluation.images import _pick_rows

    labels = np.r_[np.zeros(7, int), np.ones(3, int)]
    assert _pick_rows(labels, 4).tolist() == [0, 1, 7, 8]
    assert _pick_rows(labels, 6).tolist() == [0, 1, 2, 7, 8, 9]
    assert _pick_rows(labels, 20).tolist() == list(range(10))
    assert _pick_rows(np.ones(5, int), 3).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: plot_roc(SCORES, np.zeros(20, int), p), "labels must contain both"),
        (lambda p: plot_roc(SCORES, LABELS, p.with_suffix(".jpg")), "must end in .png"),
        (lambda p: plot_score_histograms(SCORES, LABELS, p, bins=0), "bins"),
        (lambda p: plot_normality_per_case(SCORES[:3], LABELS, p), "labels"),
        (lambda p: plot_montage(*_images()[:3], [0, 1], p), "labels"),
        (lambda p: plot_montage(_images()[0], _images()[1][:, :4], _images()[2], [0] * 5, p), "reconstructions"),
        (lambda p: plot_montage(*_images()[:3], [0] * 5, p, titles=["a"]), "titles"),
        (lambda p: plot_montage(*_images()[:3], [0] * 5, p, max_rows=0), "max_rows"),
        (lambda p: plot_montage(*_images()[:3], [0] * 5, p, error_vmax=-1.0), "error_vmax"),
        (lambda p: plot_montage(np.zeros((5, 4)), np.zeros((5, 4)), np.zeros((5, 4)), [0] * 5, p), "images"),
        (lambda p: overlay_png(np.zeros((8, 8)), np.zeros((8, 9)), p), "anomaly_map2d"),
        (lambda p: overlay_png(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), p), "image2d"),
        (lambda p: overlay_png(np.zeros((8, 8)), np.zeros((8, 8)), p, alpha=2.0), "alpha"),
        (lambda p: overlay_png(np.zeros((8, 8)), np.zeros((8, 8)), p, vmax=0.0), "vmax"),
        (lambda p: overlay_png(np.zeros((8, 8)), np.full((8, 8), np.nan), p), "anomaly_map2d"),
    ],
)
def test_plots_reject_bad_input_and_write_nothing(tmp_path, call, match):
    with pytest.raises(ValueError, match=match):
        call(tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_overlay_of_a_constant_map_and_image_still_renders(tmp_path):
    path = overlay_png(np.ones((1, 16, 16)), np.zeros((1, 16, 16)), tmp_path / "o.png", threshold=0.5)
    assert matplotlib.image.imread(path).size > 0
