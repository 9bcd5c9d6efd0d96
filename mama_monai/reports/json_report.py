"""Strict JSON reports (``report.json``, ``cv_report.json``), written atomically.

NaN and infinity, which ``json`` would write as invalid tokens, become ``null``; the file
appears only when complete (:func:`~mama_monai.atomic.atomic_write`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from mama_monai.atomic import atomic_write

__all__ = ["write_json"]


def _clean(value: Any) -> Any:
    """NaN/inf -> None, so the report is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(data: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``data`` as strict JSON (indent 2) to ``path`` atomically; returns the path."""
    text = json.dumps(_clean(data), indent=2, allow_nan=False)
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
