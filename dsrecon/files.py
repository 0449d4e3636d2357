"""Readers of the user's own files: CSV/TSV/TXT tables (delimiter, decimal comma and header detected), .npy/.npz,
netCDF and EDF -> (array (T, N), channel names, info); the time column, regular sampling, gaps and values checked.

Every read happens inside :func:`reading`, which turns whatever the OS or a decoder raises into one DataError
naming the file and how to write it so that it reads (allow_pickle stays off).
"""
from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import re
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from numpy.lib import format as npformat

from .arrays import transposed_hint
from .errors import ConfigError, DataError, DsreconError
from .fileio import check_path
from .recordings import check_values, fill_nans, parse_time, regular_time

MIN_SAMPLES = 200          # fewest samples a loaded recording may have (after preprocessing): the default fit
#                            needs ~150 (32 windows of 50 steps in the 80 % training split, less 10 % held out), and
#                            TrainConfig.check_series / validation.check_lengths refuse in one line what a config
#                            cannot take; 500 refused 300-sample recordings that fit (issue 22)
FILE_FORMATS = {".csv": "table", ".tsv": "table", ".txt": "table", ".dat": "table", ".npy": "npy", ".npz": "npz",
                ".nc": "netcdf", ".nc4": "netcdf", ".cdf": "netcdf", ".edf": "edf"}
TIME_COLUMN_NAMES = ("time", "t", "date", "datetime", "date time", "timestamp")


def _format(path: Path) -> str:
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(sorted(FILE_FORMATS))} "
                        f"(time first, one column per channel)")
    return fmt


# The one loader mechanism. Every read of a user's file (and of a downloaded recording) happens inside
# ``reading(path, fmt)``: whatever the OS, a decoder, HDF, zip/zlib, numpy's format reader, pandas or edfio
# raises becomes one DataError naming the file, what it is not, and how to write it so that it reads. Safety
# stays on (allow_pickle=False), and a library's advice to load unsafely never reaches the user.
_WHAT = {"npy": "a valid .npy array file", "npz": "a valid .npz archive of arrays", "netcdf": "a readable netCDF file",
         "edf": "a readable EDF/EDF+ file", "table": "a readable text table", "zip": "a readable zip archive"}
_HOW = {"npy": "save it with numpy.save(path, array) or export CSV",
        "npz": "save it with numpy.savez(path, x=array) or export CSV",
        "netcdf": "write it with xarray's Dataset.to_netcdf or export CSV",
        "edf": "export the recording again as EDF/EDF+ or as CSV",
        "table": "export it again as CSV (one column per channel, a header line optional)",
        "zip": "delete it and fetch again"}
_MAGIC = {"npy": (b"\x93NUMPY",), "npz": (b"PK\x03\x04", b"PK\x05\x06"),
          "netcdf": (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")}
_UNSAFE = re.compile(r"pickle|weights_only|unsafe|trust", re.IGNORECASE)


def _unreadable(path, fmt: str, reason: str) -> DataError:
    return DataError(f"{path} is not {_WHAT[fmt]} ({reason}); {_HOW[fmt]}")


def error_reason(err: BaseException) -> str:
    """A library's error as a short reason; never its advice to load pickled data unsafely."""
    text = (str(err).strip().splitlines() or [""])[0]
    if _UNSAFE.search(text):
        return "it holds pickled Python objects or is not an array file at all; dsrecon never unpickles data"
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextmanager
def reading(path, fmt: str):
    """Turn any failure while reading ``path`` (a ``fmt`` file) into one DataError: what, where, the fix.

    Third-party readers raise a zoo of types for a corrupt file (OSError "NetCDF: HDF error", ValueError,
    zipfile.BadZipFile, zlib.error, EOFError, KeyError, UnicodeDecodeError, pandas' ParserError, edfio's
    own), so everything but our own errors is caught here, and only here."""
    try:
        yield
    except DsreconError:
        raise
    except (PermissionError, IsADirectoryError, FileNotFoundError) as err:
        raise DataError(f"cannot read {path} ({err.strerror or type(err).__name__}); check the path and its "
                        f"permissions") from None
    except MemoryError:
        raise DataError(f"{path}: too large to read into memory; select fewer columns or cut the recording") from None
    except Exception as err:  # noqa: BLE001 -- see the docstring: the one place that turns them into DataError
        raise _unreadable(path, fmt, error_reason(err)) from None


# The channel dimension (and its coordinate of channel names) was called "dim" before dsrecon named it "channel".
LEGACY_CHANNEL_DIM = "dim"


def legacy_channels_renamed(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with a legacy channel dimension ``dim`` (and its coordinate) renamed ``channel``, else ``ds`` itself:
    datasets, dataset caches and run directories written before the rename read like new ones. Used by every
    reader of a dataset file, through :func:`open_netcdf`."""
    if LEGACY_CHANNEL_DIM in ds.dims and "channel" not in ds.dims and "channel" not in ds.variables:
        return ds.rename({LEGACY_CHANNEL_DIM: "channel"})
    return ds


@contextmanager
def open_netcdf(path):
    """``xarray.open_dataset(path)``, lazily, with a legacy channel dimension renamed (:func:`legacy_channels_renamed`):
    the one way dsrecon opens a dataset file (user netCDF files, the dataset cache, a run's generated.nc)."""
    with xr.open_dataset(path) as ds:
        yield legacy_channels_renamed(ds)


def check_is_file(path: Path) -> None:
    """One line unless ``path`` is a regular file (or a link to one), saying what it is instead."""
    check_path(path, "the data file")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a data file; name a file in it (.csv, .npy, .nc, ...)")
    if path.is_file():
        return
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise DataError(f"{path} is a loop of symbolic links, not a data file") from None
        if path.is_symlink():
            raise DataError(f"no such file: {path} is a symbolic link to {os.readlink(path)}, which does not "
                            f"exist") from None
        raise DataError(f"no such file: {path}") from None
    raise DataError(f"{path} is not a regular file (a device, pipe or socket), so it holds no recording; name a "
                    f"data file (.csv, .npy, .nc, ...)")


def _check_signature(path: Path, fmt: str) -> None:
    """Refuse a file whose first bytes are not its format's signature (a text file renamed .npy, ...)."""
    with reading(path, fmt), open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise DataError(f"{path}: the file is empty; {_HOW[fmt]}")
    if fmt in _MAGIC and not head.startswith(_MAGIC[fmt]):
        text = all(32 <= b < 127 or b in (9, 10, 13) for b in head)
        shown = f"the text {head.decode('ascii')!r}" if text else f"the bytes {head.hex(' ')}"
        raise _unreadable(path, fmt, f"it starts with {shown}, not the format's signature")


def _check_array(path, dtype: np.dtype, shape: tuple, where: str = "") -> None:
    """An array header's dtype and shape must be a real (T,) or (T, N) series."""
    what = f"{path}{where}"
    if dtype.hasobject:
        raise DataError(f"{what} holds Python objects (dtype {dtype}), which dsrecon never unpickles; save the "
                        f"numbers as a float array (numpy.save(path, x.astype(float))) or export CSV")
    if np.issubdtype(dtype, np.complexfloating):
        raise DataError(f"{what} holds complex values (dtype {dtype}); keeping only the real part would lose data: "
                        f"save the real and imaginary parts as channels, numpy.column_stack([z.real, z.imag])")
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise DataError(f"{what}: cannot read a numeric array (dtype {dtype}); save numbers, time first")
    if len(shape) == 0:
        raise DataError(f"{what} holds a single number (shape ()), not a time series; save an array of shape "
                        f"(T,) or (T, N), time first")
    if len(shape) not in (1, 2):
        raise DataError(f"{what}: expected an array of shape (T,) or (T, N) (time first), got {shape}")
    if len(shape) == 2 and shape[1] == 0:
        raise DataError(f"{what}: the array has shape {shape}: no channels; save an array of shape (T, N), N >= 1")


def _npy_header(fh, path, where: str = ""):
    """(shape, fortran_order, dtype) from an open .npy stream, read without loading the data."""
    major, _ = npformat.read_magic(fh)
    if major == 1:
        shape, fortran, dtype = npformat.read_array_header_1_0(fh)
    elif major == 2:
        shape, fortran, dtype = npformat.read_array_header_2_0(fh)
    else:   # version 3 exists only for structured dtypes with non-latin-1 field names
        raise DataError(f"{path}{where}: .npy format version {major} (structured arrays) is not a plain numeric array; "
                        f"save a float array with numpy.save or export CSV")
    _check_array(path, dtype, shape, where)
    return shape, fortran, dtype


def _npz_member(path: Path, z) -> str:
    """The member of an .npz archive that holds the series: ``x``, or the only array; else a DataError listing them."""
    names = [n[: -len(".npy")] for n in z.namelist() if n.endswith(".npy")]
    if not names:
        raise DataError(f"{path}: the .npz archive holds no arrays; save one with numpy.savez(path, x=array)")
    if "x" in names:
        return "x"
    if len(names) == 1:
        return names[0]
    shown = ", ".join(map(repr, names[:10])) + (", ..." if len(names) > 10 else "")
    raise DataError(f"{path}: the .npz archive holds {len(names)} arrays ({shown}) and none is named 'x'; dsrecon "
                    f"reads the array named 'x' (or the only one): save the series to fit as x "
                    f"(numpy.savez(path, x=...)), or one array per file")


def _open_array(path: Path, fmt: str, *, load: bool = True):
    """An .npy or .npz file -> (array or None, shape, member name or None), checked before any data are read.
    An .npy array is memory-mapped (only the selected columns are copied later)."""
    _check_signature(path, fmt)
    with reading(path, fmt):
        if fmt == "npy":
            with open(path, "rb") as fh:
                shape, _, dtype = _npy_header(fh, path)
                offset = fh.tell()
            need = int(np.prod(shape)) * dtype.itemsize
            have = path.stat().st_size - offset
            if have < need:
                raise DataError(f"{path} is truncated: its header promises shape {shape} {dtype} ({need} bytes) but "
                                f"{have} bytes follow; save it again with numpy.save or export CSV")
            arr = np.load(path, mmap_mode="r", allow_pickle=False) if load else None
            return arr, shape, None
        with zipfile.ZipFile(path) as z:
            key = _npz_member(path, z)
            with z.open(key + ".npy") as fh:
                shape, _, _ = _npy_header(fh, path, f" (array {key!r})")
            if not load:
                return None, shape, key
            with z.open(key + ".npy") as fh:
                arr = np.lib.format.read_array(fh, allow_pickle=False)
            return arr, shape, key


def _decode(raw: bytes, path) -> tuple[str, str]:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):      # a UTF-16 export (Excel's "Unicode text"): its BOM says so
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise _unreadable(path, "table", "it starts with a UTF-16 mark but does not decode as UTF-16") from None
    if raw[:2] == b"\x1f\x8b":
        raise _unreadable(path, "table", "it is gzip-compressed; decompress it first, e.g. gunzip")
    if raw[:4] == b"PK\x03\x04":
        raise _unreadable(path, "table", "it is a zip archive, e.g. an Excel workbook; export the sheet as CSV")
    if b"\x00" in raw[:65536]:
        raise _unreadable(path, "table", "it holds binary data (NUL bytes), not text")
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"     # Windows/European exports; every byte is a character here


_NUM_DOT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_NUM_COMMA = re.compile(r"^[+-]?\d*,\d+([eE][+-]?\d+)?$")


def _split_lines(lines: list[str], sep: str | None) -> list[list[str]]:
    """Fields of each line: whitespace-separated, or by ``sep`` with CSV quoting ("a, b" is one field)."""
    if sep is None:
        return [ln.split() for ln in lines]
    return [[f.strip() for f in row] for row in csv.reader(lines, delimiter=sep)]


def _split(line: str, sep: str | None) -> list[str]:
    return _split_lines([line], sep)[0]


def _table_layout(path: Path, *, full: bool = False) -> dict:
    """How a text table is written, detected from its first 200 non-blank lines: the delimiter (``;``, tab,
    ``,`` or whitespace, whatever the suffix), the decimal mark (``.``, or ``,`` with ``;``/tab/whitespace
    delimiters: European exports), the header (None if the first line is all numbers) and the number of fields.
    With ``full``, every row is checked to have as many fields as the header (the first bad line is named),
    and the decoded text is returned under ``text``."""
    with reading(path, "table"):     # csv's and the decoder's errors too
        text, encoding = _decode(path.read_bytes(), path)
        return _detect_layout(path, text, encoding, full)


def _detect_layout(path: Path, text: str, encoding: str, full: bool) -> dict:
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise DataError(f"{path}: the file is empty (no rows); {_HOW['table']}")
    sample = [ln for _, ln in lines[:200]]
    # the first delimiter that splits every sampled line into the same number (>= 2) of fields; else one column
    # of decimal-comma numbers under a header ("x", then "0,5", "1,25", ...); else the delimiter on most lines
    # (a bad row then gets named below); else whitespace
    widths = {s: {len(f) for f in _split_lines(sample, s)} for s in (";", "\t", ",", None)}
    sep = next((s for s, w in widths.items() if len(w) == 1 and min(w) >= 2), "?")
    if sep == "?" and len(sample) > 1 and "," not in sample[0] and all(_NUM_COMMA.match(ln.strip()) for ln in sample[1:]):
        sep = None
    if sep == "?":
        sep = next((s for s in (";", "\t", ",") if sum(s in ln for ln in sample) >= 0.9 * len(sample)), None)
    tokens = [f for ln in sample[1:] for f in _split(ln, sep)] or _split(sample[0], sep)
    decimal = "."
    if sep != "," and any(_NUM_COMMA.match(t) for t in tokens) and not any("." in t and _NUM_DOT.match(t)
                                                                            for t in tokens):
        decimal = ","
    first = _split(sample[0], sep)
    try:
        [float(v.replace(",", ".") if decimal == "," else v) for v in first]
        header = None
    except ValueError:
        header = first
    layout = {"sep": sep, "decimal": decimal, "header": header, "n_fields": len(first), "encoding": encoding}
    if full:
        n, (ln0, _) = len(first), lines[0]
        body = [ln for _, ln in lines]
        if sep is None:
            counts = (len(ln.split()) for ln in body)
        elif '"' not in text:                          # no quoting: counting delimiters is exact, and fast
            counts = (ln.count(sep) + 1 for ln in body)
        else:
            counts = map(len, csv.reader(body, delimiter=sep))
        bad = np.nonzero(np.fromiter(counts, dtype=int, count=len(lines)) != n)[0]
        if bad.size:
            lineno, k = lines[bad[0]][0], len(_split(lines[bad[0]][1], sep))
            delim = {None: "whitespace", ";": "';'", "\t": "tab", ",": "','"}[sep]
            raise DataError(f"{path}: line {lineno} has {k} fields where {'the header' if header else 'the first row'} "
                            f"(line {ln0}) has {n} ({delim}-separated; {bad.size} such rows); fix or remove those rows "
                            f"(a stray or missing delimiter? a decimal comma?), or export the table again")
        layout["text"] = text
    return layout


def _pandas_options(layout: dict) -> dict:
    return {"sep": r"\s+" if layout["sep"] is None else layout["sep"], "decimal": layout["decimal"]}


def _edf_reader():
    try:
        import edfio   # deferred: an optional extra (dsrecon[edf]); only EDF files need it
    except ImportError:
        raise DataError("reading EDF files needs the optional extra: pip install dsrecon[edf]") from None
    return edfio


def peek_channels(path) -> list[str]:
    """Channel names of a file as :func:`load` reads it with default options (time column excluded),
    reading only the header where the format allows."""
    path = Path(path)
    check_is_file(path)
    fmt = _format(path)
    if fmt == "table":
        layout = _table_layout(path)
        if layout["header"] is None:
            return [f"c{i}" for i in range(layout["n_fields"])]
        return [h for h in layout["header"] if h.lower() not in TIME_COLUMN_NAMES]
    if fmt in ("npy", "npz"):
        _, shape, _ = _open_array(path, fmt, load=False)
        return ["c0"] if len(shape) == 1 else [f"c{i}" for i in range(shape[1])]
    if fmt == "netcdf":
        _check_signature(path, fmt)
        with reading(path, fmt), open_netcdf(path) as ds:
            return [str(v) for v in ds["channel"].values] if "x" in ds and "channel" in ds["x"].dims else list(map(str, ds.data_vars))
    edfio = _edf_reader()
    with reading(path, fmt):
        return [sig.label for sig in edfio.read_edf(path, lazy_load_data=True).signals]


def select_columns(names: list[str], columns, path) -> list[int]:
    """Indices of ``columns`` (names or integer positions) among ``names``; each channel at most once."""
    if columns is None:
        return list(range(len(names)))
    if isinstance(columns, (str, int)):
        columns = [columns]
    out = []
    for col in columns:
        if isinstance(col, (int, np.integer)) and not isinstance(col, bool):
            if not 0 <= col < len(names):
                raise DataError(f"{path}: column index {col} is out of range (the file has {len(names)} columns)")
            i = int(col)
        elif str(col) in names:
            i = names.index(str(col))
        else:
            raise DataError(f"{path}: no column {col!r}; columns: {', '.join(map(repr, names))}")
        if i in out:
            raise DataError(f"{path}: column {names[i]!r} is selected twice (columns={list(columns)}); a channel "
                            f"counted twice adds no information: list each column once")
        out.append(i)
    if not out:
        raise DataError(f"{path}: no columns selected; columns: {', '.join(map(repr, names))}")
    return out


def read_file(path, *, columns=None, time_column=None, dt: float | None = None, interpolate: bool = False,
              check: bool = True) -> tuple[np.ndarray, list[str], dict]:
    """Read a recording -> (values (T, N) float64, channel names, info) with info keys dt, time (or None),
    time_units, start, format, filled (number of interpolated values).

    Formats by suffix: .csv/.tsv/.txt/.dat (a header line optional; the delimiter -- ``,`` ``;`` tab or
    whitespace -- and a decimal comma are detected from the lines, not the suffix, and recorded in
    ``info["table"]``; every row must have as many fields as the header; a time column by name or
    ``time_column``; dates in ISO 8601 or "dd.mm.yyyy HH:MM:SS"), .npy (header checked, then read
    memory-mapped; only the selected columns are copied), .npz (the array ``x``, or the only one), netCDF
    (variable ``x`` (time, channel) as written by dsrecon, else the selected 1-d variables along their common
    dimension), .edf (EDF/EDF+ via ``edfio``, an optional extra; channels must share one sampling rate).
    Pickled data are never loaded. ``check=False`` skips the NaN / length / constant checks (the ``lyap``
    command does its own); ±inf and values beyond any plausible scale (more than 1e6 robust spreads from the
    channel's median, or beyond 1e150) are refused either way.
    Raises: DataError, one line: missing file, unknown type, a file that is not what its suffix says
    (truncated, garbage, text renamed .npy; see ``reading``), a scalar, complex, object or >2-d array, an
    .npz with several arrays and none named x, a row wider or narrower than the header, unknown or repeated
    column, non-numeric column, a bad time column (not increasing, duplicates, irregular steps, gaps), ±inf,
    implausible values, NaNs (unless ``interpolate``), too few samples, a constant channel.
    """
    path = Path(path)
    check_is_file(path)
    fmt = _format(path)
    if dt is not None and not (float(dt) > 0 and np.isfinite(float(dt))):
        raise ConfigError(f"dt must be a positive number of time units per sample, got {dt!r}")
    dt = None if dt is None else float(dt)
    info = {"format": fmt, "time": None, "time_units": "", "start": None, "filled": 0}
    t = None
    if fmt == "table":
        x, names, t, tname, info = _read_table(path, columns, time_column, info)
    elif fmt in ("npy", "npz"):
        arr, shape, key = _open_array(path, fmt)
        arr2 = arr[:, None] if arr.ndim == 1 else arr
        names = [f"c{i}" for i in range(arr2.shape[1])]
        idx = select_columns(names, columns, path)
        with reading(path, fmt):
            x = np.array(arr2[:, idx], dtype=np.float64)      # copies only the selected columns
        del arr, arr2                                          # closes the memory map
        names = [names[i] for i in idx]
        tname = None
        if key is not None:
            info["array"] = key
    elif fmt == "netcdf":
        x, names, t, tname, info = _read_netcdf_file(path, columns, info)
    else:
        x, names, info = _read_edf(path, columns, info)
        tname = None
        if dt is not None and abs(dt - info["dt"]) > 1e-9 * info["dt"]:
            raise DataError(f"{path}: dt = {dt} disagrees with the EDF header's sampling interval {info['dt']:g} s")
        dt = info["dt"]
    if t is not None:
        if interpolate and np.any(np.diff(t) < 0):   # asked to repair: put the samples in time order first
            order = np.argsort(t, kind="stable")
            info["reordered"] = int(np.sum(order != np.arange(len(t))))
            t, x = t[order], x[order]
        step, grid = regular_time(t, dt, tname, path, interpolate)
        if grid is not None:                  # duplicates dropped and gaps filled on a regular grid
            first = np.concatenate([[True], np.diff(t) > 0])
            t, x = t[first], x[first]
            info["filled"] += int((~np.isfinite(x)).sum())
            x = np.stack([np.interp(grid, t, x[:, c]) if np.isfinite(x[:, c]).all() else
                          np.interp(grid, t[np.isfinite(x[:, c])], x[np.isfinite(x[:, c]), c])
                          for c in range(x.shape[1])], axis=1)
            info["filled"] += int(len(grid) - len(t))
            t = grid
        dt = step
        info["time"] = t
    info["dt"] = 1.0 if dt is None else dt
    check_values(x, names, info["time"], path)
    if len(x) == 0:
        raise DataError(f"{path}: no samples (a header without data rows, or an empty array); a time series needs "
                        f"one row per sample, time first")
    if check:
        x, filled = fill_nans(x, names, path, interpolate)
        info["filled"] += filled
        if len(x) < MIN_SAMPLES:
            raise DataError(f"{path}: only {len(x)} samples; a reconstruction needs at least {MIN_SAMPLES} "
                            f"(plus what the embedding and the forcing interval tau use){transposed_hint(x.shape)}")
        flat = [names[i] for i in np.nonzero(np.ptp(x, axis=0) == 0)[0]]
        if flat:
            raise DataError(f"{path}: channel(s) {', '.join(map(repr, flat))} are constant: they carry no dynamics; "
                            f"select the others with columns=[...]")
    return x, names, info


def _check_unique(names: list[str], path, where: str, kind: str) -> None:
    """One line when ``where`` (a header, a coordinate) names a ``kind`` (column, channel) twice."""
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise DataError(f"{path}: {where} names {kind} {dup!r} more than once; give each {kind} its own name")


def _read_table(path: Path, columns, time_column, info):
    layout = _table_layout(path, full=True)
    header = layout["header"]
    all_names = [f"c{i}" for i in range(layout["n_fields"])] if header is None else header
    unnamed = [k for k, h in enumerate(all_names, 1) if not h.strip()]
    if unnamed:   # a channel called '' (or an all-NaN one, for a delimiter at the end of every line)
        k, last = unnamed[0], unnamed[0] == len(all_names)
        raise DataError(f"{path}: the header leaves column {k} of {len(all_names)} unnamed"
                        f"{' (a delimiter at the end of each line?)' if last else ''}; name it in the header, or "
                        f"remove {'the trailing delimiter' if last else 'that column'}")
    _check_unique(all_names, path, "the header", "column")
    if time_column is None:
        tcol = next((h for h in all_names if h.strip().lower() in TIME_COLUMN_NAMES), None)
    elif isinstance(time_column, (int, np.integer)):
        tcol = all_names[select_columns(all_names, [int(time_column)], path)[0]]
    else:
        tcol = all_names[select_columns(all_names, [time_column], path)[0]]
    data_names = [h for h in all_names if h != tcol]
    if tcol is not None and columns is not None and tcol in ([columns] if isinstance(columns, str) else list(columns)):
        raise DataError(f"{path}: column {tcol!r} is the time column (it sets dt), not a channel; select the data "
                        f"columns: {', '.join(map(repr, data_names))}")
    if not data_names:
        raise DataError(f"{path}: the only column is the time column {tcol!r}; a recording needs at least one "
                        f"channel of values next to it")
    idx = select_columns(data_names, columns, path)
    names = [data_names[i] for i in idx]
    use = names + ([tcol] if tcol is not None else [])
    with reading(path, "table"):   # numbers are parsed as floats directly; the time column is kept as text
        df = pd.read_csv(io.StringIO(layout["text"]), header=None if header is None else 0, names=all_names,
                         usecols=use, dtype=None if tcol is None else {tcol: str}, skip_blank_lines=True,
                         **_pandas_options(layout))
    x = np.empty((len(df), len(names)))
    for j, name in enumerate(names):
        col = df[name]
        if not pd.api.types.is_numeric_dtype(col):
            text = col.astype(str).str.strip()
            vals = pd.to_numeric(text.str.replace(",", ".") if layout["decimal"] == "," else text, errors="coerce")
            bad = (vals.isna() & col.notna()).to_numpy()
            if bad.any():
                r = int(np.argmax(bad))
                raise DataError(f"{path}: cannot read a numeric array: column {name!r} is not numeric (sample {r}: "
                                f"{text.iloc[r]!r}); select numeric columns with columns=[...] or name the time "
                                f"column with time_column=")
            col = vals
        x[:, j] = col.to_numpy(dtype=float)
    t = None
    if tcol is not None:
        stamps = df[tcol].astype(str).str.strip().tolist()
        if layout["decimal"] == ",":
            dotted = [v.replace(",", ".") for v in stamps]
            if pd.to_numeric(pd.Series(dotted), errors="coerce").notna().all():
                stamps = dotted
        t, info["time_units"], info["start"] = parse_time(stamps, tcol, path)
    info["table"] = {"delimiter": {None: "whitespace", "\t": "tab"}.get(layout["sep"], layout["sep"]),
                     "decimal": layout["decimal"], "encoding": layout["encoding"]}
    return x, names, t, tcol, info


def _read_netcdf_file(path: Path, columns, info):
    _check_signature(path, "netcdf")
    with reading(path, "netcdf"), open_netcdf(path) as ds:
        if "x" in ds and ds["x"].ndim == 2 and "time" in ds["x"].dims:
            da = ds["x"].transpose("time", ...)
            _check_array(path, da.dtype, da.shape, " (variable 'x')")
            other = [d for d in da.dims if d != "time"][0]
            names = [str(v) for v in da[other].values] if other in da.coords else [f"c{i}" for i in range(da.shape[1])]
            _check_unique(names, path, "variable 'x'", "channel")
            idx = select_columns(names, columns, path)
            x = np.asarray(da.isel({other: idx}).values, dtype=np.float64)
            names = [names[i] for i in idx]
        else:
            vars1 = [v for v in ds.data_vars if ds[v].ndim == 1]
            if not vars1:
                raise DataError(f"{path}: no variable 'x' (time, channel) and no 1-d variables to use as channels; "
                                f"{_HOW['netcdf']}")
            idx = select_columns(vars1, columns, path)
            names = [vars1[i] for i in idx]
            dims = {ds[n].dims for n in names}
            if len(dims) != 1:
                raise DataError(f"{path}: the selected variables lie along different dimensions {sorted(dims)}")
            for n in names:
                _check_array(path, ds[n].dtype, ds[n].shape, f" (variable {n!r})")
            x = np.stack([np.asarray(ds[n].values, dtype=np.float64) for n in names], axis=1)
        t, tname = None, None
        if "time" in ds.coords and len(ds["time"]):
            tv = ds["time"].values
            if np.issubdtype(tv.dtype, np.datetime64):
                info["start"] = str(np.datetime_as_string(tv[0], unit="s"))
                t, info["time_units"] = (tv - tv[0]) / np.timedelta64(1, "s"), "s"
            else:
                t = np.asarray(tv, dtype=float)
            tname = "time"
    return x, names, t, tname, info


def _read_edf(path: Path, columns, info):
    edfio = _edf_reader()
    with reading(path, "edf"):
        edf = edfio.read_edf(path, lazy_load_data=True)    # samples are read per selected channel below
    signals = [sig for sig in edf.signals]
    names = [sig.label for sig in signals]
    idx = select_columns(names, columns, path)
    chosen = [signals[i] for i in idx]
    rates = sorted({float(sig.sampling_frequency) for sig in chosen})
    if len(rates) != 1:
        raise DataError(f"{path}: the selected channels have different sampling rates {rates} Hz; select channels "
                        f"of one rate with columns=[...]")
    with reading(path, "edf"):
        x = np.stack([np.asarray(sig.data, dtype=np.float64) for sig in chosen], axis=1)
    try:
        start = f"{edf.startdate.isoformat()}T{edf.starttime.isoformat()}"
    except Exception:  # an anonymized recording ("Startdate X") has no start date
        start = None
    info.update({"dt": 1.0 / rates[0], "time_units": "s", "start": start})
    return x, [names[i] for i in idx], info


def read_series(path) -> np.ndarray:
    """A time series from a file as a float array (T,) or (T, N), for ``dsrecon lyap FILE``: any format of
    :func:`read_file` (time column excluded); values are not checked here (:func:`max_lyapunov` does that).
    Raises DataError (one line) for a missing file, an unknown suffix or unparsable contents."""
    x, _, _ = read_file(path, check=False)
    return x[:, 0] if x.shape[1] == 1 else x


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
