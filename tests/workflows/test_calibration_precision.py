"""The threshold is calibrated on scores computed as ``mama-monai score`` and ``evaluate`` compute
them: in full precision, also when training ran under bf16 autocast (``training#amp`` on CUDA).
On a CPU autocast never runs, so the test makes training believe it does (``_amp`` -> True) and
checks the precision of every scoring pass that calibrates a threshold."""

from __future__ import annotations

import inspect

import pytest

from mama_monai.workflows import training
from mama_monai.workflows.config import workflow_config
from mama_monai.workflows.distributed import init_distributed
from mama_monai.workflows.splits import prepare_splits


@pytest.mark.parametrize("members", [1, 2])
def test_thresholds_are_calibrated_in_full_precision_after_bf16_training(tiny, tmp_path, monkeypatch, members):
    monkeypatch.setattr(training, "_amp", lambda cfg, ctx: True)  # as on CUDA with training#amp: true
    real, passes = training.score_items, []

    def spy(*args, **kwargs):
        bound = inspect.signature(real).bind(*args, **kwargs)
        bound.apply_defaults()
        passes.append(bound.arguments["amp"])
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "score_items", spy)
    parser = workflow_config("autoencoder", overrides={**tiny.overrides, "data#num_workers": 0, "training#ensemble": members})
    splits = prepare_splits(parser)
    result = training.train_model(parser, splits["train"], splits["val"], tmp_path, init_distributed("cpu"), progress=False)
    assert result.threshold is not None
    # one calibration per network, and one more for an ensemble's mean: none under autocast
    assert passes == [False] * (members + (members > 1))
    # the engines of training itself were built with autocast on: the patch took effect
    assert training.build_training_run(parser, splits["train"], splits["val"], init_distributed("cpu")).amp is True
