"""What in a run folder is dsrecon's, and who may write it (issue 26): the manifest, the one-writer lock, and
``--overwrite`` that keeps the old run whole until the new one is finished.

- ``manifest.json`` marks a folder as a dsrecon run and records each file dsrecon wrote there with its sha256
  (:func:`write_manifest`, when config.json is written and when the run is finished). :func:`foreign_entries`
  lists what dsrecon did not write: a name it never writes, a symlink or special file where it writes a plain
  file or folder, or a recorded file whose bytes changed since. Nothing in that list is ever removed or replaced.
- :class:`RunLock`: an exclusive ``flock`` on ``.dsrecon.lock``, held for the life of a fit and released by the
  kernel on any exit (``kill -9`` included): a second writer is refused in one line naming the holder.
- ``--overwrite`` moves the old run into ``.replaced`` (renames within the folder, nothing copied or deleted)
  and drops it only once the new run is finished; a fit that fails before writing anything resumable puts it back.

:mod:`dsrecon.runs` re-exports these names; this module imports only the foundation.
"""
from __future__ import annotations

import builtins
import hashlib
import json
import os
import platform
import re
import shutil
import time
from pathlib import Path

try:
    import fcntl
except ImportError:   # Windows: no flock; one writer is the user's care there
    fcntl = None

from . import __version__
from .errors import ConfigError
from .fileio import WriteError, atomic_write_bytes, why

# The names dsrecon writes in a run directory, exactly (issue 26: a user's holiday.png or thesis.tmp is not ours).
MANIFEST = "manifest.json"    # marks the folder as a dsrecon run and records what it wrote, with each file's sha256
LOCK = ".dsrecon.lock"        # held (flock) by the one process writing the run: see :class:`RunLock`
REPLACED = ".replaced"        # --overwrite: the old run, kept whole until the new one is finished
FIGURES = ("attractor.png", "timeseries.png", "spectra.png", "prediction.png", "lyapunov.png", "loss.png",
           "lambda_max.png")
RUN_FILES = {"config.json", "model.pt", "metrics.json", "generated.nc", "train.log", "history.json",
             "lambda_max.json", "report.html", "references.bib", "checkpoints", "result.json", MANIFEST, LOCK,
             REPLACED, *FIGURES}
CHECKPOINT_FILES = {"last.pt"}
# fileio.atomic_write's temp files (mkstemp: the target's name, 8 random characters, .tmp) left by a killed write,
# and a sweep's result.json set aside (backends.set_aside)
_OUR_LEFTOVER = re.compile(r"^(?P<name>[^/]+?)[a-z0-9_]{8}\.tmp$|^result\.json\.[A-Za-z0-9_.-]+$")

def is_ours(name: str, known: set) -> bool:
    if name in known:
        return True
    m = _OUR_LEFTOVER.match(name)
    return m is not None and (m.group("name") is None or m.group("name") in known)


def read_manifest(run_dir) -> dict | None:
    """manifest.json of ``run_dir`` ({"dsrecon_run": 1, "files": {name: sha256 | None}}), or None when the folder
    has none or it is not one dsrecon wrote."""
    p = Path(run_dir) / MANIFEST
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or obj.get("dsrecon_run") != 1 or not isinstance(obj.get("files"), dict):
        return None
    return obj


def is_run(path) -> bool:
    """A folder dsrecon wrote a run into: it has a manifest, or (runs from before the manifest) a config.json that
    is a JSON object with a "config" section."""
    path = Path(path)
    if read_manifest(path) is not None:
        return True
    try:
        obj = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(obj, dict) and isinstance(obj.get("config"), dict)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def foreign_entries(run_dir) -> list[str]:
    """The entries of a run folder that dsrecon did not write, each with why: a name dsrecon never writes, a
    symlink or special file where dsrecon writes a plain file or folder, or a file the manifest records whose
    content changed since (replaced by the user). ``--overwrite`` refuses while any is there: nothing dsrecon did
    not write is ever deleted or replaced."""
    run_dir = Path(run_dir)
    recorded = (read_manifest(run_dir) or {}).get("files", {})
    out = []
    for p in sorted(run_dir.iterdir()):
        name = p.name
        if not is_ours(name, RUN_FILES):
            out.append(name)
        elif p.is_symlink():
            out.append(f"{name} (a symbolic link)")
        elif name in ("checkpoints", REPLACED):
            if not p.is_dir():
                out.append(f"{name} (not a folder)")
                continue
            for q in sorted(p.iterdir()):
                known = CHECKPOINT_FILES if name == "checkpoints" else RUN_FILES
                if not is_ours(q.name, known) or q.is_symlink() or not (q.is_file() or q.is_dir()):
                    out.append(f"{name}/{q.name}")
        elif not p.is_file():
            out.append(f"{name} (not a plain file)")
        elif isinstance(recorded.get(name), str) and sha256(p) != recorded[name]:
            out.append(f"{name} (changed since dsrecon wrote it)")
    return out


def name_list(names: list[str]) -> str:
    return f"{names[0]!r}" + (f" and {len(names) - 1} more" if len(names) > 1 else "")


def set_old_run_aside(run_dir: Path) -> list[str]:
    """``--overwrite``: move the old run's files into ``run_dir/.replaced`` (renames in one folder: no file is
    copied or deleted), so that the old run stays whole until the new one is finished (:func:`drop_replaced`) or
    the new one fails before anything resumable was written (:func:`restore_replaced`). Every entry is checked to
    be dsrecon's first (:func:`foreign_entries`). An earlier overwrite that was interrupted already holds the
    finished run there: the unfinished attempt on top is removed and the finished run stays kept. Returns the
    names moved."""
    run_dir = Path(run_dir)
    foreign = foreign_entries(run_dir)
    if foreign:
        raise ConfigError(f"--overwrite {run_dir}: it holds what dsrecon did not write ({name_list(foreign)}); move it "
                          "out of the folder or choose another folder: dsrecon replaces only its own files")
    hold = run_dir / REPLACED
    if hold.is_dir():
        clear = [p for p in run_dir.iterdir() if p.name not in (LOCK, REPLACED)]
        for p in clear:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        return []
    moved = [p.name for p in run_dir.iterdir() if p.name not in (LOCK, REPLACED)]
    if moved:
        hold.mkdir()
        for name in moved:
            os.replace(run_dir / name, hold / name)
    return moved


def restore_replaced(run_dir: Path) -> bool:
    """Undo :func:`set_old_run_aside` after the new run failed before writing a checkpoint: the new run's files
    are removed and the old run moved back, as it was. False when there was nothing set aside."""
    run_dir, hold = Path(run_dir), Path(run_dir) / REPLACED
    if not hold.is_dir() or hold.is_symlink():
        return False
    for p in run_dir.iterdir():
        if p.name not in (LOCK, REPLACED) and is_ours(p.name, RUN_FILES):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    for p in hold.iterdir():
        os.replace(p, run_dir / p.name)
    hold.rmdir()
    return True


def drop_replaced(run_dir: Path) -> None:
    """The new run is finished: the old run kept aside by :func:`set_old_run_aside` is deleted."""
    hold = Path(run_dir) / REPLACED
    if hold.is_dir() and not hold.is_symlink():
        shutil.rmtree(hold)


def write_manifest(run_dir) -> None:
    """manifest.json: every file of the run that dsrecon wrote, with its sha256 (checkpoints, rewritten while
    training, without one). Written when config.json is, and again when the run is finished."""
    run_dir = Path(run_dir)
    files: dict[str, str | None] = {}
    for p in sorted(run_dir.iterdir()):
        if p.name in (MANIFEST, LOCK, REPLACED) or not is_ours(p.name, RUN_FILES) or p.is_symlink():
            continue
        if p.name == "checkpoints" and p.is_dir():
            files.update({f"checkpoints/{q.name}": None for q in sorted(p.iterdir()) if q.name in CHECKPOINT_FILES})
        elif p.is_file() and not p.name.endswith(".tmp"):
            files[p.name] = None if p.name == "train.log" else sha256(p)   # the log grows on resume
    atomic_write_bytes(run_dir / MANIFEST, (json.dumps({"dsrecon_run": 1, "dsrecon": __version__, "files": files},
                                                       indent=2) + "\n").encode())


class RunLock:
    """The one writer of a run directory (issue 26): an exclusive ``flock`` on ``run_dir/.dsrecon.lock``, held for
    the life of the fit and released by the kernel on any exit, ``kill -9`` included, so a lock left by a dead
    process is free for the next fit. The file names the holder (pid, host, start time) for the refusal. Used as a
    context manager; a second writer gets a one-line ConfigError."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK
        self._fh = None

    @staticmethod
    def holder(run_dir) -> str | None:
        """Who holds the lock of ``run_dir`` ("pid N on HOST, started T"), or None when nobody does."""
        p = Path(run_dir) / LOCK
        if fcntl is None or not p.is_file() or p.is_symlink():
            return None
        try:
            with p.open("rb") as fh:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return _describe_holder(p)
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        except OSError:
            return None
        return None

    def __enter__(self):
        if fcntl is None:   # no flock (Windows): one writer is the user's care there
            return self
        if self.path.is_symlink():
            raise ConfigError(f"{self.path} is a symbolic link, not dsrecon's lock file; remove it")
        while True:
            try:
                fh = builtins.open(self.path, "a+b")   # never truncate: the holder's pid stays readable until we hold it
            except OSError as err:
                raise WriteError(f"could not create {self.path}: {why(err)}") from None
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                who = _describe_holder(self.path)
                fh.close()
                raise ConfigError(f"{self.path.parent} is being written by another dsrecon process ({who}); wait for "
                                  "it to finish, or choose another folder") from None
            try:   # the holder unlinks the file before it unlocks: a lock on an unlinked file holds nothing
                same = os.stat(self.path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": platform.node(),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc):
        if self._fh is not None:
            try:
                self.path.unlink()   # before unlocking: a waiting writer then locks a new file, never a dead one
            except OSError:
                pass
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
        return False


def _describe_holder(path: Path) -> str:
    for _ in range(10):   # the holder writes its pid right after it locks: wait that moment out
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            return f"pid {info['pid']} on {info['host']}, started {info['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return "a process that has just started"
