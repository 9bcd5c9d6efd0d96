"""``training#restarts``: K networks from consecutive seeds, the one with the lowest error on the
held-out normal validation slices kept. Checked against an independent recomputation of that
error from each run's model file, and against plain single runs of the same seeds."""

from __future__ import annotations

import pytest
import torch

from mama_monai.engines import load_model
from mama_monai.workflows.config import workflow_config
from mama_monai.workflows.distributed import init_distributed
from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.training import restart_count, train_model


def _parser(tiny, **extra):
    return workflow_config("autoencoder", overrides={**tiny.overrides, "data#num_workers": 0, **extra})


def _normal_error(model_file, val_items) -> float:
    """Mean squared reconstruction error on the validation normals, computed here from the model file."""
    network = load_model(model_file, device="cpu")[0].eval()
    normals = torch.stack([it["image"] for it in val_items if int(it["label"]) == 0])
    with torch.no_grad():
        return float(((network(normals) - normals) ** 2).mean())


@pytest.fixture(scope="module")
def three_restarts(tmp_path_factory, tiny):
    out = tmp_path_factory.mktemp("restarts")
    parser = _parser(tiny, **{"training#restarts": 3, "seed": 4})
    splits = prepare_splits(parser)
    result = train_model(parser, splits["train"], splits["val"], out, init_distributed("cpu"), progress=False)
    return out, splits, result, parser


def test_the_kept_network_has_the_lowest_held_out_normal_error(three_restarts):
    out, splits, result, parser = three_restarts
    errors = {s: _normal_error(out / "restarts" / f"seed_{s}" / "model.pt", splits["val"]) for s in (4, 5, 6)}
    kept = min(errors, key=errors.get)
    saved = torch.load(out / "model.pt", weights_only=True)
    assert saved["metrics"]["kept_seed"] == kept
    record = {r["seed"]: r["val_normal_mse"] for r in saved["metrics"]["restarts"]}
    assert record == pytest.approx(errors, rel=1e-4)  # the recorded errors are the ones recomputed here
    assert len(set(round(e, 8) for e in errors.values())) == 3  # three different networks, so the choice means something
    reference = torch.load(out / "restarts" / f"seed_{kept}" / "model.pt", weights_only=True)
    for key, value in reference["state_dict"].items():
        assert torch.equal(value, saved["state_dict"][key]), key
    assert saved["threshold"] == reference["threshold"]
    assert result.val_normal_mse == pytest.approx(errors[kept], rel=1e-4)
    assert int(parser["seed"]) == 4  # the caller's config is left as it was


def test_each_restart_is_the_plain_run_of_its_seed(three_restarts, tmp_path, tiny):
    out, splits, _, _ = three_restarts
    parser = _parser(tiny, seed=5)
    train_model(parser, splits["train"], splits["val"], tmp_path, init_distributed("cpu"), progress=False)
    plain = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    restart = torch.load(out / "restarts" / "seed_5" / "model.pt", weights_only=True)["state_dict"]
    for key, value in plain.items():
        assert torch.equal(value, restart[key]), key
    assert not (tmp_path / "restarts").exists()  # restarts: 1 is the single run, as before


@pytest.mark.parametrize("value", [0, -1, 2.5, "3", True])
def test_a_bad_restart_count_is_refused_by_name(value):
    with pytest.raises(ValueError, match=rf"training#restarts must be an integer >= 1 .*got {value!r}"):
        restart_count({"restarts": value})


def test_resume_with_restarts_is_refused(tiny, tmp_path):
    parser = _parser(tiny, **{"training#restarts": 2})
    splits = prepare_splits(parser)
    with pytest.raises(ValueError, match="--resume with training#restarts = 2 is not supported"):
        train_model(parser, splits["train"], splits["val"], tmp_path, init_distributed("cpu"), resume=True, progress=False)
