"""Atomic file writes: nothing is ever half-written, and no link inside an output folder is followed.

Every output of mama-monai (model files, reports, manifests, figures, anomaly maps) goes through
:func:`atomic_write`: the content is written to a temporary file ``.<name>.<8 chars>.tmp`` in the
target's folder, which is then renamed onto the target (``os.replace``, atomic on POSIX). An
interrupted or failed write removes the temporary file and leaves the target untouched — absent,
or the previous complete file. (A killed process cannot remove it: the next run into that output
does, :func:`mama_monai.outputs.remove_stale_temporaries`.)

Links: the rename replaces the target's name itself, so a symbolic link at the target is replaced
by the new file and its destination is never written. Below an output root (``root``; by default
the output folder this run has locked, :func:`mama_monai.outputs.held_root`) every folder is
opened relative to its parent without following links: a link there is refused with
:class:`UnsafeOutputError` naming it. The root itself may be a link (the user chose it).

A full disk (``ENOSPC``, ``EDQUOT``) raises :class:`DiskFullError` naming the file being written.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO

from mama_monai.outputs import held_root

__all__ = ["DiskFullError", "UnsafeOutputError", "atomic_write"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FULL = (errno.ENOSPC, errno.EDQUOT)
_MIN_FREE = 1 << 20  # bytes: below this, a failed write is reported as a full disk


class DiskFullError(OSError):
    """No space left on the device (or quota exceeded) while writing ``filename``."""

    def __init__(self, path: str | os.PathLike, err_no: int = errno.ENOSPC) -> None:
        super().__init__(err_no, "no space left on device", str(path))

    def __str__(self) -> str:
        return (
            f"cannot write {self.filename!r}: the disk is full (no space left on device); "
            "free some space or choose another output."
        )


class UnsafeOutputError(ValueError):
    """A symbolic link (or a file) where a folder of the output should be."""


def _open_parent(path: Path, root: Path | None) -> int:
    """A descriptor of ``path``'s folder, created when missing; below ``root`` no link is followed."""
    parent = Path(os.path.abspath(path.parent))
    root = Path(os.path.abspath(root)) if root is not None else None
    if root is None or (parent != root and root not in parent.parents):
        parent.mkdir(parents=True, exist_ok=True)
        return os.open(parent, _DIR_FLAGS)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, _DIR_FLAGS)
    where = root
    for part in parent.relative_to(root).parts:
        where = where / part
        with suppress(FileExistsError):
            os.mkdir(part, 0o777, dir_fd=fd)
        try:
            child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as err:
            is_link = err.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(
                os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
            )
            os.close(fd)
            if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            what = "a symbolic link" if is_link else "not a folder"
            raise UnsafeOutputError(
                f"refusing to write {str(path)!r}: {str(where)!r} is {what} inside the output {str(root)!r}; "
                "links inside an output are never followed. Remove it or choose another output."
            ) from None
        os.close(fd)
        fd = child
    return fd


def _write_in(dir_fd: int, path: Path, write: Callable[[IO[bytes]], object]) -> None:
    name = path.name
    while True:
        tmp = f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException as err:
        full = isinstance(err, OSError) and err.errno in _FULL or (isinstance(err, Exception) and _is_full(dir_fd))
        with suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        if full and not isinstance(err, DiskFullError):
            raise DiskFullError(path, getattr(err, "errno", None) or errno.ENOSPC) from None
        raise


def _is_full(dir_fd: int) -> bool:
    """Whether the folder's file system has less than 1 MiB left: a writer that hides the ``ENOSPC``
    in its own error (``torch.save`` raises a ``RuntimeError``) failed because the disk is full."""
    try:
        stats = os.fstatvfs(dir_fd)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < _MIN_FREE


def atomic_write(
    path: str | os.PathLike, write: Callable[[IO[bytes]], object], root: str | os.PathLike | None = None
) -> Path:
    """Call ``write(file)`` on a temporary binary file beside ``path``, then rename it to ``path``.

    Missing folders are created; the file gets the usual permissions (``0o666`` minus the umask).
    An existing ``path`` is replaced (a link at ``path`` is replaced, not followed): the overwrite
    policy belongs to the caller (:func:`mama_monai.outputs.refuse_to_replace`).

    Args:
        path: the file to write.
        write: called once with the open temporary file.
        root: output folder below which no link is followed (default: the folder this process
            has locked with :func:`mama_monai.outputs.lock_output` that contains ``path``, if any).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        DiskFullError: the disk is full; the message names ``path``.
        UnsafeOutputError: a link or a file where a folder below ``root`` should be.

    Example::

        >>> atomic_write(tmp_dir / "report.json", lambda f: f.write(b"{}"))  # doctest: +SKIP
    """
    path = Path(path)
    dir_fd = _open_parent(path, Path(root) if root is not None else held_root(path))
    try:
        _write_in(dir_fd, path, write)
    finally:
        os.close(dir_fd)
    return path
