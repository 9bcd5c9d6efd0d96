"""Early stopping, slot usage and threshold calibration inside train_model (in-process, tiny)."""

from __future__ import annotations

import pytest
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
    over = {"training#iterations": 60, "training#early_stopping_patience": 1, "training#checkpoint": "val_auroc"}
    parser = _parser("autoencoder", tiny, **over)
    splits = prepare_splits(parser)
    from monai.handlers import ROCAUC

    monkeypatch.setattr(ROCAUC, "compute", lambda self: 0.5, raising=False)
    result = train_model(parser, splits["train"], splits["val"], tmp_path, DistributedContext(), progress=False)
    assert result.iterations == 20  # two validations of 10 iterations, not 60
    assert [row["iteration"] for row in result.history] == [10, 20]


def test_early_stopping_counts_the_normal_error_by_default(tiny, tmp_path, monkeypatch):
    # The held-out normal error falls twice, then rises: patience 2 stops at the 4th validation of
    # 10 (the AUROC, rising all along, is not what counts by default).
    from monai.handlers import ROCAUC

    from mama_monai.engines.normal_error import NormalReconstructionError

    errors, aurocs = iter([0.3, 0.2, 0.25, 0.21, 0.1, 0.1]), iter([0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    monkeypatch.setattr(NormalReconstructionError, "compute", lambda self: next(errors))
    monkeypatch.setattr(ROCAUC, "compute", lambda self: next(aurocs), raising=False)
    parser = _parser("autoencoder", tiny, **{"training#iterations": 60, "training#early_stopping_patience": 2})
    splits = prepare_splits(parser)
    result = train_model(parser, splits["train"], splits["val"], tmp_path, DistributedContext(), progress=False)
    assert [row["val_normal_mse"] for row in result.history] == [0.3, 0.2, 0.25, 0.21]
    assert result.iterations == 40


def test_slot_usage_and_threshold_are_recorded(tiny, tmp_path):
    parser = _parser("mamanet_compact", tiny)
    splits = prepare_splits(parser)
    result = train_model(parser, splits["train"], splits["val"], tmp_path, DistributedContext(), progress=False)
    assert all(1 <= row["slots_used"] <= 16 for row in result.history)
    normals = [it for it in splits["val"] if it["label"] == 0]
    assert result.threshold["n_normals"] == len(normals)
    assert result.threshold["n_simulated"] == len(splits["val"]) - len(normals) > len(normals)  # auto: several copies each
    assert result.threshold["method"] == "normal_quantile_0.95"
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["threshold"]["value"] == result.threshold["value"]
    assert payload["config"]["preprocessing"] == {
        "preset": "ct_lung", "spatial_size": [32, 32], "modality": "CT", "manifest": None, "fold": None, "crop_to_body": True, "crop_rule": 2,
    }  # what scoring needs + the training split; no cache folder or worker count in a deployable file
    assert payload["config"]["validation"]["validation_lesion_mode"] == "tissue"
    # the case-score rule: the smallest share of body (the score's foreground) among the validation normals' maps
    from mama_monai.engines import AnomalyMap, anomaly_map_args, load_model

    network = load_model(tmp_path / "model.pt")[0]
    x = torch.stack([it["image"] for it in normals])
    with torch.no_grad():
        maps = AnomalyMap(2, **anomaly_map_args(parser.get_parsed_content("scoring"))).map(x, network(x))
    fraction = float((maps > 0).float().flatten(1).mean(1).min())
    assert payload["threshold"]["slice_coverage"] == {"factor": 0.5, "min_normal_fraction": pytest.approx(fraction), "floor": pytest.approx(fraction / 2)}
    assert 0.2 < fraction < 1  # the demo CT's slices: air around the body is not foreground


@pytest.mark.parametrize("value", [-0.1, 2])  # not a number at all: refused by the override check
def test_a_bad_slice_coverage_is_refused_before_training(tiny, tmp_path, value):
    parser = _parser("autoencoder", tiny, **{"scoring#slice_coverage": value})
    with pytest.raises(ValueError, match=rf"scoring#slice_coverage must be a number in \[0, 1\] .*got {value!r}"):
        train_model(parser, [], [], tmp_path, DistributedContext(), progress=False)
    assert not any(tmp_path.iterdir())


def _aurocs_falling(monkeypatch):
    """Validation AUROC 0.9 at the first validation, lower after: the best network is the first one."""
    from monai.handlers import ROCAUC

    values = iter([0.9, 0.6, 0.5, 0.4, 0.3, 0.2])
    monkeypatch.setattr(ROCAUC, "compute", lambda self: next(values), raising=False)


def test_normal_error_is_the_error_of_the_held_out_normals_at_each_validation(tiny, tmp_path):
    # Reference: normal_mse of score_items' output (numpy, after training) on the network that the
    # last validation saw (checkpoint 'last': the network kept is that network).
    from mama_monai.engines import AnomalyMap, anomaly_map_args, score_items
    from mama_monai.workflows.training import normal_mse

    parser = _parser("autoencoder", tiny, **{"training#iterations": 20, "training#checkpoint": "last"})
    splits = prepare_splits(parser)
    assert {it["label"] for it in splits["val"]} == {0, 1}  # SIMULATED lesions are there and must be left out
    result = train_model(parser, splits["train"], splits["val"], tmp_path, DistributedContext(), progress=False)
    scored = score_items(result.network, AnomalyMap(2, **anomaly_map_args(parser.get_parsed_content("scoring"))), splits["val"], torch.device("cpu"))
    assert result.history[-1]["val_normal_mse"] == pytest.approx(normal_mse(scored), rel=1e-5)
    assert result.history[0]["val_normal_mse"] != pytest.approx(result.history[-1]["val_normal_mse"], rel=1e-3)


def _errors_dipping(monkeypatch):
    """Held-out normal error 0.3, 0.1, 0.2 at the three validations: the best network is the second."""
    from mama_monai.engines.normal_error import NormalReconstructionError

    values = iter([0.3, 0.1, 0.2])
    monkeypatch.setattr(NormalReconstructionError, "compute", lambda self: next(values))


def test_checkpoint_normal_error_reloads_the_network_of_lowest_held_out_error(tiny, tmp_path, monkeypatch):
    kept = {}
    for name, choice in (("default", None), ("after_20", "last")):
        _errors_dipping(monkeypatch)
        iterations = 30 if choice is None else 20  # the network after 20 iterations: the second validation's
        over = {"training#iterations": iterations} | ({"training#checkpoint": choice} if choice else {})
        parser = _parser("autoencoder", tiny, **over)
        splits = prepare_splits(parser)
        result = train_model(parser, splits["train"], splits["val"], tmp_path / name, DistributedContext(), progress=False)
        kept[name] = {k: v.clone() for k, v in result.network.state_dict().items()}
        stored = torch.load(tmp_path / name / "model.pt", weights_only=True)
        assert stored["config"]["training"]["checkpoint"] == (choice or "normal_error")
    assert [row["val_normal_mse"] for row in result.history] == [0.3, 0.1]
    # the same seed and data: the default run kept the network of iteration 20, not its last (30)
    assert all(torch.equal(kept["default"][k], kept["after_20"][k]) for k in kept["default"])


def test_checkpoint_val_auroc_reloads_the_best_network_and_last_keeps_the_last(tiny, tmp_path, monkeypatch):
    kept = {}
    for choice in ("val_auroc", "last"):
        _aurocs_falling(monkeypatch)
        parser = _parser("autoencoder", tiny, **{"training#iterations": 30, "training#checkpoint": choice})
        splits = prepare_splits(parser)
        result = train_model(parser, splits["train"], splits["val"], tmp_path / choice, DistributedContext(), progress=False)
        assert [row["val_auroc"] for row in result.history] == [0.9, 0.6, 0.5]  # logged either way
        best = torch.load(tmp_path / choice / "checkpoints" / "best_network.pt", weights_only=True)
        kept[choice] = {k: v.clone() for k, v in result.network.state_dict().items()}
        same_as_best = all(torch.equal(kept[choice][k], best[k]) for k in best)
        assert same_as_best == (choice == "val_auroc")
        stored = torch.load(tmp_path / choice / "model.pt", weights_only=True)
        assert stored["config"]["training"]["checkpoint"] == choice
    # the same seed and data: 'last' is the network 20 iterations after the one 'val_auroc' reloads
    assert any(not torch.equal(kept["last"][k], kept["val_auroc"][k]) for k in kept["last"])


def test_an_unknown_checkpoint_choice_is_refused_before_training(tiny, tmp_path):
    parser = _parser("autoencoder", tiny, **{"training#checkpoint": "best"})
    splits = prepare_splits(parser)
    with pytest.raises(ValueError, match=r"training#checkpoint must be one of \['normal_error', 'val_auroc', 'last'\], got 'best'"):
        train_model(parser, splits["train"], splits["val"], tmp_path, DistributedContext(), progress=False)
    assert not (tmp_path / "model.pt").exists()


def test_ctrl_c_during_a_validation_lets_the_block_finish_and_its_checkpoint_be_written(tiny, tmp_path, monkeypatch):
    # SIGINT arrives inside the first validation (as it may inside any handler): the validation,
    # the history row and the block's checkpoint complete, then training stops; no model file.
    import os
    import signal

    from mama_monai.engines.normal_error import NormalReconstructionError

    computed = []
    original = NormalReconstructionError.compute

    def compute(self):
        if not computed:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, mid-handler
        computed.append(original(self))
        return computed[-1]

    monkeypatch.setattr(NormalReconstructionError, "compute", compute)
    parser = _parser("autoencoder", tiny, **{"training#iterations": 30})
    splits = prepare_splits(parser)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job starts with it ignored
    try:
        with pytest.raises(KeyboardInterrupt):
            train_model(parser, splits["train"], splits["val"], tmp_path, DistributedContext(), progress=False)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert len(computed) == 1  # the first validation finished; no second one began
    assert [p.name for p in (tmp_path / "checkpoints").glob("last_*.pt")] == ["last_checkpoint_epoch=1.pt"]
    assert not (tmp_path / "model.pt").exists()


def test_val_auroc_without_lesions_keeps_the_last_network_not_a_stale_best_file(tiny, tmp_path):
    # no lesion in validation: no AUROC, so nothing is 'best' by it; a best_network.pt that an earlier
    # run left in the folder (here: random weights) must not be loaded in place of the last network
    over = {"training#iterations": 20, "data#simulated_validation_anomalies": False}
    parser = _parser("autoencoder", tiny, **over, **{"training#checkpoint": "val_auroc"})
    splits = prepare_splits(parser)
    assert {it["label"] for it in splits["val"]} == {0}
    stale = tmp_path / "run" / "checkpoints" / "best_network.pt"
    stale.parent.mkdir(parents=True)
    stale_weights = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in parser.get_parsed_content("network_def").state_dict().items()}
    torch.save(stale_weights, stale)
    result = train_model(parser, splits["train"], splits["val"], tmp_path / "run", DistributedContext(), progress=False)
    last = train_model(_parser("autoencoder", tiny, **over, **{"training#checkpoint": "last"}), splits["train"], splits["val"],
                       tmp_path / "last", DistributedContext(), progress=False)  # fmt: skip
    assert all(torch.equal(v, last.network.state_dict()[k]) for k, v in result.network.state_dict().items())
    left = torch.load(stale, weights_only=True)
    assert all(torch.equal(left[k], v) for k, v in stale_weights.items())  # no validation was 'best': nothing rewrote it


@pytest.mark.parametrize("choice", ["normal_error", "val_auroc", "last"])
@pytest.mark.parametrize(
    "history",
    [
        [(0.30, 0.6), (0.10, 0.7), (0.20, 0.9), (0.10, 0.8)],  # best error early, tied later; best AUROC in between
        [(0.30, 0.6), (0.20, 0.6), (0.25, 0.5)],  # a tie on AUROC: the first is kept
        [(0.30, None), (0.20, None)],  # no lesions in validation: no AUROC
    ],
)
def test_kept_validation_is_the_row_whose_network_was_saved(choice, history):
    """The reference is TrainingProgress itself: the network is saved on every row ``update``
    calls the best so far, so the kept row is the last such row (the last row for ``last`` or
    where no row carries the criterion)."""
    from mama_monai.engines.training_progress import TrainingProgress
    from mama_monai.workflows.training import CHECKPOINT_CRITERION, kept_validation

    rows = [dict({"iteration": 10 * (k + 1), "val_normal_mse": e}, **({} if a is None else {"val_auroc": a})) for k, (e, a) in enumerate(history)]
    progress = TrainingProgress(0, CHECKPOINT_CRITERION[choice])
    saved = [row for row in rows if progress.update(row)]
    expected = rows[-1] if choice == "last" or not saved else saved[-1]
    assert kept_validation(rows, choice) is expected
    assert kept_validation([], choice) is None


def test_kept_validation_known_answers_a_tie_keeps_the_earlier_network():
    """Known answers, independent of TrainingProgress (which shares ``improves`` with it)."""
    from mama_monai.workflows.training import kept_validation

    rows = [{"iteration": 10, "val_normal_mse": 0.3, "val_auroc": 0.6}, {"iteration": 20, "val_normal_mse": 0.1, "val_auroc": 0.6},
            {"iteration": 30, "val_normal_mse": 0.1, "val_auroc": 0.5}, {"iteration": 40, "val_normal_mse": 0.2}]  # fmt: skip
    assert kept_validation(rows, "normal_error")["iteration"] == 20  # the tie at 30 does not replace it
    assert kept_validation(rows, "val_auroc")["iteration"] == 10  # the tie at 20 does not replace it; 40 has no AUROC
    assert kept_validation(rows, "last")["iteration"] == 40
    assert kept_validation([{"iteration": 10, "val_normal_mse": 0.3}], "val_auroc")["iteration"] == 10  # no AUROC: the last
