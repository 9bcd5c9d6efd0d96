"""Which checkpoint ``train --resume`` continues from: the newest one that can be read.

Training keeps the two newest ``last_*.pt`` checkpoints in ``OUTPUT/checkpoints`` (ignite's
``Checkpoint`` with ``n_saved=2``, written atomically). A file cut short anyway (a copy interrupted,
a disk that filled up outside the atomic write, a broken file system) used to stop ``--resume``
with ignite's traceback. :func:`set_aside_unreadable` loads the newest checkpoints one by one,
moves each that cannot be read to ``<name>.unreadable`` (kept, never deleted), says so naming the
file, and leaves the newest readable one as the newest ``last_*.pt``: the one training resumes from.

Example:
    >>> set_aside_unreadable("runs/a/checkpoints")  # doctest: +SKIP
    PosixPath('runs/a/checkpoints/last_checkpoint_epoch=2.pt')
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

__all__ = ["UNREADABLE_SUFFIX", "set_aside_unreadable"]

logger = logging.getLogger(__name__)

#: appended to the name of a checkpoint that cannot be read
UNREADABLE_SUFFIX = ".unreadable"


def _readable(path: Path) -> str | None:
    """``None`` when ``torch.load`` reads ``path`` (``weights_only=True``), else why not, in one line."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, empty file, not a torch file
        first = (str(err).splitlines() or [""])[0]
        return f"{type(err).__name__}: {first}" if first else type(err).__name__
    return None


def set_aside_unreadable(folder: str | os.PathLike, prefix: str = "last") -> Path | None:
    """Move the newest unreadable ``<prefix>_*.pt`` checkpoints aside; return the newest readable one.

    The newest is the most recently modified, as training chooses it.

    Args:
        folder: the run's ``checkpoints`` folder.
        prefix: the checkpoints' file name prefix (default ``"last"``).

    Returns:
        The checkpoint training will resume from, or ``None`` when the folder holds none.

    Raises:
        ValueError: checkpoints exist but none can be read (each named, with the reason).
    """
    folder = Path(folder)
    found = sorted(folder.glob(f"{prefix}_*.pt"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    bad = []
    while found:
        newest = found.pop()
        reason = _readable(newest)
        if reason is None:
            if bad:
                logger.warning("--resume: resuming from the previous checkpoint, %s", newest)
            return newest
        aside = newest.with_name(newest.name + UNREADABLE_SUFFIX)
        os.replace(newest, aside)
        bad.append(f"{str(newest)!r} ({reason})")
        logger.warning(
            "--resume: checkpoint %s cannot be read, it is truncated or corrupted (%s); set aside as %s",
            newest, reason, aside.name,
        )  # fmt: skip
    if bad:
        raise ValueError(
            f"--resume: no readable checkpoint in {str(folder)!r}: {'; '.join(bad)} cannot be read "
            f"(set aside with the suffix {UNREADABLE_SUFFIX!r}); start a new run or pass --overwrite."
        )
    return None
