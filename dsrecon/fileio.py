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


NAME_MAX = 255    # bytes in one file or folder name (ext4, xfs, btrfs, APFS, NTFS: 255)
PATH_MAX = 4095   # bytes in a whole path (Linux's PATH_MAX, 4096 with the final NUL)


def _shown(text: str) -> str:
    """A path as one short printable piece of a message: control characters escaped, a long one cut."""
    text = text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= 60 else f"{text[:40]}...{text[-12:]} ({len(text)} characters)"


def path_problem(path, what: str) -> str | None:
    """Why ``path`` cannot name a file or folder on any file system, as one line naming ``what`` and the fix, or
    None: an empty path (``--out ""``, an unset shell variable: it would mean the current folder), a NUL byte, a
    lone surrogate, a name over :data:`NAME_MAX` bytes or a path over :data:`PATH_MAX` bytes. The OS would say
    so only mid-command, as an OSError or a ValueError from inside ``os.stat``."""
    text = os.fsdecode(path) if isinstance(path, bytes) else os.fspath(path)
    if text == "":
        return f"{what} is empty; give a path (an unset shell variable?)"
    if "\x00" in text:
        return f"{what} {_shown(text)} holds a NUL byte, which no path can; check how it was written"
    try:
        encoded = os.fsencode(text)
    except UnicodeEncodeError:
        return f"{what} {_shown(text)} is not valid text (a lone surrogate); check how it was written"
    longest = max(encoded.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        return (f"{what} {_shown(text)}: a name of {len(longest)} bytes, but file systems take at most {NAME_MAX}; "
                "use a shorter name")
    if len(encoded) > PATH_MAX:
        return f"{what} {_shown(text)}: {len(encoded)} bytes, but paths take at most {PATH_MAX}; use a shorter path"
    return None


def check_path(path, what: str, error: type = DataError) -> None:
    """Raise ``error`` with :func:`path_problem`'s line when ``path`` cannot name a file or folder."""
    problem = path_problem(path, what)
    if problem is not None:
        raise error(problem)


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
