"""Networks and losses that remember the literal arguments they were built with.

A model file describes its network as plain data (``{"_target_": "mama_monai.networks.MAMANet",
<arguments>}``, :mod:`mama_monai.engines.stored_config`). The CLI has that description in its
config; a MONAI bundle can hand a component over only *built* (``"@network_def"`` instantiates it,
and an expression has no handle on the parser that runs it). So the classes a model file may name
record the arguments they were called with, and :func:`described` turns a built object back into
its description: the bundle's trainer receives its config sections explicitly, built or not, and
stores the same description as the CLI does.

Only the arguments given are recorded (defaults stay defaults), as the config's raw dict holds them.

Example:
    >>> from mama_monai.networks import ConvAutoEncoder
    >>> described(ConvAutoEncoder(spatial_dims=2, in_channels=1, channels=(8, 16)))
    {'_target_': 'mama_monai.networks.ConvAutoEncoder', 'spatial_dims': 2, 'in_channels': 1, 'channels': [8, 16]}
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
from typing import Any, TypeVar

__all__ = ["INIT_ARGUMENTS", "described", "records_arguments"]

#: the attribute that holds ``{name: value}`` of the arguments given to ``__init__``
INIT_ARGUMENTS = "init_arguments"

T = TypeVar("T", bound=type)


def records_arguments(cls: T) -> T:
    """Class decorator: every instance keeps a deep copy of the arguments its ``__init__`` was given,
    by name, under :data:`INIT_ARGUMENTS` (a subclass's own call, also decorated, wins)."""
    init = cls.__init__
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = signature.bind(self, *args, **kwargs).arguments
        init(self, *args, **kwargs)
        record = {name: copy.deepcopy(value) for name, value in given.items() if name != "self"}
        object.__setattr__(self, INIT_ARGUMENTS, record)  # plain attribute, also on an nn.Module

    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def _public_path(cls: type) -> str:
    """The shortest importable dotted path of ``cls`` (``mama_monai.networks.MAMANet``, not the
    defining module), as the shipped configs write ``_target_``."""
    parts = cls.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = importlib.import_module(".".join(parts[:end]))
        if getattr(module, cls.__qualname__, None) is cls:
            return f"{module.__name__}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def described(obj: Any) -> dict[str, Any]:
    """``{"_target_": <class path>, <the arguments obj was built with>}``.

    Raises:
        TypeError: ``obj``'s class does not record its arguments (:func:`records_arguments`).
    """
    record = getattr(obj, INIT_ARGUMENTS, None)
    if record is None or type(record) is not dict:
        raise TypeError(
            f"a {type(obj).__module__}.{type(obj).__qualname__} does not record the arguments it was built with; "
            "only this package's networks and losses do (mama_monai.networks, mama_monai.losses)."
        )
    return {"_target_": _public_path(type(obj)), **_plain(record)}  # the record is a deep copy already


def _plain(value: Any) -> Any:
    """Tuples as lists, as YAML and JSON hold them; every dict and list new (the caller's own copy)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
