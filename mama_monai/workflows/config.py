"""Workflow configs: MONAI bundle YAML/JSON files plus ``--key value`` overrides.

One config system for the CLI and ``python -m monai.bundle``: a config is read with
:class:`monai.bundle.ConfigParser` (so ``_target_`` components, ``@`` references and ``%``
macros work), overrides use its ``#``-separated ids (``training#iterations 200``), and each
override value is parsed as YAML (``200`` is an int, ``[64, 64]`` a list, ``null`` None).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import os

import yaml
from monai.bundle import ConfigParser

__all__ = ["configs_dir", "load_config", "parse_overrides", "resolved", "workflow_config"]


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["--training#iterations", "200", "--seed", "1"]`` -> ``{"training#iterations": 200, "seed": 1}``."""
    if len(pairs) % 2:
        raise ValueError(f"overrides must come as '--key value' pairs, got {list(pairs)!r}.")
    out: dict[str, Any] = {}
    for key, value in zip(pairs[::2], pairs[1::2]):
        if not key.startswith("--") or len(key) < 3:
            raise ValueError(f"override keys must look like --key (e.g. --training#iterations), got {key!r}.")
        out[key[2:].replace(".", "#")] = yaml.safe_load(value)
    return out


def load_config(path: str | Path | Sequence[str | Path], overrides: dict[str, Any] | None = None) -> ConfigParser:
    """Read one config file (or several, merged in order) and apply overrides.

    Raises:
        ValueError: a missing config file, or an override of a key the config does not have
            (the message names the key and lists the top-level keys).
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    for p in paths:
        if not Path(p).is_file():
            raise ValueError(f"config file {str(p)!r} does not exist.")
    parser = ConfigParser()
    parser.read_config([str(p) for p in paths])
    for key, value in (overrides or {}).items():
        _set_override(parser, key, value)
    return parser


def _set_override(parser: ConfigParser, key: str, value: Any) -> None:
    """Set one override after checking its key (:func:`_check_key`) and its type: where the config
    holds an int (a number of iterations, a batch size, a seed), the value must be an int; where it
    holds a float, a number. A ``$`` expression or ``@`` reference is left to the config."""
    _check_key(parser, key)
    default = parser[key] if key in parser else None
    if not (isinstance(value, str) and value.startswith(("$", "@"))):
        if isinstance(default, int) and not isinstance(default, bool) and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"override --{key}: expected an integer (the config has {default!r}), got {value!r}.")
        if isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"override --{key}: expected a number (the config has {default!r}), got {value!r}.")
    parser[key] = value


def _check_key(parser: ConfigParser, key: str) -> None:
    """An override must name an existing key; new keys are allowed only as arguments of a component
    (``network_def#...``), where a network may take arguments its file does not list."""
    if key in parser:
        return
    parent = key.rsplit("#", 1)[0] if "#" in key else ""
    if parent and parent in parser and key.startswith("network_def#"):
        return
    if parent and parent in parser and isinstance(parser[parent], dict):
        raise ValueError(f"override --{key}: no such key in the config; {parent} has {sorted(parser[parent])}.")
    raise ValueError(f"override --{key}: no such key in the config; top-level keys are {sorted(parser.get())}.")


def resolved(parser: ConfigParser, key: str) -> Any:
    """The value at ``key`` with references and expressions resolved but no component built
    (plain data: safe to store in a checkpoint)."""
    value = parser.get_parsed_content(key, instantiate=False, lazy=False)
    return value.get_config() if hasattr(value, "get_config") else value


def configs_dir() -> Path:
    """The folder of the shipped configs: ``$MAMA_MONAI_CONFIGS``, else the repository's ``configs/``
    (the README installs the project in editable mode, so it is next to the package)."""
    env = os.environ.get("MAMA_MONAI_CONFIGS")
    folder = Path(env) if env else Path(__file__).resolve().parents[2] / "configs"
    if not (folder / "train.yaml").is_file():
        raise ValueError(
            f"configs folder {str(folder)!r} has no train.yaml; install mama-monai from its repository "
            "(pip install -e .) or set MAMA_MONAI_CONFIGS to a folder holding train.yaml and network/."
        )
    return folder


def workflow_config(network: str, config: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ConfigParser:
    """``configs/train.yaml`` (or ``config``) merged with ``configs/network/<network>.yaml``, then
    ``overrides``: the bundle's own order (``python -m monai.bundle run --config_file
    "['configs/train.yaml','configs/network/NAME.yaml']" --KEY VALUE``), so the CLI and the bundle
    resolve every key alike. A network file's training settings (e.g. MemAE's entropy weight) are
    ``+section`` entries merged by MONAI's config loader; the user's overrides always come last.

    Args:
        network: a file name in ``configs/network/`` without ``.yaml`` (``mamanet_compact``,
            ``mamanet_paper``, ``autoencoder``, ``memae``), or a path to a YAML file with ``network_def``.
    """
    folder = configs_dir()
    net_path = Path(network) if network.endswith((".yaml", ".yml", ".json")) else folder / "network" / f"{network}.yaml"
    if not net_path.is_file():
        names = sorted(p.stem for p in (folder / "network").glob("*.yaml"))
        raise ValueError(f"network must be one of {names} or a YAML file with network_def, got {network!r}.")
    return load_config([config or folder / "train.yaml", net_path], overrides)
