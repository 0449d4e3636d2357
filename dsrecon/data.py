"""The dataset registry: declarative cards in ``datasets/`` -> standardized ``xarray.Dataset``.

A dataset is an ``xarray.Dataset`` with one variable ``x`` of dims ``("time", "dim")``, a ``time``
coordinate in the system's time units, a ``dim`` coordinate with channel names, and attrs ``dt``,
``name``, ``card_version``, ``units``, ``source``, ``parameters`` (JSON), ``provenance`` (JSON list of
the steps applied), ``n_train`` (the first ``n_train`` samples are the training split), ``mean`` and
``std`` (the standardization, per channel, computed on the training split only), ``noise`` (the
observation-noise level added, as a fraction of each channel's std) and ``lambda_ref`` (reference λ_max
per time unit from the card, with ``lambda_ref_source``). A driven system (the forced Duffing
oscillator) also carries its forcing as an input variable ``s`` of dims ``("time", "input")``. The
dataset round-trips through netCDF unchanged.

Where data come from (:func:`load`):

- a simulated card (``kind = "ode"`` or ``"dde"``): integrated once per (card version, seed, noise,
  lengths) and cached as netCDF under ``$DSRECON_CACHE_DIR`` (default: the user cache dir);
- a download card (``kind = "download"``: Jena weather, PhysioNet EEG): fetched with pooch into the data
  directory (``$DSRECON_DATA_DIR``, ``data_dir=``, default ``<cache dir>/downloads``), SHA-256 checked,
  read and preprocessed by the card's ``[[preprocess]]`` steps (:mod:`dsrecon.preprocess`);
- a path to the user's own file (CSV/TSV/TXT, .npy/.npz, netCDF, EDF) or to a user-written card (.toml).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tomllib
import zipfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import numpy as np
import xarray as xr

from . import preprocess as pp, systems
from .embedding import delay_embedding
from .errors import ConfigError, DataError, DsreconError
from .fileio import atomic_write
from .lyapunov import LyapunovSpectrum, lyapunov_spectrum

MIN_SAMPLES = 500          # fewest samples a loaded recording may have (after preprocessing)
TRAIN_FRACTION = 0.8       # default train share of a recording without n_train in its card
FILE_FORMATS = {".csv": "table", ".tsv": "table", ".txt": "table", ".dat": "table", ".npy": "npy", ".npz": "npz",
                ".nc": "netcdf", ".nc4": "netcdf", ".cdf": "netcdf", ".edf": "edf"}
TIME_COLUMN_NAMES = ("time", "t", "date", "datetime", "date time", "timestamp")
DATE_FORMATS = ("ISO8601", "%d.%m.%Y %H:%M:%S")   # ISO 8601; the Jena weather CSV's "01.01.2009 00:10:00"


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
    return os.sep in name or "/" in name or suffix in FILE_FORMATS or suffix == ".toml" or Path(name).is_file()


def card(name) -> dict:
    """The parsed card of dataset ``name``; DataError listing the available names if unknown.

    ``name`` may also be a path: a user-written card (``.toml``, same fields as the cards in ``datasets/``;
    a relative ``[file] path`` is relative to the card) or a data file, whose implied card lists its channels
    (``dims``) as :func:`load` would read them with default options."""
    if is_path(name):
        p = Path(name)
        _check_is_file(p)
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
                c["dims"] = names if cols is None else [names[i] for i in _select(names, cols, c["file"]["path"])]
            return c
        return {"name": p.stem, "kind": "file", "version": 0, "file": {"path": str(p)},
                "description": f"recording from the file {p.name}",
                "dims": list(peek_channels(p))}
    files = _card_files()
    if name not in files:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(sorted(files))} (or a path to a "
                        f".csv/.npy/.npz/.nc/.edf file)")
    return _read_toml(files[name])


def _read_toml(path) -> dict:
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"card {path}: not valid TOML ({_reason(err)})") from None
    except OSError as err:
        raise DataError(f"cannot read the card {path} ({err.strerror or type(err).__name__})") from None


def cache_dir() -> Path:
    """Where generated and downloaded data are cached: $DSRECON_CACHE_DIR or the user cache dir."""
    env = os.environ.get("DSRECON_CACHE_DIR")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("dsrecon"))


def data_directory(path=None) -> Path:
    """Where downloaded recordings live: ``path`` if given, else $DSRECON_DATA_DIR, else <cache dir>/downloads."""
    if path is not None:
        return Path(path)
    env = os.environ.get("DSRECON_DATA_DIR")
    return Path(env) if env else cache_dir() / "downloads"


# ---------------------------------------------------------------------------------------- io
def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Write ``ds`` to ``path`` atomically (:func:`dsrecon.fileio.atomic_write`: temp file, fsync, umask mode)."""
    atomic_write(path, ds.to_netcdf)


def read_netcdf(path: str | os.PathLike) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


# ---------------------------------------------------------------------------------------- build
def _make_dataset(x: np.ndarray, *, dt: float, dims, attrs: dict, s: np.ndarray | None = None,
                  inputs=None, time=None) -> xr.Dataset:
    coords = {"time": np.arange(x.shape[0]) * dt if time is None else np.asarray(time, dtype=float),
              "dim": list(dims)}
    data_vars = {"x": (("time", "dim"), x)}
    if s is not None:
        coords["input"] = list(inputs)
        data_vars["s"] = (("time", "input"), s)
    return xr.Dataset(data_vars, coords=coords, attrs={"dt": float(dt), **attrs})


def load(name, *, seed: int | None = None, noise: float | None = None, cache: bool = True,
         n_train: int | None = None, n_test: int | None = None, transient: int | None = None,
         forcing: str | None = None, columns=None, time_column=None, dt: float | None = None, embed=None, interpolate: bool = False,
         preprocess=None, train_fraction: float | None = None, data_dir=None) -> xr.Dataset:
    """Load a registered dataset, a user card (.toml) or a user file, standardized on its training split.

    Parameters (simulated cards): ``seed`` overrides the card's initial-condition seed (an independent orbit);
    ``noise`` sets the observation noise (std as a fraction of each channel's std; default: the card's
    ``[noise] observation``, 0 for all shipped cards); ``n_train``/``n_test`` override the split sizes and
    ``transient`` the samples discarded before them (short runs for tests and quick looks);
    ``forcing`` ("phase" or "input") overrides a driven card's ``[forcing] mode``; ``cache=False``
    regenerates without touching the cache.
    Parameters (files and download cards): ``columns`` (names or indices), ``time_column`` (default: a column
    named time/t/date/datetime/"Date Time"/timestamp, if any), ``dt`` (sampling interval; default from the
    time column, else 1 per sample), ``interpolate`` (fill NaNs and gaps linearly instead of refusing),
    ``embed`` (None, "auto" or (emb_dim, delay): a final :func:`dsrecon.preprocess.delay_embed`),
    ``preprocess`` (a list of steps replacing the card's), ``train_fraction`` (default 0.8), ``data_dir``
    (where downloaded recordings are looked for and stored).
    Returns: an ``xr.Dataset`` as described in the module docstring; use :func:`train_test_split`.
    Raises: DataError for an unknown name (listing the available ones) or unusable data (one line: what,
    where, how to fix); ConfigError for bad options. Nothing is written to the cache on failure.
    """
    sim_opts = {"n_train": n_train, "n_test": n_test, "transient": transient, "forcing": forcing}
    file_opts = {"columns": columns, "time_column": time_column, "dt": dt, "interpolate": interpolate or None,
                 "train_fraction": train_fraction, "data_dir": data_dir, "embed": embed}
    if is_path(name) and Path(str(name)).suffix.lower() != ".toml":
        _refuse(sim_opts, f"the file {name}")
        c = card(name)
        return _load_recording(c, Path(c["file"]["path"]), columns=columns, time_column=time_column, dt=dt,
                               interpolate=interpolate, embed=embed, preprocess=preprocess,
                               train_fraction=train_fraction, noise=noise, seed=seed)
    c = card(name)
    kind = c.get("kind")
    _refuse(sim_opts if kind in ("download", "file") else file_opts if kind in ("ode", "dde") else {},
            f"dataset {c.get('name', name)!r} (kind {kind})")
    if kind in ("ode", "dde"):
        if transient is not None:
            if int(transient) < 0:
                raise ConfigError(f"transient must be >= 0 samples, got {transient}")
            c = {**c, "sampling": {**c["sampling"], "transient": int(transient)}}
        return _load_simulated(c, seed=seed, noise=noise, cache=cache, n_train=n_train, n_test=n_test,
                               forcing=forcing, preprocess=preprocess)
    if kind == "download":
        path = fetch(c["name"] if not is_path(name) else c, data_dir=data_dir)
        return _load_recording(c, path, columns=columns, time_column=time_column, dt=dt, interpolate=interpolate,
                               embed=embed, preprocess=preprocess, train_fraction=train_fraction, noise=noise,
                               seed=seed)
    if kind == "file":
        return _load_recording(c, Path(c["file"]["path"]), columns=columns, time_column=time_column, dt=dt,
                               interpolate=interpolate, embed=embed, preprocess=preprocess,
                               train_fraction=train_fraction, noise=noise, seed=seed)
    raise DataError(f"dataset {c.get('name', name)!r} has kind {kind!r}, which this version cannot load "
                    f"(kinds: ode, dde, download, file)")


def _refuse(options: dict, what: str) -> None:
    given = sorted(k for k, v in options.items() if v is not None)
    if given:
        raise ConfigError(f"{', '.join(given)} do(es) not apply to {what}: simulated datasets take n_train, n_test, "
                          f"transient, forcing; recordings take columns, time_column, dt, embed, "
                          f"interpolate, train_fraction, data_dir")


def _check_noise(noise) -> float:
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        raise ConfigError(f"noise must be a number >= 0 (std as a fraction of each channel's std), got {noise!r}") from None
    if not (noise >= 0 and np.isfinite(noise)):
        raise ConfigError(f"noise must be a number >= 0 (std as a fraction of each channel's std), got {noise!r}")
    return noise


def add_observation_noise(x: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """x + Gaussian noise of std ``noise`` × (each channel's std), from ``default_rng((seed, 1))`` (a stream
    separate from the initial condition's)."""
    if noise == 0:
        return x
    rng = np.random.default_rng((int(seed), 1))
    return x + noise * x.std(axis=0) * rng.standard_normal(x.shape)


def _embedding_margin(c: dict) -> int:
    e = c.get("embedding")
    return 0 if not e else (int(e["dim"]) - 1) * int(e["delay"])


def simulate_card(c: dict, *, n_samples: int, seed: int) -> np.ndarray:
    """The raw state trajectory (n_samples, state dim) of a simulated card (no observation map, no noise)."""
    s, integ = c["sampling"], c["integration"]
    return systems.simulate(
        c["system"], c["parameters"], dt=float(s["dt"]), n_samples=n_samples,
        transient=int(s["transient"]), seed=seed, rtol=float(integ.get("rtol", 1e-10)),
        atol=float(integ.get("atol", 1e-10)), substeps=int(integ.get("substeps", 4)),
    )


def observe_card(c: dict, *, n_samples: int, seed: int, noise: float = 0.0, forcing: str | None = None):
    """Simulate a card and apply its observation map -> (x (n_samples, N), dims, s or None, input names,
    provenance entries). The map: ``observe`` keeps named state channels (partial observation);
    ``[forcing]`` turns the phase θ into cos θ, sin θ (observed channels with mode "phase", and always the
    input ``s``); ``[embedding]`` delay-embeds a scalar series; then observation noise is added."""
    margin = _embedding_margin(c)
    raw = simulate_card(c, n_samples=n_samples + margin, seed=seed)
    state_dims = list(systems.system_dims(c["system"]))
    prov = [{"step": "simulate", "system": c["system"], "seed": int(seed),
             "transient": int(c["sampling"]["transient"]), "n_samples": int(n_samples + margin)}]
    s, inputs = None, None
    dims = state_dims
    if "forcing" in c:
        mode = forcing or c["forcing"].get("mode", "phase")
        if mode not in ("phase", "input"):
            raise ConfigError(f"forcing must be 'phase' or 'input', got {mode!r}")
        k = state_dims.index(c["forcing"].get("phase_dim", "phase"))
        th = raw[:, k]
        s, inputs = np.stack([np.cos(th), np.sin(th)], axis=1), ["cos_wt", "sin_wt"]
        keep = [i for i in range(raw.shape[1]) if i != k]
        raw, dims = raw[:, keep], [state_dims[i] for i in keep]
        if mode == "phase":
            raw, dims = np.concatenate([raw, s], axis=1), dims + inputs
        prov.append({"step": "forcing", "mode": mode, "phase": state_dims[k], "inputs": inputs})
    if "observe" in c:
        missing = [d for d in c["observe"] if d not in dims]
        if missing:
            raise DataError(f"card {c['name']!r}: observe lists {missing}, which are not channels of "
                            f"{c['system']} ({', '.join(dims)})")
        idx = [dims.index(d) for d in c["observe"]]
        raw, dims = raw[:, idx], list(c["observe"])
        prov.append({"step": "observe", "channels": dims})
    if noise:
        raw = add_observation_noise(raw, noise, seed)
        prov.append({"step": "observation_noise", "std_fraction": float(noise), "seed": [int(seed), 1]})
    if margin:
        e = c["embedding"]
        raw = delay_embedding(raw[:, 0], int(e["dim"]), int(e["delay"]))
        dims = list(c.get("dims") or [f"x{k}" for k in range(int(e["dim"]))])
        prov.append({"step": "delay_embed", "emb_dim": int(e["dim"]), "delay": int(e["delay"])})
        if s is not None:
            s = s[: len(raw)]
    return raw, dims, s, inputs, prov


def _card_attrs(c: dict) -> dict:
    ref = c.get("reference", {})
    return {
        "name": c["name"],
        "kind": c.get("kind", ""),
        "card": c.get("_card_path", c["name"]),
        "card_version": int(c.get("version", 0)),
        "description": c.get("description", ""),
        "units": c.get("units", ""),
        "time_units": c.get("time_units", ""),
        "parameters": json.dumps(c.get("parameters", {})),
        "lambda_ref": float(ref.get("lambda_max", np.nan)),
        "lambda_ref_source": ref.get("source", ""),
    }


def _load_simulated(c, *, seed, noise, cache, n_train, n_test, forcing, preprocess) -> xr.Dataset:
    s = c["sampling"]
    seed = int(s.get("seed", 0) if seed is None else seed)
    noise = _check_noise(c.get("noise", {}).get("observation", 0.0) if noise is None else noise)
    n_train = int(s["n_train"] if n_train is None else n_train)
    n_test = int(s["n_test"] if n_test is None else n_test)
    if n_train < 2 or n_test < 0:
        raise ConfigError(f"n_train must be >= 2 and n_test >= 0, got {n_train}, {n_test}")
    steps = list(c.get("preprocess", []) if preprocess is None else preprocess)
    tag = ""
    if noise:
        tag += f"-noise{noise:g}"
    if forcing and "forcing" in c and forcing != c["forcing"].get("mode", "phase"):
        tag += f"-{forcing}"
    if steps != list(c.get("preprocess", [])):
        tag += "-pp" + hashlib.sha256(json.dumps(steps, sort_keys=True).encode()).hexdigest()[:10]
    if int(s["transient"]) != int(card(c.get("_card_path", c["name"]))["sampling"]["transient"]):
        tag += f"-tr{int(s['transient'])}"
    fname = f"{c['name']}-v{c['version']}-seed{seed}-{n_train}+{n_test}{tag}.nc"
    path = cache_dir() / fname
    if cache and path.exists():
        try:
            return read_netcdf(path)
        except Exception:  # a corrupt cache entry is regenerated, never trusted
            path.unlink(missing_ok=True)
    raw, dims, inp, inputs, prov = observe_card(c, n_samples=n_train + n_test, seed=seed, noise=noise,
                                                forcing=forcing)
    integ = c["integration"]
    how = (f"rtol={integ['rtol']}, atol={integ['atol']}" if "rtol" in integ
           else f"h = dt/{integ.get('substeps', 4)}")
    attrs = {**_card_attrs(c), "source": f"simulated: {c['system']} integrated by {integ['method']}, {how}",
             "seed": seed, "noise": noise, "transient": int(s["transient"]), "n_train": n_train,
             "provenance": json.dumps(prov)}
    if "forcing" in c:
        attrs["forcing"] = forcing or c["forcing"].get("mode", "phase")
    ds = _make_dataset(raw, dt=s["dt"], dims=dims, attrs=attrs, s=inp, inputs=inputs)
    ds = pp.standardize(pp.apply(ds, steps))
    if cache:
        write_netcdf(ds, path)
    return ds


def _embed_step(embed) -> dict:
    if embed == "auto":
        return {"step": "delay_embed", "emb_dim": "auto", "delay": "auto"}
    try:
        m, d = embed
        return {"step": "delay_embed", "emb_dim": int(m), "delay": int(d)}
    except (TypeError, ValueError):
        raise ConfigError(f"embed must be None, 'auto' or (emb_dim, delay), got {embed!r}") from None


# ---------------------------------------------------------------------------------------- user files
def _format(path: Path) -> str:
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(sorted(FILE_FORMATS))} "
                        f"(time first, one column per channel)")
    return fmt


# The one loader mechanism. Every read of a user's file (and of a downloaded recording) happens inside
# ``_reading(path, fmt)``: whatever the OS, a decoder, HDF, zip/zlib, numpy's format reader, pandas or edfio
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


def _reason(err: BaseException) -> str:
    """A library's error as a short reason; never its advice to load pickled data unsafely."""
    text = (str(err).strip().splitlines() or [""])[0]
    if _UNSAFE.search(text):
        return "it holds pickled Python objects or is not an array file at all; dsrecon never unpickles data"
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextmanager
def _reading(path, fmt: str):
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
        raise _unreadable(path, fmt, _reason(err)) from None


def _check_is_file(path: Path) -> None:
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a data file; name a file in it (.csv, .npy, .nc, ...)")
    if not path.is_file():
        raise DataError(f"no such file: {path}")


def _check_signature(path: Path, fmt: str) -> None:
    """Refuse a file whose first bytes are not its format's signature (a text file renamed .npy, ...)."""
    with _reading(path, fmt), open(path, "rb") as fh:
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
    from numpy.lib import format as npformat

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
    with _reading(path, fmt):
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
    with _reading(path, "table"):     # csv's and the decoder's errors too
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
        import edfio
    except ImportError:
        raise DataError("reading EDF files needs the optional extra: pip install dsrecon[edf]") from None
    return edfio


def peek_channels(path) -> list[str]:
    """Channel names of a file as :func:`load` reads it with default options (time column excluded),
    reading only the header where the format allows."""
    path = Path(path)
    _check_is_file(path)
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
        with _reading(path, fmt), xr.open_dataset(path) as ds:
            return [str(v) for v in ds["dim"].values] if "x" in ds and "dim" in ds["x"].dims else list(map(str, ds.data_vars))
    edfio = _edf_reader()
    with _reading(path, fmt):
        return [sig.label for sig in edfio.read_edf(path, lazy_load_data=True).signals]


def _select(names: list[str], columns, path) -> list[int]:
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


def _parse_time(values, name: str, path) -> tuple[np.ndarray, str, str | None]:
    """A time column -> (seconds or numbers as float, units, start as ISO text or None)."""
    import pandas as pd

    num = pd.to_numeric(pd.Series(values), errors="coerce")
    if num.notna().all():
        return num.to_numpy(dtype=float), "", None
    for fmt in DATE_FORMATS:
        try:
            t = pd.to_datetime(pd.Series(values), format=fmt)
        except (ValueError, TypeError):
            continue
        t = t.to_numpy()
        return (t - t[0]) / np.timedelta64(1, "s"), "s", str(np.datetime_as_string(t[0], unit="s"))
    bad = int(np.argmax(num.isna().to_numpy()))
    raise DataError(f"{path}: time column {name!r} is neither numeric nor a date (sample {bad}: "
                    f"{values[bad]!r}); dates must look like 2009-01-01 00:10:00 or 01.01.2009 00:10:00")


def _regular_time(t: np.ndarray, dt: float | None, name: str, path, interpolate: bool):
    """Check a time column: increasing and evenly spaced (gaps allowed only with ``interpolate``).
    Returns (dt, grid or None); grid is the regular time grid to interpolate onto."""
    d = np.diff(t)
    if len(d) == 0:
        return (1.0 if dt is None else dt), None
    dup = np.nonzero(d == 0)[0]
    back = np.nonzero(d < 0)[0]
    if back.size:
        i = back[0] + 1
        raise DataError(f"{path}: time column {name!r} goes backwards at sample {i} (t = {t[i]:g} after {t[i - 1]:g}; "
                        f"{back.size} places); sort the file by time, or pass interpolate=True (sorts, then regrids)")
    if dup.size and not interpolate:
        raise DataError(f"{path}: time column {name!r} repeats t = {t[dup[0]]:g} at sample {dup[0] + 1} ({dup.size} "
                        f"duplicate samples); remove them, or pass interpolate=True (keeps the first of each)")
    step = float(np.median(d[d > 0]))
    if dt is not None and abs(dt - step) > 1e-6 * step:
        raise DataError(f"{path}: dt = {dt} disagrees with the time column {name!r}, whose median step is {step:g}; "
                        f"drop --dt or fix the time column")
    ok = np.isclose(d, step, rtol=1e-6, atol=0) | (d == 0)
    if ok.all() and not dup.size:
        return (t[-1] - t[0]) / (len(t) - 1), None      # the mean step: free of the stamps' rounding
    if ok.all():
        return step, (None if not dup.size else t[0] + step * np.arange(int(round((t[-1] - t[0]) / step)) + 1))
    bad = np.nonzero(~ok)[0]
    gaps = bad[np.isclose(d[bad] / step, np.round(d[bad] / step), rtol=1e-6, atol=1e-6) & (d[bad] > step)]
    if not interpolate:
        irregular = [i for i in bad if i not in set(gaps)]
        if irregular:
            i = irregular[0]
            raise DataError(f"{path}: time column {name!r} is not evenly spaced: step {d[i]:g} at sample {i + 1} "
                            f"(t = {t[i + 1]:g}) where the median step is {step:g} ({len(irregular)} such steps); "
                            f"resample the recording, or pass interpolate=True to put it on a regular grid")
        i = gaps[0]
        raise DataError(f"{path}: {gaps.size} gap(s) in time column {name!r}, the first before sample {i + 1} "
                        f"(t = {t[i + 1]:g}: {round(d[i] / step) - 1} missing samples of step {step:g}); pass "
                        f"interpolate=True to fill them linearly, or cut the recording")
    n = int(np.floor((t[-1] - t[0]) / step + 1e-6)) + 1
    return step, t[0] + step * np.arange(n)


def _fill_nans(x: np.ndarray, names, path, interpolate: bool) -> tuple[np.ndarray, int]:
    bad = ~np.isfinite(x)
    if not bad.any():
        return x, 0
    if not interpolate:
        c = int(np.nonzero(bad.any(axis=0))[0][0])
        rows = np.nonzero(bad[:, c])[0]
        where = ", ".join(str(r) for r in rows[:5]) + (", ..." if rows.size > 5 else "")
        raise DataError(f"{path}: channel {names[c]!r} has {rows.size} NaN/missing values at sample(s) {where} "
                        f"({int(bad.sum())} in all channels); pass interpolate=True to fill them linearly, or "
                        f"clean the file")
    idx = np.arange(len(x))
    for c in range(x.shape[1]):
        good = ~bad[:, c]
        if good.sum() < 2:
            raise DataError(f"{path}: channel {names[c]!r} has fewer than 2 valid values; drop it (columns=[...])")
        x[:, c] = np.interp(idx, idx[good], x[good, c])
    return x, int(bad.sum())


OUTLIER_SCALES = 1e6    # a value this many robust spreads (1.4826 MAD) from its channel's median is no measurement
HUGE = 1e150            # beyond this, squares overflow and standardisation fails


def _check_values(x: np.ndarray, names, t, path) -> None:
    """Refuse ±inf and values beyond any plausible scale (a corrupt cell, a sentinel such as 1e300), each
    named with its channel, first sample (and time) and count, before any work: such a value would pass
    the NaN check, overflow the standardisation and end in a false diagnosis after training."""
    def where(i):
        return f"sample {i}" + ("" if t is None else f", t = {t[i]:g}")

    inf = np.isinf(x)
    if inf.any():
        c = int(np.nonzero(inf.any(axis=0))[0][0])
        rows = np.nonzero(inf[:, c])[0]
        raise DataError(f"{path}: channel {names[c]!r} has {rows.size} infinite value(s) ({x[rows[0], c]:+g} at "
                        f"{where(rows[0])}; {int(inf.sum())} in all channels); infinity is no measurement: clean the "
                        f"file, or write those cells as NaN (empty) and pass interpolate=True (--interpolate)")
    for c in range(x.shape[1]):
        v = x[:, c]
        ok = np.isfinite(v)
        if not ok.any():
            continue
        med = float(np.median(v[ok]))
        dev = np.abs(v - med)
        mad = float(np.median(dev[ok]))
        scale = 1.4826 * mad if mad > 0 else float(np.mean(dev[ok]))
        with np.errstate(invalid="ignore"):
            bad = ok & ((np.abs(v) > HUGE) | (dev > OUTLIER_SCALES * scale) if scale > 0 else (np.abs(v) > HUGE))
        if bad.any():
            rows = np.nonzero(bad)[0]
            raise DataError(f"{path}: channel {names[c]!r} has {rows.size} value(s) beyond any plausible scale "
                            f"({v[rows[0]]:g} at {where(rows[0])}; the channel's median is {med:.4g} and its robust "
                            f"spread {scale:.3g}); a corrupt cell or a missing-value code? clean the file, or write "
                            f"those cells as NaN (empty) and pass interpolate=True (--interpolate)")


def read_file(path, *, columns=None, time_column=None, dt: float | None = None, interpolate: bool = False,
              check: bool = True) -> tuple[np.ndarray, list[str], dict]:
    """Read a recording -> (values (T, N) float64, channel names, info) with info keys dt, time (or None),
    time_units, start, format, filled (number of interpolated values).

    Formats by suffix: .csv/.tsv/.txt/.dat (a header line optional; the delimiter -- ``,`` ``;`` tab or
    whitespace -- and a decimal comma are detected from the lines, not the suffix, and recorded in
    ``info["table"]``; every row must have as many fields as the header; a time column by name or
    ``time_column``; dates in ISO 8601 or "dd.mm.yyyy HH:MM:SS"), .npy (header checked, then read
    memory-mapped; only the selected columns are copied), .npz (the array ``x``, or the only one), netCDF
    (variable ``x`` (time, dim) as written by dsrecon, else the selected 1-d variables along their common
    dimension), .edf (EDF/EDF+ via ``edfio``, an optional extra; channels must share one sampling rate).
    Pickled data are never loaded. ``check=False`` skips the NaN / length / constant checks (the ``lyap``
    command does its own); ±inf and values beyond any plausible scale (more than 1e6 robust spreads from the
    channel's median, or beyond 1e150) are refused either way.
    Raises: DataError, one line: missing file, unknown type, a file that is not what its suffix says
    (truncated, garbage, text renamed .npy; see ``_reading``), a scalar, complex, object or >2-d array, an
    .npz with several arrays and none named x, a row wider or narrower than the header, unknown or repeated
    column, non-numeric column, a bad time column (not increasing, duplicates, irregular steps, gaps), ±inf,
    implausible values, NaNs (unless ``interpolate``), too few samples, a constant channel.
    """
    path = Path(path)
    _check_is_file(path)
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
        idx = _select(names, columns, path)
        with _reading(path, fmt):
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
        step, grid = _regular_time(t, dt, tname, path, interpolate)
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
    _check_values(x, names, info["time"], path)
    if len(x) == 0:
        raise DataError(f"{path}: no samples (a header without data rows, or an empty array); a time series needs "
                        f"one row per sample, time first")
    if check:
        x, filled = _fill_nans(x, names, path, interpolate)
        info["filled"] += filled
        if len(x) < MIN_SAMPLES:
            raise DataError(f"{path}: only {len(x)} samples; a reconstruction needs at least {MIN_SAMPLES} "
                            f"(plus what the embedding and the forcing interval tau use)")
        flat = [names[i] for i in np.nonzero(np.ptp(x, axis=0) == 0)[0]]
        if flat:
            raise DataError(f"{path}: channel(s) {', '.join(map(repr, flat))} are constant: they carry no dynamics; "
                            f"select the others with columns=[...]")
    return x, names, info


def _read_table(path: Path, columns, time_column, info):
    import io

    import pandas as pd

    layout = _table_layout(path, full=True)
    header = layout["header"]
    all_names = [f"c{i}" for i in range(layout["n_fields"])] if header is None else header
    if len(set(all_names)) != len(all_names):
        dup = next(h for h in all_names if all_names.count(h) > 1)
        raise DataError(f"{path}: the header names column {dup!r} more than once; give each column its own name")
    if time_column is None:
        tcol = next((h for h in all_names if h.strip().lower() in TIME_COLUMN_NAMES), None)
    elif isinstance(time_column, (int, np.integer)):
        tcol = all_names[_select(all_names, [int(time_column)], path)[0]]
    else:
        tcol = all_names[_select(all_names, [time_column], path)[0]]
    data_names = [h for h in all_names if h != tcol]
    idx = _select(data_names, columns, path)
    names = [data_names[i] for i in idx]
    use = names + ([tcol] if tcol is not None else [])
    with _reading(path, "table"):   # numbers are parsed as floats directly; the time column is kept as text
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
        t, info["time_units"], info["start"] = _parse_time(stamps, tcol, path)
    info["table"] = {"delimiter": {None: "whitespace", "\t": "tab"}.get(layout["sep"], layout["sep"]),
                     "decimal": layout["decimal"], "encoding": layout["encoding"]}
    return x, names, t, tcol, info


def _read_netcdf_file(path: Path, columns, info):
    _check_signature(path, "netcdf")
    with _reading(path, "netcdf"), xr.open_dataset(path) as ds:
        if "x" in ds and ds["x"].ndim == 2 and "time" in ds["x"].dims:
            da = ds["x"].transpose("time", ...)
            _check_array(path, da.dtype, da.shape, " (variable 'x')")
            other = [d for d in da.dims if d != "time"][0]
            names = [str(v) for v in da[other].values] if other in da.coords else [f"c{i}" for i in range(da.shape[1])]
            idx = _select(names, columns, path)
            x = np.asarray(da.isel({other: idx}).values, dtype=np.float64)
            names = [names[i] for i in idx]
        else:
            vars1 = [v for v in ds.data_vars if ds[v].ndim == 1]
            if not vars1:
                raise DataError(f"{path}: no variable 'x' (time, dim) and no 1-d variables to use as channels; "
                                f"{_HOW['netcdf']}")
            idx = _select(vars1, columns, path)
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
    with _reading(path, "edf"):
        edf = edfio.read_edf(path, lazy_load_data=True)    # samples are read per selected channel below
    signals = [sig for sig in edf.signals]
    names = [sig.label for sig in signals]
    idx = _select(names, columns, path)
    chosen = [signals[i] for i in idx]
    rates = sorted({float(sig.sampling_frequency) for sig in chosen})
    if len(rates) != 1:
        raise DataError(f"{path}: the selected channels have different sampling rates {rates} Hz; select channels "
                        f"of one rate with columns=[...]")
    with _reading(path, "edf"):
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


def _load_recording(c: dict, path: Path, *, columns, time_column, dt, interpolate, embed, preprocess,
                    train_fraction, noise, seed) -> xr.Dataset:
    """A recorded series (a user file or a download card's file) -> preprocessed, standardized Dataset."""
    rd = dict(c.get("read", {}))
    columns = rd.get("columns") if columns is None else columns
    time_column = rd.get("time_column") if time_column is None else time_column
    dt = rd.get("dt") if dt is None else dt
    interpolate = bool(rd.get("interpolate", False)) or interpolate
    seed = 0 if seed is None else int(seed)
    noise = _check_noise(0.0 if noise is None else noise)
    steps = list(c.get("preprocess", []) if preprocess is None else preprocess)
    if embed is not None:
        steps.append(_embed_step(embed))
    with _reading(path, FILE_FORMATS.get(path.suffix.lower(), "table")):
        sha = _sha256(path)
    cached = None
    if steps:   # preprocessing (GHKSS above all) is what costs: cache by file content, card and options
        key = json.dumps([c.get("version", 0), columns, time_column, dt, interpolate, seed, noise, steps,
                          train_fraction, c.get("split", {})], sort_keys=True, default=str)
        cached = cache_dir() / "recordings" / (f"{c['name']}-{sha[:16]}-"
                                                f"{hashlib.sha256(key.encode()).hexdigest()[:12]}.nc")
        if cached.is_file():
            try:
                return read_netcdf(cached)
            except Exception:  # a corrupt cache entry is rebuilt, never trusted
                cached.unlink(missing_ok=True)
    x, names, info = read_file(path, columns=columns, time_column=time_column, dt=dt, interpolate=interpolate)
    prov = [{"step": "read", "file": str(path), "format": info["format"], "columns": names, "sha256": sha,
             "dt": info["dt"], "start": info["start"], "interpolated_values": info["filled"],
             "reordered_samples": info.get("reordered", 0), **info.get("table", {}),
             **({"array": info["array"]} if "array" in info else {})}]
    if noise:
        x = add_observation_noise(x, noise, seed)
        prov.append({"step": "observation_noise", "std_fraction": noise, "seed": [seed, 1]})
    frac = float(c.get("split", {}).get("train_fraction", TRAIN_FRACTION) if train_fraction is None else train_fraction)
    if not 0 < frac <= 1:
        raise ConfigError(f"train_fraction must be in (0, 1], got {frac}")
    t = info["time"] if info["time"] is not None else None
    attrs = {**_card_attrs(c), "units": c.get("units", ""), "time_units": info["time_units"] or c.get("time_units", "samples"),
             "source": c.get("source", f"file {path.name}"), "seed": seed, "noise": noise,
             "n_train": max(2, int(frac * len(x))), "provenance": json.dumps(prov)}
    if info["start"]:
        attrs["start"] = info["start"]
    ds = _make_dataset(x, dt=info["dt"], dims=names, attrs=attrs, time=None if t is None else t - t[0])
    ds = pp.apply(ds, steps)
    if ds.sizes["time"] < MIN_SAMPLES:
        raise DataError(f"{path}: {ds.sizes['time']} samples are left after preprocessing "
                        f"({', '.join(s['step'] for s in steps) or 'none'}); a reconstruction needs at least "
                        f"{MIN_SAMPLES}; use a longer recording or a smaller embedding/subsampling")
    ds.attrs["n_train"] = max(2, int(frac * ds.sizes["time"]))
    ds = pp.standardize(ds)
    if cached is not None:
        write_netcdf(ds, cached)
    return ds


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------- downloads
def _sha_file(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def fetch(name, *, data_dir=None, download: bool = True) -> Path:
    """Path of a download card's recording, fetching it with pooch if it is not in the data directory.

    The card's ``[file]`` table gives ``url``, ``filename`` (what is stored), optionally ``member`` (the file
    inside a zip archive) and ``sha256``. A file already in the data directory (``data_dir``, else
    $DSRECON_DATA_DIR, else <cache dir>/downloads) is used if its SHA-256 matches; a file placed there by hand
    is accepted under either the archive's or the member's name. If the card pins no hash, the hash of the first
    copy that proves readable (the archive extracts, the recording's header reads) is recorded in
    ``<filename>.sha256`` next to it and later loads must match it (trust on first use); a copy that fails
    verification or extraction is never recorded, and a failed extraction leaves no partial file.
    Raises: DataError, one line, when the download fails (offline: which file to place where), a hash
    does not match, the archive is corrupt (delete it and fetch again) or the data directory is unusable.
    """
    c = card(name) if not isinstance(name, dict) else name
    if c.get("kind") != "download":
        raise DataError(f"dataset {c.get('name')!r} is not a download (kind = {c.get('kind')!r}); nothing to fetch")
    f = c["file"]
    folder = data_directory(data_dir)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"the data directory {folder} is a file, not a folder; pass --data-dir DIR (a folder) or set "
                        f"DSRECON_DATA_DIR")
    archive = folder / f["filename"]
    member = folder / f["member"] if f.get("member") else None
    want = (f.get("sha256") or "").lower() or None
    for candidate, pinned in ((member, f.get("member_sha256")), (archive, want)):
        if candidate is not None and candidate.is_file():
            pinned = (pinned or "").lower() or None
            _verify(candidate, pinned)
            path = _unzip(archive, member) if candidate == archive and member is not None else candidate
            if pinned is None:
                _trust_first_use(candidate, path)
            return path
    if not download:
        raise DataError(_place_hint(c, folder))
    import pooch

    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the data directory {folder} ({err.strerror or type(err).__name__}); pass "
                        f"--data-dir DIR (a writable folder) or set DSRECON_DATA_DIR") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"the data directory {folder} is not writable; pass --data-dir DIR (a writable folder) or set "
                        f"DSRECON_DATA_DIR")
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")                # keep the one-line contract: no "Downloading ..." chatter
    try:
        try:
            path = Path(pooch.retrieve(f["url"], known_hash=None if want is None else f"sha256:{want}",
                                       fname=f["filename"], path=folder, progressbar=False))
        except ValueError as err:            # pooch: hash mismatch (the download is deleted by pooch)
            raise DataError(f"{f['filename']} from {f['url']}: {str(err).splitlines()[0]}") from None
        except Exception as err:              # requests' connection errors and HTTP errors: offline or moved
            raise DataError(f"cannot download {f['filename']} ({type(err).__name__}); " + _place_hint(c, folder)) from None
        finally:
            logger.setLevel(level)
        removed = "the download was removed: fetch again"
        try:
            _verify(path, want, fix=removed)
            out = _unzip(path, member, fix=removed) if member is not None else path
            if want is None:
                _trust_first_use(path, out, fix=removed)
        except DataError:   # a copy that failed verification is not kept to fail again, nor what came out of it
            path.unlink(missing_ok=True)
            if member is not None:
                member.unlink(missing_ok=True)   # absent before this download (else it was used above)
            raise
        return out
    except DataError:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()                   # a failed fetch leaves the file system as it found it
        raise


def _place_hint(c: dict, folder: Path) -> str:
    f = c["file"]
    names = f["filename"] + (f" (or the unzipped {f['member']})" if f.get("member") else "")
    return (f"dataset {c['name']!r} needs {names} from {f['url']}: place it in {folder} (or pass "
            f"--data-dir DIR / set DSRECON_DATA_DIR)")


def _verify(path: Path, want: str | None, *, fix: str = "delete it and fetch again") -> None:
    """Check ``path`` against the pinned hash ``want``, else against the hash recorded on first use (if any).
    Records nothing: see :func:`_trust_first_use`."""
    with _reading(path, "zip" if path.suffix.lower() == ".zip" else FILE_FORMATS.get(path.suffix.lower(), "table")):
        got = _sha256(path)
    rec = _sha_file(path)
    if want is None:
        if not rec.is_file():
            return
        want = (rec.read_text().split() or [""])[0].lower()
        if got != want:
            raise DataError(f"{path}: SHA-256 {got[:16]}... does not match {want[:16]}..., recorded in {rec.name} when "
                            f"it was first used; the file is corrupt or a different version: {fix} (delete "
                            f"{rec.name} too only if you trust a changed file)")
    if got != want:
        raise DataError(f"{path}: SHA-256 {got[:16]}... does not match the expected {want[:16]}...; the file is "
                        f"corrupt or a different version: {fix}")


def _trust_first_use(path: Path, readable: Path, *, fix: str = "delete it and fetch again") -> None:
    """Record the SHA-256 of an unpinned ``path`` once it has proven usable: ``readable`` (the file itself or
    the member extracted from it) must open and list its channels. A corrupt copy is never recorded, so
    deleting it and fetching again works."""
    rec = _sha_file(path)
    if rec.is_file():
        return
    try:
        peek_channels(readable)
    except DataError as err:
        raise DataError(f"{err} (the copy of {path.name} in {path.parent} is unusable: {fix})") from None
    got = _sha256(path)
    tmp = rec.with_name(rec.name + ".tmp")
    try:
        tmp.write_text(f"{got}  {path.name}\n")
        os.replace(tmp, rec)
    except OSError:        # a read-only data directory: the copy is still usable, only unrecorded
        tmp.unlink(missing_ok=True)


def _unzip(archive: Path, member: Path, *, fix: str = "delete it and fetch again") -> Path:
    """Extract ``member`` from ``archive`` (once); a corrupt archive (bad zip, CRC, deflate stream) is a DataError
    naming the archive, and the partial ``.part`` file is removed."""
    if member.is_file():
        return member
    tmp = member.with_name(member.name + ".part")
    try:
        with zipfile.ZipFile(archive) as z, z.open(member.name) as src, open(tmp, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                dst.write(block)
        os.replace(tmp, member)
    except KeyError:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{archive}: the archive has no member {member.name!r}; it is a different file: {fix}") from None
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot extract {member.name} from {archive} into {member.parent} "
                        f"({err.strerror or type(err).__name__}); free space or pass --data-dir DIR") from None
    except Exception as err:  # noqa: BLE001 -- zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError
        tmp.unlink(missing_ok=True)
        raise DataError(f"{archive}: cannot extract {member.name} ({_reason(err)}); the archive is corrupt: {fix}") from None
    return member


def data_fingerprint(dataset: xr.Dataset) -> str:
    """SHA-256 (hex) of a loaded dataset's content: its dims and sizes, channel (and input) names, ``dt``, and the
    values of ``x`` (and of the input ``s``, if any) as little-endian float64 bytes in C order, so the same data
    give the same fingerprint on every platform. Attributes other than ``dt`` (provenance, source, ...) are not
    part of it: two routes to identical numbers share a fingerprint. Used by a run to record what it was fitted
    on and to refuse re-scoring on data that changed since."""
    if not isinstance(dataset, xr.Dataset) or "x" not in dataset:
        raise DataError(f"data_fingerprint needs a dataset from dsrecon.load (an xarray.Dataset with variable 'x'), "
                        f"got {type(dataset).__name__}")
    h = hashlib.sha256()
    meta = {"dims": {str(k): int(v) for k, v in dataset["x"].sizes.items()},
            "channels": [str(v) for v in dataset["dim"].values] if "dim" in dataset.coords else [],
            "dt": float(dataset.attrs.get("dt", np.nan)).hex()}
    if "s" in dataset:
        meta["inputs"] = [str(v) for v in dataset["input"].values] if "input" in dataset.coords else []
        meta["input_dims"] = {str(k): int(v) for k, v in dataset["s"].sizes.items()}
    h.update(json.dumps(meta, sort_keys=True).encode())
    for var in ("x", "s"):
        if var in dataset:
            h.update(np.ascontiguousarray(dataset[var].values, dtype="<f8").tobytes())
    return h.hexdigest()


def train_test_split(ds: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """Split at ``attrs['n_train']``: the test split continues the training orbit."""
    n = int(ds.attrs["n_train"])
    return ds.isel(time=slice(0, n)), ds.isel(time=slice(n, None))


def independent_trajectory(ds: xr.Dataset, n_steps: int, *, seed: int) -> xr.Dataset:
    """A fresh orbit of the same system (another initial condition), standardized like ``ds``.

    Used for noise floors: the score between two independent true trajectories of the same length. The
    same observation map, observation-noise level and card preprocessing are applied. A recording has no
    second orbit: its stand-in is the last ``n_steps`` samples of the training split (all of it if shorter),
    and ``attrs['noise_floor_source']`` says so.
    """
    kind = ds.attrs.get("kind", "ode")
    if kind not in ("ode", "dde"):
        train, _ = train_test_split(ds)
        out = train.isel(time=slice(max(0, train.sizes["time"] - int(n_steps)), None))
        out.attrs = {k: v for k, v in ds.attrs.items() if k != "n_train"}
        out.attrs["noise_floor_source"] = "the end of the training split (a recording has no independent orbit)"
        return out
    c = card(ds.attrs.get("card", ds.attrs["name"]))
    if "transient" in ds.attrs:
        c = {**c, "sampling": {**c["sampling"], "transient": int(ds.attrs["transient"])}}
    forcing = ds.attrs.get("forcing") or None
    raw, dims, s, inputs, _ = observe_card(c, n_samples=n_steps, seed=seed, noise=float(ds.attrs.get("noise", 0.0)),
                                           forcing=forcing)
    attrs = {k: v for k, v in ds.attrs.items() if k != "n_train"}
    attrs["seed"] = seed
    fresh = pp.apply(_make_dataset(raw, dt=float(c["sampling"]["dt"]), dims=dims, attrs=attrs, s=s, inputs=inputs),
                     c.get("preprocess", []))
    x = (fresh["x"].values - np.asarray(ds.attrs["mean"])) / np.asarray(ds.attrs["std"])
    return _make_dataset(x, dt=ds.attrs["dt"], dims=ds["dim"].values, attrs=attrs,
                         s=None if "s" not in fresh else fresh["s"].values, inputs=inputs)


def to_physical(ds: xr.Dataset) -> xr.Dataset:
    """Undo the standardization: x * std + mean (units of the original recording)."""
    out = ds.copy()
    out["x"] = ds["x"] * xr.DataArray(np.asarray(ds.attrs["std"]), dims="dim") + xr.DataArray(
        np.asarray(ds.attrs["mean"]), dims="dim"
    )
    out.attrs["standardized"] = 0
    return out


def as_array(x, *, what: str = "data", allow_nonfinite: bool = False) -> np.ndarray:
    """A (T, N) float array from an xr.Dataset (variable ``x``), a DataArray, a torch tensor or an
    array; a 1-d series becomes (T, 1). NaN/inf raise a DataError naming the count and the first
    index, unless ``allow_nonfinite`` (metrics accept a diverged generated run and report it)."""
    if isinstance(x, xr.Dataset):
        if "x" not in x:
            raise DataError(f"{what}: xarray.Dataset has no variable 'x' (variables: {list(x.data_vars)})")
        x = x["x"].values
    elif isinstance(x, xr.DataArray):
        x = x.values
    elif hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{what}: expected a numeric array, got {type(x).__name__}") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{what}: expected shape (time, dim), got {arr.shape}")
    if not allow_nonfinite:
        bad = ~np.isfinite(arr)
        if bad.any():
            first = int(np.argwhere(bad)[0, 0])
            raise DataError(
                f"{what}: {int(bad.sum())} NaN/inf values (first at time index {first}); "
                "fill or drop them first, e.g. data.interpolate_na('time')"
            )
    return arr


def load_for(data_config) -> xr.Dataset:
    """The dataset a run was fitted on, from its :class:`dsrecon.config.DataConfig` or the ``data`` section
    of its config.json: the same name, seed and load options (noise, columns, dt, ...), so that re-scoring
    and figures see exactly the training data's channels."""
    from .config import DataConfig

    dc = data_config if isinstance(data_config, DataConfig) else DataConfig(**data_config)
    return load(dc.name, seed=dc.seed, **dc.load_options())


# ---------------------------------------------------------------------------------------- true equations
def true_spectrum(dataset_name: str, *, n_steps: int = 10_000, transient: int = 1000, n_init: int = 3,
                  substeps: int = 10, seed: int = 0, **kwargs) -> LyapunovSpectrum:
    """Lyapunov spectrum of a simulated dataset's true equations: the ground truth for λ from data and for
    trained models.

    Reads the system, its parameters and the sampling interval dt from the dataset card
    (:func:`card`), wraps the vector field as a Model (:class:`dsrecon.systems.FlowModel`: RK4
    with ``substeps`` per sample, Jacobian by autograd) and runs :func:`dsrecon.lyapunov.lyapunov_spectrum` from ``n_init``
    initial conditions on the attractor (integrated by :func:`dsrecon.systems.simulate` with seeds
    seed, seed + 1, ...), with ``dt`` set so that ``per_time`` is in the card's time units. Extra keyword
    arguments go to :func:`dsrecon.lyapunov.lyapunov_spectrum`.

    A delay-differential card (kind "dde", Mackey-Glass) goes through :func:`_true_spectrum_dde`: the
    method-of-steps map :class:`dsrecon.systems.DelayMap` of the card's integrator, whose state is the history
    buffer (hundreds of values), so only the leading ``k`` exponents (default 3) are computed.

    Raises DataError for a dataset without equations (a recorded series). Pitfalls: the spectrum is that
    of the RK4 map, which approaches the flow's as dt/substeps → 0 (its sum equals −(σ + 1 + β) for Lorenz
    to O((dt/substeps)^4)); the neutral exponent converges like 1/n_steps; the card's data are standardised,
    which does not change exponents. Cost: autograd Jacobians of the RK4 map, about 1–3 ms per step.
    Reference: Benettin et al. 1980; "Lyapunov spectra of chaotic RNNs" App. A; Wolf et al. 1985 for
    Lorenz (1.50, 0, −22.46).
    """
    c = card(dataset_name)
    if c.get("kind") == "dde" and "system" in c:
        return _true_spectrum_dde(c, n_steps=n_steps, transient=transient, n_init=n_init, seed=seed, **kwargs)
    if c.get("kind") != "ode" or "system" not in c:
        raise DataError(f"dataset {dataset_name!r} has no true equations (kind = {c.get('kind')!r}); true_spectrum "
                        f"needs a simulated dataset")
    dt = float(c["sampling"]["dt"])
    params = dict(c.get("parameters", {}))
    flow = systems.FlowModel(c["system"], params, dt=dt, substeps=substeps)
    z0 = np.concatenate([systems.simulate(c["system"], params, dt=dt, n_samples=1,
                                          transient=int(c["sampling"].get("transient", 10_000)), seed=seed + i)
                         for i in range(int(n_init))])
    return lyapunov_spectrum(flow, n_steps=n_steps, transient=transient, z0=z0, dt=dt, seed=seed, **kwargs)


def _true_spectrum_dde(c: dict, *, n_steps: int, transient: int, n_init: int, seed: int, **kwargs) -> LyapunovSpectrum:
    """Leading exponents of a delay card's true equation: QR on the method-of-steps map with the card's step
    h = dt / substeps, from ``n_init`` history buffers on the attractor (integrated from constant histories
    with seeds seed, seed + 1, ...). The state is x on the last delay/h + 2 grid points, so k defaults to 3
    (Mackey-Glass β=2, γ=1, n=9.65, delay 2 at h = 0.01: about (0.075, 0, −0.27) per time unit; card source)."""

    dt = float(c["sampling"]["dt"])
    sub = int(c.get("integration", {}).get("substeps", 4))
    params = dict(c.get("parameters", {}))
    h = dt / sub
    model = systems.DelayMap(c["system"], params, dt=dt, substeps=sub)
    need = model.N + 2
    warm = int(c["sampling"].get("transient", 1000)) * sub
    z0 = np.stack([systems.delay_state(
        systems.simulate_delay(c["system"], params, dt=h, substeps=1, n_samples=need, transient=warm, seed=seed + i)[:, 0],
        delay=float(params["delay"]), h=h) for i in range(int(n_init))])
    kwargs.setdefault("k", 3)
    return lyapunov_spectrum(model, n_steps=n_steps, transient=transient, z0=z0, dt=dt, seed=seed, **kwargs)
