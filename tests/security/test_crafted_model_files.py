"""A model file is data, never code: crafted model files are refused on every route, with no side effect.

Each case tampers a real model file (``save_model`` on a tiny ConvAutoEncoder) in one way that
MONAI's ``ConfigParser`` would act on (``$`` expressions, ``_target_`` of any importable callable,
``_requires_``, ``%file#key`` macros, ``@`` references, ``_mode_``...) or that is not valid plain
data (unknown keys, NaN thresholds, tensors where numbers belong). Where the payload would run
code, it creates a marker file; the marker must not exist afterwards. Every case must be refused
by ``load_model``, by ``mama-monai score`` and ``evaluate`` (one line, exit 2) and by the bundle's
evaluator and inferer, and the message must name the file and the key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from mama_monai.cli import main
from mama_monai.data.demo import load_demo_ct
from mama_monai.engines import CheckpointError, load_model, read_checkpoint
from mama_monai.workflows.bundle import BundleConfigError, BundleEvaluator, BundleInferer
from mama_monai.workflows.config import configs_dir, load_config


def _run(marker: Path, result: str) -> str:
    """A ``$`` expression that creates ``marker`` and then evaluates to ``result`` (so the old loader went on)."""
    return f"$__import__('pathlib').Path({str(marker)!r}).touch() or {result}"


def _net(payload: dict) -> dict:
    return payload["config"]["network_def"]


def _ensemble(payload: dict, network: str | None = None, network_args: dict | None = None, members: int = 1, **changed) -> dict:
    """An ensemble network_def of the file's own network (``members`` of it), with the given parts replaced."""
    member = dict(payload["config"]["network_def"])
    target = member.pop("_target_")
    return {"_target_": "mama_monai.networks.ReconstructionEnsemble", "network": network or target,
            "network_args": network_args if network_args is not None else {**member, **changed}, "members": members}  # fmt: skip


def _macro_file(folder: Path, marker: Path) -> str:
    source = folder / "channels.json"
    source.write_text(json.dumps({"channels": _run(marker, "[4, 8]")}))
    return f"%{source}#channels"


# (id, change(payload, marker, folder), key path named in the error)
CASES = [
    ("expression_argument", lambda p, m, f: _net(p).update(channels=_run(m, "[4, 8]")), r"config\.network_def\.channels"),
    (
        "expression_nested_argument",
        lambda p, m, f: _net(p).update(act=["leakyrelu", {"negative_slope": _run(m, "0.2")}]),
        r"config\.network_def\.act\[1\]\.negative_slope",
    ),
    (
        "expression_whole_network_def",
        lambda p, m, f: p["config"].update(
            network_def=_run(m, "__import__('mama_monai.networks', fromlist=['x']).ConvAutoEncoder(2, 1, channels=[4, 8])")
        ),
        r"config\.network_def",
    ),
    (
        "target_os_makedirs",
        lambda p, m, f: p["config"].update(network_def={"_target_": "os.makedirs", "name": str(m)}),
        r"config\.network_def\._target_.*'os\.makedirs'",
    ),
    (
        "target_nested_os_makedirs",
        lambda p, m, f: _net(p).update(act=["leakyrelu", {"negative_slope": {"_target_": "os.makedirs", "name": str(m)}}]),
        r"config\.network_def\.act\[1\]\.negative_slope\._target_",
    ),
    (
        "target_pathlib_touch",
        lambda p, m, f: p["config"].update(network_def={"_target_": "pathlib.Path.touch", "self": _run(m, "None")}),
        r"config\.network_def\._target_.*'pathlib\.Path\.touch'",
    ),
    (
        "target_module_outside_the_package",
        lambda p, m, f: _net(p).update(_target_="torch.nn.Identity"),
        r"config\.network_def\._target_.*'torch\.nn\.Identity'",
    ),
    ("target_unknown_network", lambda p, m, f: _net(p).update(_target_="mama_monai.networks.NoSuchNet"), r"_target_"),
    ("requires", lambda p, m, f: _net(p).update(_requires_=_run(m, "None")), r"config\.network_def\._requires_"),
    ("mode", lambda p, m, f: _net(p).update(_mode_="default"), r"config\.network_def\._mode_"),
    ("disabled", lambda p, m, f: _net(p).update(_disabled_=False), r"config\.network_def\._disabled_"),
    ("desc", lambda p, m, f: _net(p).update(_desc_="a network"), r"config\.network_def\._desc_"),
    ("macro_file_key", lambda p, m, f: _net(p).update(channels=_macro_file(f, m)), r"config\.network_def\.channels"),
    ("reference", lambda p, m, f: _net(p).update(out_channels="@network_def#in_channels"), r"config\.network_def\.out_channels"),
    ("expression_key", lambda p, m, f: _net(p).update({"$import os": 1}), r"config\.network_def\.\$import os"),
    ("unknown_argument", lambda p, m, f: _net(p).update(dropout=0.5), r"config\.network_def\.dropout.*no argument 'dropout'"),
    ("missing_argument", lambda p, m, f: _net(p).pop("in_channels"), r"config\.network_def.*\['in_channels'\]"),
    (
        "nan_argument",
        lambda p, m, f: _net(p).update(act=["leakyrelu", {"negative_slope": float("nan")}]),
        r"config\.network_def\.act\[1\]\.negative_slope.*finite",
    ),
    (
        "tensor_argument",
        lambda p, m, f: _net(p).update(channels=torch.tensor([4, 8])),
        r"config\.network_def\.channels.*Tensor",
    ),
    (
        "expression_modality",
        lambda p, m, f: p["config"]["preprocessing"].update(modality=_run(m, "'CT'")),
        r"config\.preprocessing\.modality",
    ),
    (
        "expression_preset",
        lambda p, m, f: p["config"]["preprocessing"].update(preset=_run(m, "'ct_lung'")),
        r"config\.preprocessing\.preset",
    ),
    (
        "expression_spatial_size",
        lambda p, m, f: p["config"]["preprocessing"].update(spatial_size=_run(m, "[32, 32]")),
        r"config\.preprocessing\.spatial_size",
    ),
    ("reference_modality", lambda p, m, f: p["config"]["preprocessing"].update(modality="@data#preset"), r"modality"),
    ("unknown_preset", lambda p, m, f: p["config"]["preprocessing"].update(preset="ct_brain"), r"preset.*'ct_brain'"),
    ("zero_spatial_size", lambda p, m, f: p["config"]["preprocessing"].update(spatial_size=[0, 32]), r"spatial_size.*\[0, 32\]"),
    ("float_spatial_size", lambda p, m, f: p["config"]["preprocessing"].update(spatial_size=[32.0, 32]), r"spatial_size"),
    ("expression_scoring", lambda p, m, f: p["config"]["scoring"].update(sigma=_run(m, "1.0")), r"config\.scoring\.sigma"),
    ("unknown_scoring_key", lambda p, m, f: p["config"]["scoring"].update(window=3), r"config\.scoring.*window"),
    ("bad_reduction", lambda p, m, f: p["config"]["scoring"].update(reduction="median"), r"config\.scoring.*median"),
    ("nan_sigma", lambda p, m, f: p["config"]["scoring"].update(sigma=float("nan")), r"config\.scoring\.sigma.*finite"),
    ("nan_threshold", lambda p, m, f: p["threshold"].update(value=float("nan")), r"threshold\.value.*finite"),
    ("inf_threshold", lambda p, m, f: p["threshold"].update(value=float("inf")), r"threshold\.value.*finite"),
    ("string_threshold", lambda p, m, f: p["threshold"].update(value="0.01"), r"threshold\.value.*'0\.01'"),
    ("bool_threshold", lambda p, m, f: p["threshold"].update(value=True), r"threshold\.value.*True"),
    ("missing_threshold", lambda p, m, f: p["threshold"].pop("value"), r"threshold\.value.*None"),
    (
        "nan_threshold_entry",
        lambda p, m, f: p["threshold"].update(best_f1_on_validation={"value": float("nan")}),
        r"threshold\.best_f1_on_validation\.value.*finite",
    ),
    ("tensor_threshold", lambda p, m, f: p["threshold"].update(value=torch.tensor(0.01)), r"threshold\.value"),
    ("tensor_metric", lambda p, m, f: p["metrics"].update(iterations=torch.tensor(20)), r"metrics\.iterations.*Tensor"),
    ("unknown_top_level_key", lambda p, m, f: p.update(hook=_run(m, "None")), r"hook.*not a key"),
    ("weights_not_tensors", lambda p, m, f: p["state_dict"].update({"decoder.bias": [0.0]}), r"state_dict"),
    ("format_version_string", lambda p, m, f: p.update(format_version="1"), r"format_version"),
    (
        "ensemble_member_os_makedirs",
        lambda p, m, f: p["config"].update(network_def=_ensemble(p, network="os.makedirs", network_args={"name": str(m)})),
        r"config\.network_def\.network.*'os\.makedirs'",
    ),
    (
        "ensemble_member_expression_argument",
        lambda p, m, f: p["config"].update(network_def=_ensemble(p, channels=_run(m, "[4, 8]"))),
        r"config\.network_def\.network_args\.channels",
    ),
    (
        "ensemble_member_target_key",
        lambda p, m, f: p["config"].update(network_def=_ensemble(p, _target_="os.makedirs")),
        r"config\.network_def\.network_args\._target_",
    ),
    (
        "ensemble_of_ensembles",
        lambda p, m, f: p["config"].update(network_def=_ensemble(p, network="mama_monai.networks.ReconstructionEnsemble")),
        r"config\.network_def\.network.*cannot be an ensemble's member",
    ),
    (
        "ensemble_member_by_its_module_path",  # a network the ensemble would not build: refused by name, before building
        lambda p, m, f: p["config"].update(network_def=_ensemble(p, network="mama_monai.networks.nets.autoencoder.ConvAutoEncoder")),
        r"config\.network_def\.network.*cannot be an ensemble's member",
    ),
    ("ensemble_too_many_members", lambda p, m, f: p["config"].update(network_def=_ensemble(p, members=10**6)), r"config\.network_def\.members"),
    ("deep_nesting", lambda p, m, f: p["metrics"].update(deep=[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]), r"metrics\.deep.*nested"),
]


@pytest.fixture(params=CASES, ids=[c[0] for c in CASES])
def crafted(request, tamper, tmp_path) -> tuple[Path, Path, str]:
    """``(model file, marker, key pattern)`` of one crafted case."""
    name, change, key = request.param
    marker = tmp_path / "payload_ran"
    bad = tamper(tmp_path / f"{name}.pt", lambda payload: change(payload, marker, tmp_path))
    return bad, marker, key


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"mama-monai {command}: error: "), err
    return err


def test_the_untampered_file_loads_and_scores(good_model, tmp_path, capsys):
    """The control: the file the table tampers with is accepted everywhere."""
    network, payload = load_model(good_model)
    assert type(network).__name__ == "ConvAutoEncoder" and payload["threshold"]["value"] == 0.01
    argv = ["score", "--model", str(good_model), "--input", str(load_demo_ct()["image"]), "--output", str(tmp_path / "out")]
    assert main(argv) == 0, capsys.readouterr().err
    [case] = json.loads((tmp_path / "out" / "scores.json").read_text())["cases"]
    assert case["status"] == "ok" and (tmp_path / "out" / case["anomaly_map"]).is_file()


def test_load_model_refuses_naming_file_and_key_without_running_anything(crafted):
    bad, marker, key = crafted
    with pytest.raises(CheckpointError, match=re.escape(repr(str(bad))) + ".*" + key):
        load_model(bad)
    with pytest.raises(CheckpointError, match=re.escape(repr(str(bad)))):
        read_checkpoint(bad)
    assert not marker.exists()


def test_score_refuses_in_one_line_without_running_anything(crafted, tmp_path, capsys):
    bad, marker, key = crafted
    out = tmp_path / "scores"
    assert main(["score", "--model", str(bad), "--input", str(load_demo_ct()["image"]), "--output", str(out)]) == 2
    err = _one_line(capsys, "score")
    assert repr(str(bad)) in err and re.search(key, err), err
    assert not marker.exists() and not out.exists()


def test_evaluate_refuses_in_one_line_without_running_anything(crafted, tmp_path, capsys):
    bad, marker, key = crafted
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(bad), "--output", str(out), "--device", "cpu"]) == 2
    err = _one_line(capsys, "evaluate")
    assert repr(str(bad)) in err and re.search(key, err), err
    assert not marker.exists() and not out.exists()


@pytest.fixture(scope="module")
def bundle_data(tmp_path_factory) -> Path:
    """A ``dataset_dir`` for the bundle inferer: the demo CT."""
    folder = tmp_path_factory.mktemp("bundle_data")
    (folder / "ct.nii.gz").symlink_to(load_demo_ct()["image"])
    return folder


def test_bundle_evaluator_and_inferer_refuse_without_running_anything(crafted, bundle_data, tmp_path):
    bad, marker, key = crafted
    parser = load_config(configs_dir() / "train.yaml")
    with pytest.raises(BundleConfigError, match="ckpt_path .*" + re.escape(repr(str(bad))) + ".*" + key):
        BundleEvaluator(bad, tmp_path / "eval", device="cpu").run(parser)
    with pytest.raises(BundleConfigError, match="ckpt_path .*" + re.escape(repr(str(bad))) + ".*" + key):
        BundleInferer(bad, bundle_data, tmp_path / "infer", device="cpu").run()
    assert not marker.exists()
    assert not (tmp_path / "eval").exists() and not (tmp_path / "infer").exists()


def test_weights_that_do_not_fit_the_network_are_named_one_kind_at_a_time(tmp_path):
    from tests.model_files import tiny_model_file

    path = tiny_model_file(tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    first = sorted(payload["state_dict"])[0]
    cases = {
        "missing": lambda sd: sd.pop(first),
        "unexpected": lambda sd: sd.__setitem__("extra.weight", torch.zeros(1)),
        "shape": lambda sd: sd.__setitem__(first, torch.zeros(*sd[first].shape, 2)),
    }
    for kind, change in cases.items():
        crafted = {**payload, "state_dict": dict(payload["state_dict"])}
        change(crafted["state_dict"])
        torch.save(crafted, tmp_path / f"{kind}.pt")
        lists = {"missing": [], "unexpected": [], "shape mismatch": []}
        lists[{"missing": "missing", "unexpected": "unexpected", "shape": "shape mismatch"}[kind]] = [first if kind != "unexpected" else "extra.weight"]
        expected = ", ".join(f"{name} {value}" for name, value in lists.items())
        message = f"model file {str(tmp_path / f'{kind}.pt')!r} does not match its network_def in this code: {expected}."
        with pytest.raises(CheckpointError, match=re.escape(message)):
            load_model(tmp_path / f"{kind}.pt")


def test_objects_outside_the_weights_only_allow_list_are_never_unpickled(tmp_path):
    import fractions

    from tests.model_files import tiny_model_file

    path = tiny_model_file(tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    payload["metrics"] = {"ratio": fractions.Fraction(1, 3)}  # harmless, but code would run to rebuild it
    torch.save(payload, tmp_path / "object.pt")
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(tmp_path / "object.pt")
    message = str(info.value)
    assert message.startswith(f"model file {str(tmp_path / 'object.pt')!r} cannot be read as a mama-monai checkpoint")
    first_line = message.split("UnpicklingError: ", 1)[1]
    assert first_line.startswith("Weights only load failed") and "\n" not in first_line


def test_a_payload_that_is_not_a_checkpoint_dict_or_lacks_a_field_is_named(tmp_path):
    from tests.model_files import tiny_model_file

    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"is not a mama-monai checkpoint \(format"):
        read_checkpoint(tmp_path / "list.pt")
    payload = torch.load(tiny_model_file(tmp_path / "model.pt"), weights_only=True)
    del payload["threshold"]
    torch.save(payload, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"lacks \['threshold'\]; it is incomplete or corrupted"):
        read_checkpoint(tmp_path / "partial.pt")
