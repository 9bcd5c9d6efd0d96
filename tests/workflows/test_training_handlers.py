"""Early stopping, slot usage and threshold calibration inside train_model (in-process, tiny)."""

from __future__ import annotations

import torch

from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.config import workflow_config
from mama_monai.workflows.distributed import DistributedContext
from mama_monai.workflows.training import train_model


def _parser(network, tiny, **extra):
    overrides = dict(tiny.overrides)
    if network == "mamanet_compact":
        overrides.update(
            {
                "network_def#channels": [8, 16, 16],
                "network_def#decoder_channels": [16, 8],
                "network_def#num_slots": 16,
                "network_def#block_args#head_dim": 8,
            }
        )
    overrides.update(extra)
    return workflow_config(network, overrides=overrides)


def test_early_stopping_ends_training_before_the_schedule(tiny, tmp_path, monkeypatch):
    # A validation AUROC that never improves after the first validation: patience 1 stops at 2.
    parser = _parser("autoencoder", tiny, **{"training#iterations": 60, "training#early_stopping_patience": 1})
    splits = prepare_splits(parser)
    from monai.handlers import ROCAUC

    monkeypatch.setattr(ROCAUC, "compute", lambda self: 0.5, raising=False)
    result = train_model(parser, splits["train"], splits["val"], tmp_path, DistributedContext(), progress=False)
    assert result.iterations == 20  # two validations of 10 iterations, not 60
    assert [row["iteration"] for row in result.history] == [10, 20]


def test_slot_usage_and_threshold_are_recorded(tiny, tmp_path):
    parser = _parser("mamanet_compact", tiny)
    splits = prepare_splits(parser)
    result = train_model(parser, splits["train"], splits["val"], tmp_path, DistributedContext(), progress=False)
    assert all(1 <= row["slots_used"] <= 16 for row in result.history)
    normals = [it for it in splits["val"] if it["label"] == 0]
    assert result.threshold["n_normals"] == len(normals)
    assert result.threshold["method"] == "normal_quantile_0.95"
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["threshold"]["value"] == result.threshold["value"]
    assert payload["config"]["preprocessing"] == {
        "preset": "ct_lung", "spatial_size": [32, 32], "modality": "CT", "manifest": None, "fold": None,
    }  # what scoring needs + the training split; no cache folder or worker count in a deployable file
    assert payload["config"]["validation"]["validation_lesion_mode"] == "tissue"
