"""The model-zoo components of the bundle's configs, for tools that drive a bundle through MONAI's
workflow API (``monai.bundle.ConfigWorkflow`` / ``create_workflow``, MONAI Label, MONAI FL, MONAI
Deploy's bundle operator): the properties of ``monai.bundle.properties.InferProperties`` and
``TrainProperties`` that :mod:`mama_monai.workflows.bundle`'s runners do not define themselves.

``configs/inference.yaml``:

- ``network_def`` -- :func:`model_network`: the network stored in the model file at ``ckpt_path``
  with its weights (``weights_only=True``, no code from the file), or, when there is no model file
  yet, the CLI's default network (``configs/network/mamanet_compact.yaml``) untrained;
- ``preprocessing`` -- :class:`ModelPreprocessing`: path -> the image loaded and preprocessed as
  training did (the model file's preset, reader and size), ``(C, W, H[, D])``, canonical orientation;
- ``dataset`` -- a ``monai.data.Dataset`` over :func:`input_items` (``{"image": path}`` per DICOM
  series folder / image file under ``dataset_dir``) with ``preprocessing`` as its transform;
- ``inferer`` -- :class:`SlicewiseInferer`: the 2D network over every axial slice (the last axis);
- ``postprocessing`` -- :class:`ModelPostprocessing`: image + reconstruction -> ``map`` (the model's
  :class:`~mama_monai.engines.anomaly_map.AnomalyMap`) and ``slice_scores``.

Chained (``dataset[i]`` -> ``inferer`` -> ``postprocessing``) they compute the slice scores that
``mama-monai score`` reports (tested); the ``evaluator`` itself runs
:func:`~mama_monai.workflows.scoring.score_cases`, which also writes maps on the input's grid,
overlays and reports. Everything that needs the model file reads it on first use, so a workflow's
``check_properties()`` builds every component without one.

``configs/train.yaml``: ``train#dataset`` is :class:`TrainingSlices` (the normal training slices of
``data``, split as the CLI splits them, loaded on first use).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

import torch
from monai.bundle import ConfigParser
from monai.inferers import Inferer

from mama_monai.evaluation.case_score import SliceCoverage, body_fractions

__all__ = ["ModelPostprocessing", "ModelPreprocessing", "SlicewiseInferer", "TrainingSlices", "input_items", "model_network"]

logger = logging.getLogger(__name__)


def _model(ckpt_path: str | os.PathLike, device: str | torch.device = "cpu"):
    """``(network, spec)`` of the model file (:class:`~mama_monai.engines.model_spec.ModelSpec`)."""
    from mama_monai.workflows.bundle import _load_checkpoint

    return _load_checkpoint(ckpt_path, torch.device(device))


def model_network(ckpt_path: str | os.PathLike | None, default_network: str = "mamanet_compact") -> torch.nn.Module:
    """``network_def`` of the inference config: the model file's network with its weights, in eval
    mode; without a model file at ``ckpt_path``, ``configs/network/<default_network>.yaml``'s
    ``network_def`` (the CLI's default), untrained.

    Raises:
        BundleConfigError: ``ckpt_path`` exists but is not a usable model file (names the key and path).
    """
    if ckpt_path is not None and Path(ckpt_path).is_file():
        return _model(ckpt_path)[0]
    from mama_monai.workflows.config import configs_dir

    logger.warning("ckpt_path %r: no model file; network_def is the untrained default %r", str(ckpt_path), default_network)
    parser = ConfigParser()
    parser.read_config(str(configs_dir() / "network" / f"{default_network}.yaml"))
    return parser.get_parsed_content("network_def")


def input_items(dataset_dir: str | os.PathLike | None) -> list[dict[str, str]]:
    """``dataset#data``: ``{"image": path}`` for every input under ``dataset_dir``
    (:func:`~mama_monai.workflows.bundle.bundle_inputs`); ``[]`` while ``dataset_dir`` is null (the
    evaluator refuses to run then, naming the key)."""
    from mama_monai.workflows.bundle import bundle_inputs

    return [] if dataset_dir is None else [{"image": p} for p in bundle_inputs(dataset_dir)]


class ModelPreprocessing:
    """``preprocessing``: ``{"image": path}`` -> the image as the model file's training preprocessed it.

    The preset (reader, intensity window, in-plane resize) and ``spatial_size`` come from the model
    file at ``ckpt_path``, read on the first call; ``image`` becomes a ``MetaTensor`` ``(C, W, H[, D])``
    in canonical (LPS) orientation, the slices along the last axis.
    """

    def __init__(self, ckpt_path: str | os.PathLike) -> None:
        self.ckpt_path = ckpt_path
        self._preprocess: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        if self._preprocess is None:  # the Preprocessor training and ``score`` use
            self._preprocess = _model(self.ckpt_path)[1].preprocessor()
        return self._preprocess(data)


class SlicewiseInferer(Inferer):
    """``inferer``: a 2D network over each slice of the last axis, ``sw_batch_size`` slices at a time.

    ``inputs`` ``(B, C, W, H)`` go through the network as they are; ``(B, C, W, H, D)`` slice by
    slice. Returns the reconstruction, the shape of ``inputs``.

    Args:
        sw_batch_size: slices per forward pass (default 16, as ``mama-monai score``).
    """

    def __init__(self, sw_batch_size: int = 16) -> None:
        if isinstance(sw_batch_size, bool) or not isinstance(sw_batch_size, int) or sw_batch_size < 1:
            raise ValueError(f"sw_batch_size must be a positive int, got {sw_batch_size!r}.")
        super().__init__()
        self.sw_batch_size = sw_batch_size

    def __call__(self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any) -> torch.Tensor:
        if inputs.ndim == 4:
            return network(inputs, *args, **kwargs)
        if inputs.ndim != 5:
            raise ValueError(f"inputs must be (B, C, W, H) or (B, C, W, H, D), got shape {tuple(inputs.shape)}.")
        b, c, w, h, d = inputs.shape
        slices = inputs.permute(0, 4, 1, 2, 3).reshape(b * d, c, w, h)
        out = torch.cat([network(slices[i : i + self.sw_batch_size], *args, **kwargs) for i in range(0, b * d, self.sw_batch_size)])
        return out.reshape(b, d, *out.shape[1:]).permute(0, 2, 3, 4, 1)


class ModelPostprocessing:
    """``postprocessing``: ``{"image", "pred"}`` (one case, ``(C, W, H[, D])``) -> adds ``map``
    (``(1, W, H[, D])``, the model file's AnomalyMap), ``slice_scores`` (one per slice of the last
    axis), ``slice_counted`` (whether each slice counts toward the case score) and ``score`` (the
    case score), as ``mama-monai score`` computes them (:mod:`mama_monai.evaluation.case_score`)."""

    def __init__(self, ckpt_path: str | os.PathLike) -> None:
        self.ckpt_path = ckpt_path
        self._anomaly = None
        self._coverage = None

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        if self._anomaly is None:
            spec = _model(self.ckpt_path)[1]
            self._anomaly, self._coverage = spec.anomaly_map(), SliceCoverage.from_threshold(spec.threshold_entry)
        image, pred = torch.as_tensor(data["image"]).float(), torch.as_tensor(data["pred"]).float()
        if image.ndim == 3:
            image, pred = image[..., None], pred[..., None]
        x, r = image.permute(3, 0, 1, 2), pred.permute(3, 0, 1, 2)  # (D, C, W, H)
        maps = self._anomaly.to(x.device).map(x, r)
        scores = self._anomaly.score(maps)
        volume = maps.permute(1, 2, 3, 0)  # (1, W, H, D)
        out = dict(data)
        out["map"] = volume[..., 0] if torch.as_tensor(data["image"]).ndim == 3 else volume
        out["slice_scores"] = scores
        case = self._coverage.case_score(scores.cpu().numpy(), body_fractions(maps.cpu().numpy()))
        out["slice_counted"] = torch.as_tensor(case.counted)
        out["score"] = case.score
        return out


class TrainingSlices(torch.utils.data.Dataset):
    """``train#dataset``: the normal training slices of the config's ``data`` section, split as
    ``mama-monai train`` splits them (:func:`~mama_monai.workflows.splits.prepare_splits`; the
    validation hold-out is :attr:`splits`' ``val``), loaded on first use.

    Args:
        config: the ``seed`` and ``data`` sections, handed over by reference in ``train.yaml``
            (:func:`~mama_monai.workflows.bundle.sections_parser`); or a parser holding them.
    """

    def __init__(self, config: dict[str, Any] | ConfigParser) -> None:
        from mama_monai.workflows.bundle import sections_parser

        self._parser = config if isinstance(config, ConfigParser) else sections_parser(config, "train#dataset#config")
        self._splits: dict[str, Any] | None = None

    def splits(self, parser: ConfigParser | None = None) -> dict[str, Any]:
        """``prepare_splits`` of ``parser`` (default the one given at construction), computed once."""
        if self._splits is None:
            from mama_monai.workflows.splits import prepare_splits

            self._splits = prepare_splits(self._parser if parser is None else parser)
        return self._splits

    def __len__(self) -> int:
        return len(self.splits()["train"])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.splits()["train"][index]
