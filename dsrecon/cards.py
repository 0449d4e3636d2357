"""The dataset registry: the cards in ``datasets/`` (or a user's ``.toml`` card, or the card a data file implies),
and the folders where generated and downloaded data are kept.

A card is parsed once: :func:`card` keeps the parsed TOML by (path, modification time, size) and hands out
copies, so the many readers of one run (load, the model's input check, the report, the reference λ) do not
parse the file again, and an edited card is read afresh.
"""
from __future__ import annotations

import copy
import os
import tomllib
from importlib import resources
from pathlib import Path

import pooch

from .errors import DataError
from .fileio import check_path
from .files import FILE_FORMATS, check_is_file, error_reason, peek_channels, select_columns


# ---------------------------------------------------------------------------------------- cards
def _cards_root():
    """The folder of dataset cards: ``datasets/`` next to the package in a source checkout or an
    editable install, ``dsrecon/cards`` (mapped from ``datasets/`` by pyproject) in a wheel."""
    source = Path(__file__).resolve().parent.parent / "datasets"
    if (source / "lorenz.toml").exists():
        return source
    try:
        return resources.files("dsrecon.cards")
    except ModuleNotFoundError:
        raise DataError("dsrecon's dataset cards are missing from this installation; reinstall dsrecon") from None


def _card_files() -> dict[str, Path]:
    return {p.name[: -len(".toml")]: p for p in _cards_root().iterdir() if p.name.endswith(".toml")}


def available() -> list[str]:
    """Names of the registered datasets (one card each in ``datasets/``)."""
    return sorted(_card_files())


def is_path(name) -> bool:
    """True if ``name`` means a file rather than a registered dataset: a PathLike, an existing file, or a
    string with a folder separator or a known file suffix (.csv, .npy, .nc, .edf, .toml, ...)."""
    if isinstance(name, os.PathLike):
        return True
    name = str(name)
    if name in _card_files():
        return False
    suffix = Path(name).suffix.lower()
    if os.sep in name or "/" in name or suffix in FILE_FORMATS or suffix == ".toml":
        return True
    try:
        return Path(name).is_file()
    except (OSError, ValueError):   # a name no file can have (too long, a NUL byte): not a file, so an unknown dataset
        return False


def card(name) -> dict:
    """The parsed card of dataset ``name``; DataError listing the available names if unknown.

    ``name`` may also be a path: a user-written card (``.toml``, same fields as the cards in ``datasets/``;
    a relative ``[file] path`` is relative to the card) or a data file, whose implied card lists its channels
    (``dims``) as :func:`load` would read them with default options."""
    if is_path(name):
        p = Path(name)
        check_is_file(p)
        if p.suffix.lower() == ".toml":
            c = _read_toml(p)
            c.setdefault("name", p.stem)
            c["_card_path"] = str(p.resolve())
            need = {"file": ["path"], "download": ["url", "filename"]}.get(c.get("kind"), [])
            missing = [k for k in need if not isinstance(c.get("file"), dict) or k not in c["file"]]
            if missing:
                raise DataError(f"card {p}: kind {c.get('kind')!r} needs {', '.join(missing)} in its [file] table, "
                                f"e.g. [file] {missing[0]} = \"...\" (see the cards in datasets/)")
            if "file" in c and "path" in c["file"] and not Path(c["file"]["path"]).is_absolute():
                c["file"]["path"] = str(p.parent / c["file"]["path"])
            if "dims" not in c and c.get("kind") == "file":   # the channels read (before any embedding)
                names = peek_channels(c["file"]["path"])
                cols = c.get("read", {}).get("columns")
                c["dims"] = names if cols is None else [names[i] for i in select_columns(names, cols, c["file"]["path"])]
            return c
        return {"name": p.stem, "kind": "file", "version": 0, "file": {"path": str(p)},
                "description": f"recording from the file {p.name}",
                "dims": list(peek_channels(p))}
    files = _card_files()
    if name not in files:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(sorted(files))} (or a path to a "
                        f".csv/.npy/.npz/.nc/.edf file)")
    return _read_toml(files[name])


_PARSED: dict[str, tuple[tuple[int, int], dict]] = {}   # resolved path -> ((mtime_ns, size), parsed card)


def _read_toml(path) -> dict:
    """The parsed TOML of ``path``, read once per (modification time, size) of the file; a deep copy each call
    (callers fill in defaults and resolve paths in the dict they get)."""
    try:
        st = os.stat(path)
        key, stamp = str(Path(path).resolve()), (st.st_mtime_ns, st.st_size)
        hit = _PARSED.get(key)
        if hit is None or hit[0] != stamp:
            with Path(path).open("rb") as fh:
                hit = _PARSED[key] = (stamp, tomllib.load(fh))
        return copy.deepcopy(hit[1])
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"card {path}: not valid TOML ({error_reason(err)})") from None
    except OSError as err:
        raise DataError(f"cannot read the card {path} ({err.strerror or type(err).__name__})") from None


def cache_dir() -> Path:
    """Where generated and downloaded data are cached: $DSRECON_CACHE_DIR or the user cache dir."""
    env = os.environ.get("DSRECON_CACHE_DIR")
    if env:
        return Path(env)
    return Path(pooch.os_cache("dsrecon"))


def data_directory(path=None) -> Path:
    """Where downloaded recordings live: ``path`` if given, else $DSRECON_DATA_DIR, else <cache dir>/downloads."""
    if path is not None:
        check_path(path, "the data directory")
        return Path(path)
    env = os.environ.get("DSRECON_DATA_DIR")
    if env:
        check_path(env, "the data directory ($DSRECON_DATA_DIR)")
    return Path(env) if env else cache_dir() / "downloads"
