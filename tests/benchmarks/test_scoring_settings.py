"""benchmarks/scoring_settings.py: the grid, the page's pick, and each setting's score on images
built so that the answer is known."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import scoring_settings as ss  # noqa: E402

SCORING = {"foreground_threshold": 0.02}


def test_grid_default_first_and_one_change_at_a_time():
    assert ss.GRID[0] == ss.DEFAULT == (2.0, 2, "p99")
    assert len(ss.GRID) == len(set(ss.GRID)) == 3 * 4 * 3
    # the default, 2 other sigmas, 3 other borders, 2 other reductions
    assert len(ss.ONE_AT_A_TIME) == 8
    assert ss.key(*ss.DEFAULT) == "s2_b2_p99" and ss.describe(1.0, 6, "max") == "sigma 1 px, border 6 px, maximum"


def _outputs(n_normal=3, n_anomalous=3):
    """A 64 x 64 body (0.5 on rows/columns 8-55). Normals err 0.15 everywhere in the body;
    anomalous slices err 0.1 inside and 0.8 on the body's outermost column: found with no
    erosion, invisible (and below every normal) once 6 px are eroded. No masks."""
    n = n_normal + n_anomalous
    image = np.zeros((n, 1, 64, 64), np.float32)
    image[:, :, 8:56, 8:56] = 0.5
    error = np.zeros_like(image)
    error[:n_normal, :, 8:56, 8:56] = 0.15
    error[n_normal:, :, 8:56, 8:56] = 0.1
    error[n_normal:, :, 8:56, 8] = 0.8
    labels = np.array([0] * n_normal + [1] * n_anomalous)
    out = {"image": image, "pred": image + error, "label": labels}
    items = [{"mask": np.zeros((1, 64, 64), np.float32), "lesion": None, "case_id": f"c{i}"} for i in range(n)]
    return out, items


def test_row_values_known_answers():
    out, items = _outputs()
    val = {k: v[::-1].copy() for k, v in out.items() if k != "label"}  # validation: the images the other
    val["label"] = out["label"]  # way round, the labels not: what was anomalous in the test is normal here
    row = ss.row_values(val, items, out, items, SCORING)
    assert row["set_s1_b0_max"] == 1.0  # the edge lesion is inside the unrestricted body
    assert row["set_s1_b6_max"] == 0.0  # eroded away: the anomalous slices err less than the normals
    assert row["val_set_s1_b0_max"] == 0.0 and row["val_set_s1_b6_max"] == 1.0
    assert not any(k.startswith("pixel_") for k in row)  # no slice has a mask
    assert not any(k.startswith(("bright_", "dark_")) for k in row)


def test_pixel_auroc_inside_the_default_foreground():
    """A lesion 4 px inside the body: border 6 zeroes it (pixel AUROC below chance inside the
    default's region, where the normal ring 2-6 px also reads 0), border 0 ranks it on top."""
    out, items = _outputs()
    out["pred"] = out["image"].copy()
    out["pred"][:, :, 8:56, 8:56] += 0.1
    out["pred"][3:, :, 30:34, 12] += 0.5  # the lesion's column, 4 px inside the outline
    for it in items[3:]:
        it["mask"] = np.zeros((1, 64, 64), np.float32)
        it["mask"][0, 30:34, 12] = 1.0
    row = ss.row_values(out, items, out, items, SCORING)
    assert row["pixel_set_s1_b0_max"] == pytest.approx(1.0)
    # the default's region is the 44 x 44 px square (eroded 2 px); border 6 keeps the inner 36 x 36
    # and sets the ring between them (640 px, the 4 lesion pixels among them) to 0: the lesion ties
    # with the ring's 636 normal pixels and ranks below the other 1296 of each slice
    assert row["pixel_set_s1_b6_max"] == pytest.approx(0.5 * 636 / 1932)


def test_maximum_and_percentiles_differ_on_a_spot_and_a_patch():
    """Normals err 0.15 everywhere; anomalous slices err 0.1 with one pixel at 0.8. Smoothed with
    sigma 1 px the spot stays above the normals' level within 2 px (13 pixels), fewer than the
    body's top 1 % (19 of 1,936): the maximum finds it, the 99th and 95th percentiles do not."""
    out, items = _outputs()
    out["pred"] = out["image"].copy()
    out["pred"][:3, :, 8:56, 8:56] += 0.15
    out["pred"][3:, :, 8:56, 8:56] += 0.1
    out["pred"][3:, :, 30, 30] += 0.7
    row = ss.row_values(out, items, out, items, SCORING)
    assert row["set_s1_b2_max"] == 1.0
    assert row["set_s1_b2_p99"] == 0.0 and row["set_s1_b2_p95"] == 0.0
    # a 5 x 5 px patch (25 px, 1.3 % of the body; about 64 px above the normals' level once
    # smoothed): inside the top 1 %, not the top 5 % (97 px)
    out["pred"][3:, :, 30, 30] -= 0.7
    out["pred"][3:, :, 28:33, 28:33] += 0.7
    row = ss.row_values(out, items, out, items, SCORING)
    assert row["set_s1_b2_max"] == 1.0 and row["set_s1_b2_p99"] == 1.0
    assert row["set_s1_b2_p95"] == 0.0


def test_best_by_validation_averages_the_tasks():
    rows = []
    for task, best in (("lidc", (1.0, 0, "max")), ("brain", (4.0, 6, "p95"))):
        for seed in (0, 1):
            row = {"task": task, "network": "mamanet_compact", "seed": seed}
            row.update({f"val_set_{ss.key(*s)}": 0.5 for s in ss.GRID})
            row[f"val_set_{ss.key(*best)}"] = 0.9  # each task's own best: +0.4 on one task
            row[f"val_set_{ss.key(2.0, 4, 'p99')}"] = 0.75  # +0.25 on both: the best on average
            rows.append(row)
    rows.append(dict(rows[0], network="autoencoder", **{f"val_set_{ss.key(1.0, 2, 'p95')}": 1.0}))
    assert ss.best_by_validation(rows) == (2.0, 4, "p99")
