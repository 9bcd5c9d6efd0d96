"""The held-out normal error (the default checkpoint criterion) and the progress it drives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from ignite.exceptions import NotComputableError

from mama_monai.engines.normal_error import NormalReconstructionError
from mama_monai.engines.training_progress import TrainingProgress


def _batches(seed: int = 0):
    """Three batches of (image, pred, label); the second holds anomalous cases only."""
    g = torch.Generator().manual_seed(seed)
    labels = ([0, 1, 0], [1, 1], [1, 0, 0, 0])
    return [
        {"image": torch.rand(len(lab), 1, 6, 5, generator=g), "pred": torch.rand(len(lab), 1, 6, 5, generator=g), "label": torch.tensor(lab)}
        for lab in labels
    ]


def test_the_mean_squared_error_over_the_normal_pixels_only():
    batches = _batches()
    engine = Engine(lambda e, b: b)
    NormalReconstructionError().attach(engine, "err")
    engine.run(batches, max_epochs=1)
    # reference: numpy over the label-0 images of all batches, every pixel weighted alike
    image = np.concatenate([b["image"].numpy() for b in batches])
    pred = np.concatenate([b["pred"].numpy() for b in batches])
    normal = np.concatenate([b["label"].numpy() for b in batches]) == 0
    assert engine.state.metrics["err"] == pytest.approx(float(((image[normal] - pred[normal]) ** 2).mean()), rel=1e-6)
    everything = float(((image - pred) ** 2).mean())
    assert engine.state.metrics["err"] != pytest.approx(everything, rel=1e-3)  # the anomalous cases do change it


def test_a_pass_without_normal_cases_is_not_computable():
    engine = Engine(lambda e, b: b)
    NormalReconstructionError().attach(engine, "err")
    with pytest.raises(NotComputableError, match="at least one normal"):
        engine.run([_batches()[1]], max_epochs=1)


def test_progress_keeps_the_lowest_normal_error_and_the_highest_auroc():
    rows = [{"val_normal_mse": e, "val_auroc": a} for e, a in ((0.3, 0.5), (0.1, 0.4), (0.2, 0.9))]
    by_error, by_auroc = TrainingProgress(criterion="val_normal_mse"), TrainingProgress(criterion="val_auroc")
    assert [by_error.update(dict(r)) for r in rows] == [True, True, False]
    assert [by_auroc.update(dict(r)) for r in rows] == [True, False, True]
    assert (by_error.best, by_error.stale, by_auroc.best, by_auroc.stale) == (0.1, 1, 0.9, 0)


def test_a_resumed_run_refuses_a_progress_saved_under_another_criterion():
    saved = TrainingProgress(criterion="val_auroc")
    saved.update({"val_auroc": 0.7, "val_normal_mse": 0.01})
    with pytest.raises(ValueError, match=r"chosen by 'val_auroc', this run chooses by 'val_normal_mse'.*training#checkpoint changed"):
        TrainingProgress(criterion="val_normal_mse").load_state_dict(saved.state_dict())
    # a checkpoint written before the criterion was recorded was chosen by validation AUROC
    old = {k: v for k, v in saved.state_dict().items() if k != "criterion"}
    restored = TrainingProgress(criterion="val_auroc")
    restored.load_state_dict(old)
    assert (restored.best, restored.history) == (0.7, saved.history)
    with pytest.raises(ValueError, match="criterion must be one of"):
        TrainingProgress(criterion="loss")
