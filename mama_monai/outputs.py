"""Output locations: one writer at a time, nothing replaced without asking, no stale temporaries.

Every command that writes (``score``, ``train``, ``evaluate``, ``demo``, ``cv``, ``convert``,
``manifest``) holds :func:`lock_output` on its output while it runs:

- **one writer**: an exclusive, non-blocking ``fcntl.flock`` on a lock file — ``OUT/.mama-monai.lock``
  for an output folder, ``.<name>.mama-monai.lock`` beside an output file. A second run into the same
  output is refused at once with :class:`OutputLockedError` naming it. The lock file is removed when
  the run ends, and a folder the run created and left empty (a refused run) is removed too.
- **no stale temporaries**: a killed run can leave the temporary files of
  :func:`~mama_monai.atomic.atomic_write` (``.<name>.<8 chars>.tmp``) and of ignite's checkpoint
  saver (``checkpoints/tmp<8 chars>``); no run can be writing them while the lock is held, so they
  are removed when it is taken (sub-folders locked by another run are left alone).
- **no link followed**: while the lock is held, :func:`~mama_monai.atomic.atomic_write` writes below
  the locked folder without following any symbolic link inside it (:func:`held_root`).

Replacing results is a separate, explicit decision: :func:`refuse_to_replace` raises
:class:`OutputExistsError` with the one wording every command uses, unless ``--overwrite``.

Example:
    >>> with lock_output("scores"):  # doctest: +SKIP
    ...     refuse_to_replace("scores", existing_results("scores"), overwrite=False)
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "LOCK_NAME",
    "OutputExistsError",
    "OutputLockedError",
    "existing_results",
    "held_root",
    "lock_output",
    "refuse_to_replace",
    "remove_stale_temporaries",
]

logger = logging.getLogger(__name__)

#: name of the lock file inside a locked output folder
LOCK_NAME = ".mama-monai.lock"
_ATOMIC_TMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # atomic_write's (and mkstemp's) temporaries
_IGNITE_TMP = re.compile(r"^tmp[a-z0-9_]{8}$")  # ignite DiskSaver(atomic=True), in checkpoints/
_HELD: dict[str, list] = {}  # lock file -> [fd, count, root]: locks held by this process (re-entrant)


class OutputExistsError(FileExistsError):
    """The output already holds results, and ``--overwrite`` (``overwrite=True``) was not given."""


class OutputLockedError(RuntimeError):
    """Another run is writing into the same output right now."""


def _is_own_file(name: str) -> bool:
    return name == LOCK_NAME or name.endswith(".mama-monai.lock") or bool(_ATOMIC_TMP.match(name))


def existing_results(folder: str | os.PathLike, names: Sequence[str] | None = None) -> list[str]:
    """What in ``folder`` counts as results: the entries among ``names`` that exist, or (``names``
    ``None``) every entry but lock files and temporaries. ``[]`` for a missing folder.

    Args:
        folder: an output folder.
        names: the result files / sub-folders of the command (e.g. ``["model.pt", "checkpoints"]``);
            default ``None``: anything in the folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    if names is not None:
        return [n for n in names if os.path.lexists(folder / n) and not _empty_dir(folder / n)]
    return sorted(p.name for p in folder.iterdir() if not _is_own_file(p.name))


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not existing_results(path)


def refuse_to_replace(target: str | os.PathLike, existing: Sequence[str], overwrite: bool, hint: str = "") -> None:
    """Raise :class:`OutputExistsError` when ``existing`` is not empty and ``overwrite`` is False.

    The one wording of every command: ``output 'X' already holds results (a, b); pass --overwrite
    to replace them, or choose another output.``

    Args:
        target: the output folder or file.
        existing: what is there (:func:`existing_results`, or ``[name]`` for an existing file).
        overwrite: the command's ``--overwrite``.
        hint: a further choice, appended (e.g. ``"--resume to continue its training"``).
    """
    if overwrite or not existing:
        return
    shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
    extra = f", {hint}" if hint else ""
    raise OutputExistsError(
        f"output {str(target)!r} already holds results ({shown}); pass --overwrite to replace them{extra}, "
        "or choose another output."
    )


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed run left under ``folder`` (module docstring).

    Only call it while holding the folder's lock. Links are not followed; a sub-folder holding a
    lock file (another run's output) is not entered.

    Returns:
        The files removed.
    """
    removed = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not os.path.lexists(os.path.join(root, d, LOCK_NAME))]
        in_checkpoints = os.path.basename(root) == "checkpoints"
        for name in files:
            if _ATOMIC_TMP.match(name) or (in_checkpoints and _IGNITE_TMP.match(name)):
                path = Path(root) / name
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                removed.append(path)
    if removed:
        logger.info("removed %d temporary file(s) left by an interrupted run in %s", len(removed), folder)
    return removed


def held_root(path: str | os.PathLike) -> Path | None:
    """The innermost output folder locked by this process that contains ``path`` (lexically,
    as an absolute path), or ``None``."""
    target = os.path.abspath(path)
    roots = [entry[2] for entry in _HELD.values() if entry[2] is not None]
    inside = [r for r in roots if target == str(r) or target.startswith(str(r).rstrip(os.sep) + os.sep)]
    return max(inside, key=lambda r: len(str(r)), default=None)


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return the ones created, outermost first."""
    created = []
    for parent in reversed([folder, *folder.parents]):
        if not os.path.lexists(parent):
            try:
                parent.mkdir()
                created.append(parent)
            except FileExistsError:
                pass
    if not folder.is_dir():
        raise NotADirectoryError(f"output {str(folder)!r} exists and is not a folder; choose another output.")
    return created


def _acquire(lock_file: Path, shown: Path) -> int:
    """Open ``lock_file`` (never through a link) and take the exclusive lock, or raise."""
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(
                f"output {str(shown)!r} is in use by another mama-monai run (lock held on {str(lock_file)!r}); "
                "wait for it to finish or choose another output."
            ) from None
        try:
            same = os.stat(lock_file, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:  # the previous holder removed it as we opened it
            same = False
        if same:
            return fd
        os.close(fd)


@contextmanager
def lock_output(path: str | os.PathLike, kind: str = "folder") -> Iterator[Path]:
    """Hold the exclusive lock on an output folder (created when missing) or output file.

    Re-entrant within a process (a nested lock on the same output is a no-op). Stale temporaries
    are removed once the lock is taken (:func:`remove_stale_temporaries`). An output file whose
    folder does not exist is not locked (its command refuses it, or creates the folder).

    Args:
        path: the output folder, or the output file with ``kind="file"``.
        kind: ``"folder"`` (default) or ``"file"``.

    Yields:
        ``path`` as a ``Path``.

    Raises:
        OutputLockedError: another run holds the lock (the message names the output).
        NotADirectoryError: a folder output that exists as a file.
    """
    if kind not in ("folder", "file"):
        raise ValueError(f"kind must be 'folder' or 'file', got {kind!r}.")
    path = Path(path)
    folder = path if kind == "folder" else path.parent
    if kind == "file" and not folder.is_dir():  # the command refuses it or creates it: nothing to lock yet
        yield path
        return
    created = _make_folder(folder)
    lock_file = folder / (LOCK_NAME if kind == "folder" else f".{path.name}.mama-monai.lock")
    key = os.path.abspath(lock_file)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield path
        finally:
            _HELD[key][1] -= 1
        return
    try:
        fd = _acquire(lock_file, path)
    except BaseException:
        _remove_empty(created)
        raise
    _HELD[key] = [fd, 1, Path(os.path.abspath(folder)) if kind == "folder" else None]
    try:
        if kind == "folder":
            remove_stale_temporaries(folder)
        else:
            for stale in folder.glob(f".{path.name}.*.tmp"):
                if _ATOMIC_TMP.match(stale.name):
                    stale.unlink(missing_ok=True)
        yield path
    finally:
        del _HELD[key]
        try:
            os.unlink(lock_file)
        except FileNotFoundError:
            pass
        os.close(fd)
        _remove_empty(created)


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders this run created if they are still empty (innermost first)."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return
