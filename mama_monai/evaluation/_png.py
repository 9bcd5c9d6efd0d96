"""Atomic PNG writing for matplotlib figures (private).

The figures of this package are built with the object-oriented API (``matplotlib.figure.Figure``),
never with ``pyplot``: no global backend is switched and no figure is registered with an
interactive session, so the functions work headless and leave an interactive user's backend alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from mama_monai.atomic import atomic_write

__all__ = ["new_figure", "save_png_atomic"]


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure of ``width`` x ``height`` inches (garbage-collected when dropped)."""
    return Figure(figsize=(width, height), layout="constrained")


def save_png_atomic(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically: temporary file in the same folder, then ``os.replace``.

    An interrupted or failed write removes the temporary file and leaves ``path`` untouched (absent,
    or the previous complete file). The parent folder is created. An existing file at ``path`` is
    replaced: the overwrite policy belongs to the caller.

    Args:
        fig: the figure to save; it is cleared afterwards.
        path: target, must end in ``.png``.
        dpi: resolution (default 100).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path must end in .png, got {str(path)!r}.")
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    finally:
        fig.clear()
