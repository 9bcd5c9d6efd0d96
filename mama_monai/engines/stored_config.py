"""What a model file may hold: plain data, checked field by field before anything uses it.

A model file can come from anywhere (downloaded, shared, crafted), so nothing stored in it is ever
evaluated: no value goes through MONAI's :class:`~monai.bundle.ConfigParser`, whose ``$``
expressions, ``@`` references, ``%`` macros, ``_target_`` and ``_requires_`` run code. Instead:

- ``network_def`` names one of this package's networks (:func:`network_classes`, the classes of
  :mod:`mama_monai.networks.nets`) and holds literal arguments of its ``__init__``
  (:func:`network_spec`);
- ``preprocessing``, ``scoring``, ``threshold`` and ``metrics`` are checked for type, range and
  finiteness (:func:`check_payload`).

Every refusal is a :class:`StoredValueError` naming the key path (``config.network_def.channels[0]``)
and the value; :func:`~mama_monai.engines.checkpoint.read_checkpoint` adds the file name.

Example:
    >>> cls, kwargs = network_spec({"_target_": "mama_monai.networks.ConvAutoEncoder", "spatial_dims": 2, "in_channels": 1})
    >>> cls.__name__, kwargs
    ('ConvAutoEncoder', {'spatial_dims': 2, 'in_channels': 1})
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import torch
import torch.nn as nn

from mama_monai.networks.nets.ensemble import MAX_MEMBERS, MEMBER_NAMES, ReconstructionEnsemble, member_class

__all__ = ["StoredValueError", "check_payload", "check_preprocessing", "network_classes", "network_spec", "plain_value"]

#: keys that MONAI's ConfigParser acts on; never allowed where a network is described
_RESERVED_KEYS = ("_target_", "_requires_", "_mode_", "_disabled_", "_desc_")
#: string prefixes that MONAI's ConfigParser evaluates: expression, reference, macro
_SYNTAX_PREFIXES = ("$", "@", "%")
_MAX_DEPTH = 16
#: a DICOM Modality value (VR CS: upper-case letters, digits, space, underscore; at most 16)
_MODALITY = re.compile(r"[A-Z0-9_ ]{0,16}")
_PAYLOAD_KEYS = ("format", "format_version", "state_dict", "config", "threshold", "metrics", "versions", "created")


class StoredValueError(ValueError):
    """A stored value that a model file may not hold; ``where`` is its key path."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


def plain_value(value: Any, where: str, finite: bool = True, literal: bool = False, depth: int = 0) -> Any:
    """A copy of ``value`` if it is JSON-plain data: dict with string keys, list, str, int, float, bool, None.

    Args:
        value: the stored value.
        where: its key path, for the error message.
        finite: refuse NaN and infinite floats (default True).
        literal: also refuse MONAI config syntax: strings starting with ``$``, ``@`` or ``%`` and the
            keys ``_target_``, ``_requires_``, ``_mode_``, ``_disabled_``, ``_desc_`` (default False).
        depth: nesting level reached so far (at most 16).

    Raises:
        StoredValueError: anything else (tensors, tuples of objects, ...), naming the key path.
    """
    if depth > _MAX_DEPTH:
        raise StoredValueError(where, f"nested more than {_MAX_DEPTH} levels deep; a model file holds flat settings.")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise StoredValueError(where, f"keys must be strings, got {key!r} ({type(key).__name__}).")
            if literal and (key in _RESERVED_KEYS or key.startswith(_SYNTAX_PREFIXES)):
                raise StoredValueError(f"{where}.{key}", _syntax_message(key))
            out[key] = plain_value(item, f"{where}.{key}", finite, literal, depth + 1)
        return out
    if isinstance(value, list):
        return [plain_value(item, f"{where}[{i}]", finite, literal, depth + 1) for i, item in enumerate(value)]
    if type(value) is str:
        if literal and value.startswith(_SYNTAX_PREFIXES):
            raise StoredValueError(where, _syntax_message(value))
        return value
    if value is None or type(value) in (bool, int):
        return value
    if type(value) is float:
        if finite and not math.isfinite(value):
            raise StoredValueError(where, f"must be a finite number, got {value!r}.")
        return value
    raise StoredValueError(
        where, f"must be plain data (dict, list, str, int, float, bool, None), got {type(value).__name__}."
    )


def _syntax_message(text: str) -> str:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return (
        f"{shown!r} is MONAI config syntax ($ expression, @ reference, % macro or a _target_/_requires_/_mode_/"
        "_disabled_/_desc_ key), which runs code; a model file holds literal values only."
    )


def network_classes() -> dict[str, type[nn.Module]]:
    """The networks a model file may name: every ``nn.Module`` class of :mod:`mama_monai.networks.nets`,
    under ``mama_monai.networks.<Name>`` (what training stores), ``mama_monai.networks.nets.<Name>``
    and its defining module's path."""
    import mama_monai.networks.nets as nets

    found: dict[str, type[nn.Module]] = {}
    for name in nets.__all__:
        cls = getattr(nets, name)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            for target in (f"mama_monai.networks.{name}", f"mama_monai.networks.nets.{name}", f"{cls.__module__}.{cls.__qualname__}"):
                found[target] = cls
    return found


def network_spec(network_def: Any, where: str = "config.network_def") -> tuple[type[nn.Module], dict[str, Any]]:
    """The class and the keyword arguments that ``network_def`` describes, checked, nothing built.

    Args:
        network_def: ``{"_target_": "mama_monai.networks.MAMANet", <literal __init__ arguments>}``.
        where: key path for the error messages.

    Raises:
        StoredValueError: not a dict, a ``_target_`` that is not one of :func:`network_classes`, an
            argument the class does not take or a required one missing, or a value that is not a
            literal (:func:`plain_value` with ``literal=True``).
    """
    if not isinstance(network_def, dict):
        raise StoredValueError(where, f"must be a dict with _target_ and the network's arguments, got {type(network_def).__name__}.")
    classes = network_classes()
    target = network_def.get("_target_")
    if type(target) is not str or target not in classes:
        allowed = sorted(t for t in classes if t.count(".") == 2)
        raise StoredValueError(
            f"{where}._target_", f"{target!r} cannot be built: a model file may name only this package's networks {allowed}."
        )
    cls = classes[target]
    kwargs = plain_value({k: v for k, v in network_def.items() if k != "_target_"}, where, literal=True)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(kwargs) - named)
    if unknown:
        raise StoredValueError(f"{where}.{unknown[0]}", f"{cls.__name__} takes no argument {unknown[0]!r}; its arguments are {sorted(named)}.")
    missing = [p.name for p in params if p.name in named and p.default is p.empty and p.name not in kwargs]
    if missing:
        raise StoredValueError(where, f"{cls.__name__} needs the argument(s) {missing}, which the model file lacks.")
    if cls is ReconstructionEnsemble:
        _check_ensemble(kwargs, where)
    return cls, kwargs


def _check_ensemble(kwargs: dict[str, Any], where: str) -> None:
    """An ensemble's members are checked as a network_def of their own (one of this package's
    networks, literal arguments it takes), are not ensembles, and number 1 to MAX_MEMBERS."""
    members = kwargs["members"]
    if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= MAX_MEMBERS:
        raise StoredValueError(f"{where}.members", f"must be an int in [1, {MAX_MEMBERS}] (networks in the ensemble), got {members!r}.")
    args = kwargs["network_args"]
    if not isinstance(args, dict):
        raise StoredValueError(f"{where}.network_args", f"must be a dict of the members' arguments, got {type(args).__name__}.")
    try:  # the ensemble's own allow-list: what passes here is what ReconstructionEnsemble builds
        member = member_class(kwargs["network"])
    except ValueError:
        raise StoredValueError(f"{where}.network", f"{kwargs['network']!r} cannot be an ensemble's member; it may name {MEMBER_NAMES}.") from None
    network_spec({"_target_": f"mama_monai.networks.{member.__name__}", **args}, f"{where}.network_args")


def check_preprocessing(pre: Any, where: str = "config.preprocessing") -> dict[str, Any]:
    """A checked copy of the stored ``preprocessing``: ``preset`` one of
    :func:`~mama_monai.data.presets.list_presets`, ``spatial_size`` two positive ints, ``modality``
    null or a DICOM Modality, ``crop_to_body`` a bool, ``crop_rule`` a key of
    :data:`~mama_monai.data.body_crop.CROP_RULES`; other keys (the training ``data`` section) plain
    data, never used.

    Raises:
        StoredValueError: naming the key path and the value.
    """
    from mama_monai.data.body_crop import CROP_RULES
    from mama_monai.data.presets import list_presets

    if not isinstance(pre, dict):
        raise StoredValueError(where, f"must be a dict with preset, spatial_size and modality, got {type(pre).__name__}.")
    out = plain_value(pre, where, finite=False)
    for key in ("preset", "spatial_size"):
        if key not in out:
            raise StoredValueError(where, f"lacks {key!r}; it has {sorted(out)}.")
    names = list_presets()
    if out["preset"] not in names:
        raise StoredValueError(f"{where}.preset", f"must be one of the presets {names}, got {out['preset']!r}.")
    size = out["spatial_size"]
    if not isinstance(size, list) or len(size) != 2 or not all(type(s) is int and s > 0 for s in size):
        raise StoredValueError(f"{where}.spatial_size", f"must be two positive ints [H, W], got {size!r}.")
    modality = out.get("modality")
    if modality is not None and (type(modality) is not str or not _MODALITY.fullmatch(modality.upper())):
        raise StoredValueError(
            f"{where}.modality", f"must be null or a DICOM Modality (letters, digits, '_', ' '; at most 16), got {modality!r}."
        )
    if "crop_to_body" in out and not isinstance(out["crop_to_body"], bool):
        raise StoredValueError(f"{where}.crop_to_body", f"must be true or false, got {out['crop_to_body']!r}.")
    if "crop_rule" in out and (type(out["crop_rule"]) is not int or out["crop_rule"] not in CROP_RULES):
        raise StoredValueError(f"{where}.crop_rule", f"must be one of {sorted(CROP_RULES)}, got {out['crop_rule']!r}.")
    return out


def _check_scoring(scoring: Any, where: str) -> dict[str, Any]:
    from mama_monai.engines.anomaly_map import AnomalyMap

    if not isinstance(scoring, dict):
        raise StoredValueError(where, f"must be a dict of AnomalyMap arguments, got {type(scoring).__name__}.")
    out = plain_value(scoring, where, literal=True)
    try:
        AnomalyMap(2, **out)  # its own checks decide which settings are valid
    except (TypeError, ValueError) as err:
        raise StoredValueError(where, f"{out!r} is not a valid AnomalyMap setting: {err}") from None
    return out


def _check_threshold(threshold: Any, where: str) -> dict[str, Any]:
    if not isinstance(threshold, dict):
        raise StoredValueError(where, f"must be a dict with a finite 'value', got {type(threshold).__name__}.")
    out = plain_value(threshold, where)  # every number finite
    value = out.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StoredValueError(f"{where}.value", f"must be a finite number, got {value!r}.")
    out["value"] = float(value)
    return out


def _check_config(config: Any, where: str = "config") -> dict[str, Any]:
    if not isinstance(config, dict):
        raise StoredValueError(where, f"must be a dict, got {type(config).__name__}.")
    for key in ("network_def", "preprocessing", "scoring"):
        if key not in config:
            raise StoredValueError(where, f"lacks {key!r}; it has {sorted(config)}.")
    out = plain_value(config, where, finite=False)  # loss, training, ...: kept as data, never built
    network_spec(config["network_def"], f"{where}.network_def")
    out["preprocessing"] = check_preprocessing(config["preprocessing"], f"{where}.preprocessing")
    out["scoring"] = _check_scoring(config["scoring"], f"{where}.scoring")
    return out


def check_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A checked copy of a loaded model file's contents (the dict that ``torch.load`` returned).

    Checks ``state_dict`` (string keys, tensors), ``config`` (``network_def`` by :func:`network_spec`,
    ``preprocessing``: a known preset, two positive ints, a DICOM Modality or null; ``scoring``: the
    arguments of :class:`~mama_monai.engines.AnomalyMap`, which checks them), ``threshold`` (a
    finite ``value``; every number finite), ``metrics`` (plain data), ``versions`` and ``created``.

    Raises:
        StoredValueError: the first value that fails, naming its key path.
    """
    unknown = sorted(str(k) for k in payload if k not in _PAYLOAD_KEYS)
    if unknown:
        raise StoredValueError(unknown[0], f"is not a key of a mama-monai model file ({list(_PAYLOAD_KEYS)}).")
    version = payload["format_version"]
    if type(version) is not int or version < 1:
        raise StoredValueError("format_version", f"must be an int >= 1, got {version!r}.")
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(type(k) is str and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise StoredValueError("state_dict", "must map parameter names to tensors.")
    versions = plain_value(payload["versions"], "versions")
    if not isinstance(versions, dict) or not all(type(v) is str for v in versions.values()):
        raise StoredValueError("versions", f"must map package names to version strings, got {payload['versions']!r}.")
    out = dict(payload, versions=versions, config=_check_config(payload["config"]))
    out["threshold"] = _check_threshold(payload["threshold"], "threshold")
    out["metrics"] = plain_value(payload.get("metrics", {}), "metrics", finite=False)
    if not isinstance(out["metrics"], dict):
        raise StoredValueError("metrics", f"must be a dict, got {type(out['metrics']).__name__}.")
    if type(payload.get("created", "")) is not str:
        raise StoredValueError("created", f"must be a date string, got {payload['created']!r}.")
    return out
