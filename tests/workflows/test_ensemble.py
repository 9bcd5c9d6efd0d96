"""``training#ensemble``: K networks from consecutive seeds, kept together and scored with the
mean of their reconstructions. Checked against the members' own model files (each the plain run
of its seed), and the ensemble's threshold against the validation normals' scores recomputed
here from those files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mama_monai.engines import AnomalyMap, anomaly_map_args, load_model
from mama_monai.networks import ReconstructionEnsemble
from mama_monai.workflows.config import workflow_config
from mama_monai.workflows.distributed import init_distributed
from mama_monai.workflows.splits import prepare_splits
from mama_monai.workflows.training import ensemble_size, train_model


def _parser(tiny, **extra):
    return workflow_config("autoencoder", overrides={**tiny.overrides, "data#num_workers": 0, **extra})


@pytest.fixture(scope="module")
def three_members(tmp_path_factory, tiny):
    out = tmp_path_factory.mktemp("ensemble")
    parser = _parser(tiny, **{"training#ensemble": 3, "seed": 4})
    splits = prepare_splits(parser)
    result = train_model(parser, splits["train"], splits["val"], out, init_distributed("cpu"), progress=False)
    return out, splits, result, parser


def _members(out) -> list[torch.nn.Module]:
    return [load_model(out / "members" / f"seed_{s}" / "model.pt", device="cpu")[0].eval() for s in (4, 5, 6)]


def test_the_model_file_scores_with_the_mean_of_its_members_reconstructions(three_members):
    out, splits, result, parser = three_members
    network, payload = load_model(out / "model.pt", device="cpu")
    assert isinstance(network, ReconstructionEnsemble) and len(network.members) == 3
    x = torch.stack([it["image"] for it in splits["val"]])
    members = _members(out)
    with torch.no_grad():
        expected = sum(m(x) for m in members) / 3
        torch.testing.assert_close(network(x), expected)
        torch.testing.assert_close(result.network(x), expected)
        assert not torch.allclose(members[0](x), members[1](x))  # three different networks, so averaging means something
    assert [(r["seed"], r["model"]) for r in payload["metrics"]["ensemble"]] == [(s, f"members/seed_{s}/model.pt") for s in (4, 5, 6)]
    assert not (out / "restarts").exists()
    assert payload["config"]["network_def"]["network"] == "mama_monai.networks.ConvAutoEncoder"
    assert int(parser["seed"]) == 4  # the caller's config is left as it was


def test_the_threshold_is_calibrated_on_the_ensembles_validation_normals(three_members):
    out, splits, result, parser = three_members
    payload = torch.load(out / "model.pt", weights_only=True)
    normals = torch.stack([it["image"] for it in splits["val"] if int(it["label"]) == 0])
    with torch.no_grad():
        mean = sum(m(normals) for m in _members(out)) / 3
    scores = AnomalyMap(2, **anomaly_map_args(parser.get_parsed_content("scoring")))(normals, mean).numpy()
    q = float(parser.get_parsed_content("scoring")["threshold_quantile"])
    assert payload["threshold"]["value"] == pytest.approx(float(np.quantile(scores, q)), rel=1e-5)
    assert payload["threshold"]["n_normals"] == len(normals)
    error = float(((mean - normals) ** 2).mean())
    assert payload["metrics"]["val_normal_mse"] == pytest.approx(error, rel=1e-4) and result.val_normal_mse == pytest.approx(error, rel=1e-4)
    member = torch.load(out / "members" / "seed_4" / "model.pt", weights_only=True)
    assert payload["threshold"]["value"] != member["threshold"]["value"]  # not a member's threshold


def test_each_member_is_the_plain_run_of_its_seed(three_members, tmp_path, tiny):
    out, splits, _, _ = three_members
    parser = _parser(tiny, seed=6)
    train_model(parser, splits["train"], splits["val"], tmp_path, init_distributed("cpu"), progress=False)
    plain = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    ensemble = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    for key, value in plain.items():
        assert torch.equal(value, ensemble[f"members.2.{key}"]), key


@pytest.mark.parametrize("value", [0, -1, 2.5, "3", True, 33])
def test_a_bad_ensemble_size_is_refused_by_name(value):
    with pytest.raises(ValueError, match=rf"training#ensemble must be .*got {value!r}"):
        ensemble_size({"ensemble": value})


def test_restarts_and_ensemble_together_and_resume_are_refused(tiny, tmp_path):
    parser = _parser(tiny, **{"training#ensemble": 2, "training#restarts": 2})
    splits = prepare_splits(parser)
    with pytest.raises(ValueError, match="training#restarts = 2 and training#ensemble = 2: choose one"):
        train_model(parser, splits["train"], splits["val"], tmp_path, init_distributed("cpu"), progress=False)
    parser = _parser(tiny, **{"training#ensemble": 2})
    with pytest.raises(ValueError, match="--resume with training#ensemble = 2 is not supported"):
        train_model(parser, splits["train"], splits["val"], tmp_path, init_distributed("cpu"), resume=True, progress=False)
    assert not (tmp_path / "model.pt").exists()


def test_an_ensemble_model_file_exports_to_onnx_and_matches_pytorch(three_members, tmp_path):
    """The ensemble is one network to the exporter; compared here in onnxruntime on a real validation slice."""
    import onnxruntime as ort

    from mama_monai.workflows.export import ONNX_ATOL, export_onnx

    out, splits, _, _ = three_members
    info = export_onnx(out / "model.pt", tmp_path / "model.onnx")
    assert info["max_abs_diff"] <= ONNX_ATOL
    x = splits["val"][0]["image"][None]
    with torch.no_grad():
        expected = (sum(m(x) for m in _members(out)) / 3).numpy()
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], expected, atol=ONNX_ATOL)
