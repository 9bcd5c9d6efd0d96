"""The model file as a typed, checked spec: what scoring a new scan needs, and where it came from.

A model file (:mod:`mama_monai.engines.checkpoint`) is plain data checked on load
(:mod:`mama_monai.engines.stored_config`). :class:`ModelSpec` is that data with names and types,
so that ``score``, ``evaluate``, the bundle and ``export`` read ``spec.threshold`` or
``spec.preprocessor()`` instead of ``payload["config"]["preprocessing"]["preset"]``:

- inference: the network (:meth:`ModelSpec.network`), the preprocessing (``preset``,
  ``spatial_size``, ``modality``; :meth:`ModelSpec.preprocessor`), the anomaly map
  (:meth:`ModelSpec.anomaly_map`) and the decision threshold (``threshold``, calibrated on
  validation normals; the whole calibration entry in ``threshold_entry``);
- provenance: the training manifest and fold (``trained_on``), metrics, versions and date.

Everything else the training config held (cache folder, worker count, loss, schedule) stays in
the file as a record but is not part of the spec: nothing here depends on it.

Example:
    >>> network, spec = load_model_spec("runs/ct/model.pt")  # doctest: +SKIP
    >>> spec.preset, spec.spatial_size, spec.threshold  # doctest: +SKIP
    ('ct_lung', (64, 64), 0.0123)
"""

from __future__ import annotations

import copy
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from mama_monai.data.body_crop import crops_under
from mama_monai.engines.anomaly_map import AnomalyMap
from mama_monai.engines.checkpoint import load_model

__all__ = ["ModelSpec", "TrainingSplit", "load_model_spec"]


@dataclass(frozen=True)
class TrainingSplit:
    """The manifest (None: the embedded LIDC-IDRI-0001 demo) and fold a model was trained with."""

    manifest: str | None
    fold: int | None


def _frozen(value: Any) -> Any:
    """A private deep copy of plain data (JSON-ready; the spec never shares the payload's dicts)."""
    return copy.deepcopy(value)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelSpec:
    """What a checked model file says (see the module docstring). Build with :func:`load_model_spec`
    or :meth:`from_payload`. Fields cannot be reassigned; the mappings are the spec's own copies
    (plain dicts, JSON-ready for reports)."""

    path: Path
    network_def: Mapping[str, Any]
    preset: str
    spatial_size: tuple[int, int]
    modality: str | None
    crop_to_body: bool
    scoring: Mapping[str, Any]
    threshold: float
    threshold_method: str
    threshold_entry: Mapping[str, Any]
    trained_on: TrainingSplit | None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    created: str = ""
    sha256: str = ""

    @classmethod
    def from_payload(cls, path: str | os.PathLike, payload: dict[str, Any]) -> ModelSpec:
        """The spec of a payload checked by :func:`~mama_monai.engines.checkpoint.read_checkpoint`."""
        path = Path(path)
        config, threshold = payload["config"], payload["threshold"]
        pre = config["preprocessing"]
        trained_on = TrainingSplit(pre["manifest"], pre.get("fold")) if "manifest" in pre else None
        return cls(
            path=path,
            network_def=_frozen(config["network_def"]),
            preset=str(pre["preset"]),
            spatial_size=(int(pre["spatial_size"][0]), int(pre["spatial_size"][1])),
            modality=None if pre.get("modality") is None else str(pre["modality"]),
            # absent: written before the crop existed; an MR preset crops only in files of crop rule 2 on
            crop_to_body=bool(pre.get("crop_to_body", False)) and crops_under(int(pre.get("crop_rule", 1)), str(pre["preset"])),
            scoring=_frozen(config["scoring"]),
            threshold=float(threshold["value"]),
            threshold_method=str(threshold.get("method", "unknown")),
            threshold_entry=_frozen(threshold),
            trained_on=trained_on,
            metrics=_frozen(payload.get("metrics", {})),
            versions=_frozen(payload.get("versions", {})),
            created=str(payload.get("created", "")),
            sha256=_sha256(path) if path.is_file() else "",
        )

    @property
    def in_channels(self) -> int:
        """The network's input channels (1 unless its ``network_def`` says otherwise)."""
        return int(self.network_def.get("in_channels", 1))

    def anomaly_map(self, spatial_dims: int = 2) -> AnomalyMap:
        """The :class:`~mama_monai.engines.AnomalyMap` the threshold was calibrated with."""
        return AnomalyMap(spatial_dims, **dict(self.scoring))

    def preprocessor(self):
        """The :class:`~mama_monai.data.preprocessing.Preprocessor` training used."""
        from mama_monai.data.preprocessing import Preprocessor

        return Preprocessor(self.preset, self.spatial_size, self.crop_to_body)

    def data_overrides(self) -> dict[str, Any]:
        """``data#preset``, ``data#spatial_size`` and ``data#modality`` as config overrides (the crop
        to the body is passed to the loader itself, :func:`~mama_monai.workflows.splits.load_test_split`,
        so that a config without ``data#crop_to_body`` still takes the model's)."""
        return {"data#preset": self.preset, "data#spatial_size": list(self.spatial_size), "data#modality": self.modality}

    def network(self, device: str | torch.device = "cpu") -> nn.Module:
        """The network rebuilt from the file (allow-listed, weights checked), in eval mode."""
        return load_model(self.path, device)[0]


def load_model_spec(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelSpec]:
    """``(network, spec)`` of a model file: the network as :func:`~mama_monai.engines.checkpoint.load_model`
    builds it (eval mode, on ``device``) and the typed :class:`ModelSpec` of the same, checked, file.

    Raises:
        CheckpointError: as :func:`~mama_monai.engines.checkpoint.load_model`.
    """
    network, payload = load_model(path, device)
    return network, ModelSpec.from_payload(path, payload)
