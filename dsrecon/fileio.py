"""Atomic file writes: the one primitive every module that writes a file uses (runs, data, sweeps).

A file is written to a temp file in the same folder, flushed to disk (fsync), given the usual mode
0666 & ~umask (``tempfile.mkstemp`` alone makes it 0600), then moved over the target with ``os.replace``:
a reader sees the old file or the new one, never half of one. An OSError (disk full, no permission, a
file where a folder should be) becomes one :class:`WriteError` line naming the path and the fix, and the
previous version of the file is untouched. This module imports nothing from dsrecon but its errors, so
that every layer can use it.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from .errors import DataError


class WriteError(DataError):
    """A file could not be written (disk full, permissions, a file in the way)."""


def why(err: OSError) -> str:
    """The OS's reason for ``err`` and the fix, in words."""
    fix = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some disk space (quota exceeded)",
           errno.EACCES: "check its permissions or choose another folder",
           errno.EPERM: "check its permissions or choose another folder",
           errno.EROFS: "the file system is read-only: choose another folder",
           errno.ENOTDIR: "a file is in the way of a folder: choose another path",
           errno.EEXIST: "a file is in the way of a folder: choose another path",
           errno.ENAMETOOLONG: "use a shorter name"}.get(err.errno, "choose another folder")
    return f"{err.strerror or type(err).__name__}; {fix}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` to fill a temp file beside ``path``, then fsync it and move it over ``path``.

    ``write`` may be any writer that takes a path (``xarray.Dataset.to_netcdf``, ``Figure.savefig``, ...).
    Raises :class:`WriteError` for an OSError; the temp file never survives."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise WriteError(f"could not write {path}: {why(err)}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
