"""Atomic file writes: nothing is ever half-written.

Every output of mama-monai (model files, reports, manifests, figures, anomaly maps) goes through
:func:`atomic_write`: the content is written to a temporary file in the target's folder, which is
then renamed onto the target (``os.replace``, atomic on POSIX). An interrupted or failed write
removes the temporary file and leaves the target untouched — absent, or the previous complete file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(file)`` on a temporary binary file beside ``path``, then rename it to ``path``.

    The parent folder is created; the file gets the usual permissions (``0o666`` minus the umask,
    not ``mkstemp``'s ``0o600``). An existing ``path`` is replaced: the overwrite policy belongs to
    the caller.

    Example::

        >>> atomic_write(tmp_dir / "report.json", lambda f: f.write(b"{}"))  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
