"""The dataset registry: declarative cards in ``datasets/`` -> standardized ``xarray.Dataset``.

A dataset is an ``xarray.Dataset`` with one variable ``x`` of dims ``("time", "channel")``, a ``time``
coordinate in the system's time units, a ``channel`` coordinate with channel names, and attrs ``dt``,
``name``, ``card_version``, ``units``, ``source``, ``parameters`` (JSON), ``provenance`` (JSON list of
the steps applied), ``n_train`` (the first ``n_train`` samples are the training split), ``mean`` and
``std`` (the standardization, per channel, computed on the training split only), ``noise`` (the
observation-noise level added, as a fraction of each channel's std) and ``lambda_ref`` (reference λ_max
per time unit from the card, with ``lambda_ref_source``). A driven system (the forced Duffing
oscillator) also carries its forcing as an input variable ``s`` of dims ``("time", "input")``. The
dataset round-trips through netCDF unchanged; a file written before the channel dimension was renamed from
``dim`` to ``channel`` reads as a new one (:func:`dsrecon.files.open_netcdf`).

Where data come from (:func:`load`):

- a simulated card (``kind = "ode"`` or ``"dde"``): integrated once per (card version, seed, noise,
  lengths) and cached as netCDF under ``$DSRECON_CACHE_DIR`` (default: the user cache dir);
- a download card (``kind = "download"``: Jena weather, PhysioNet EEG): fetched with pooch into the data
  directory (``$DSRECON_DATA_DIR``, ``data_dir=``, default ``<cache dir>/downloads``), SHA-256 checked,
  read and preprocessed by the card's ``[[preprocess]]`` steps (:mod:`dsrecon.preprocess`);
- a path to the user's own file (CSV/TSV/TXT, .npy/.npz, netCDF, EDF) or to a user-written card (.toml).

This module builds and splits datasets; the rest of the data layer each has one job: :mod:`dsrecon.cards` (the
registry: cards parsed once, cache folders), :mod:`dsrecon.files` (readers of user files),
:mod:`dsrecon.recordings` (time axis, gaps and values of a recording), :mod:`dsrecon.downloads` (hash-checked
downloads), :mod:`dsrecon.preprocess` (Dataset -> Dataset steps). Also here: :func:`true_spectrum`, the
Lyapunov spectrum of a simulated card's true equations.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import xarray as xr

from . import preprocess as pp, systems
from .arrays import as_array  # noqa: F401 - also reached as data.as_array
from .cards import available, cache_dir, card, data_directory, is_path  # noqa: F401 - also reached as data.card etc.
from .config import MAX_NOISE, SEED_LIMIT, DataConfig
from .downloads import fetch
from .embedding import delay_embedding
from .errors import ConfigError, DataError
from .fileio import atomic_write
from .files import FILE_FORMATS, LEGACY_CHANNEL_DIM, MIN_SAMPLES, open_netcdf, read_file, read_series, reading, sha256_of  # noqa: F401 - data.read_series
from .lyapunov import LyapunovSpectrum, lyapunov_spectrum

TRAIN_FRACTION = 0.8       # default train share of a recording without n_train in its card


# ---------------------------------------------------------------------------------------- io
def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Write ``ds`` to ``path`` atomically (:func:`dsrecon.fileio.atomic_write`: temp file, fsync, umask mode)."""
    atomic_write(path, ds.to_netcdf)


def read_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """A dataset file read into memory (:func:`dsrecon.files.open_netcdf`: a legacy ``dim`` is renamed ``channel``)."""
    with open_netcdf(path) as ds:
        return ds.load()


# ---------------------------------------------------------------------------------------- build
def _make_dataset(x: np.ndarray, *, dt: float, dims, attrs: dict, s: np.ndarray | None = None,
                  inputs=None, time=None) -> xr.Dataset:
    coords = {"time": np.arange(x.shape[0]) * dt if time is None else np.asarray(time, dtype=float),
              "channel": list(dims)}
    data_vars = {"x": (("time", "channel"), x)}
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
    if isinstance(name, bytes):   # a path as bytes (os.listdir(b".")): is_path and card take text
        name = os.fsdecode(name)
    for key, value, lo, hi in (("seed", seed, 0, SEED_LIMIT - 1), ("n_train", n_train, 2, MAX_LOAD),
                               ("n_test", n_test, 0, MAX_LOAD), ("transient", transient, 0, MAX_LOAD)):
        _check_count(key, value, lo, hi)
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
    if not (0 <= noise <= MAX_NOISE):
        raise ConfigError(f"noise must be a number in [0, {MAX_NOISE:g}] (std as a fraction of each channel's std), "
                          f"got {noise!r}")
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


MAX_LOAD = 10**8   # samples of a simulated split: 10^8 x 3 channels is 2.4 GB; 10^12 was a MemoryError from numpy


def _check_count(key: str, value, lo: int, hi: int) -> None:
    """One line unless ``value`` is None or an integer in [lo, hi] (1500.5, True, -1 or 10^12 samples, a seed of -1)."""
    try:
        ok = value is None or (not isinstance(value, bool) and int(value) == value and lo <= value <= hi)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        span = "[0, 2^32)" if hi == SEED_LIMIT - 1 else f"[{lo}, {hi:,}]"
        raise ConfigError(f"{key} must be an integer in {span}, got {value!r}")


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
    with reading(path, FILE_FORMATS.get(path.suffix.lower(), "table")):
        sha = sha256_of(path)
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
    # the channel dimension is hashed under its former name "dim", so that runs fitted before the rename keep
    # their fingerprint (tests/test_data_files.py pins it)
    meta = {"dims": {(LEGACY_CHANNEL_DIM if k == "channel" else str(k)): int(v) for k, v in dataset["x"].sizes.items()},
            "channels": [str(v) for v in dataset["channel"].values] if "channel" in dataset.coords else [],
            "dt": float(dataset.attrs.get("dt", np.nan)).hex()}
    if "s" in dataset:
        meta["inputs"] = [str(v) for v in dataset["input"].values] if "input" in dataset.coords else []
        meta["input_dims"] = {str(k): int(v) for k, v in dataset["s"].sizes.items()}
    h.update(json.dumps(meta, sort_keys=True).encode())
    for var in ("x", "s"):
        if var in dataset:
            h.update(np.ascontiguousarray(dataset[var].values, dtype="<f8").tobytes())
    return h.hexdigest()


def check_dataset(ds, what: str = "data", attrs: tuple = ("n_train",)) -> None:
    """One-line DataError unless ``ds`` is a dataset as :func:`load` returns it (an ``xarray.Dataset`` with the
    variable ``x`` and the ``attrs`` the caller reads, e.g. the split): the public functions that take one call
    it first, so that an array or a path passed by mistake is named, not a KeyError from inside."""
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"{what} must be a dataset from ds.load (an xarray.Dataset), got {type(ds).__name__}; an "
                        f"array (T, N) becomes one through a file: np.save('x.npy', x), then ds.load('x.npy')")
    missing = (["x"] if "x" not in ds else []) + [k for k in attrs if k not in ds.attrs]
    if missing:
        raise DataError(f"{what} is an xarray.Dataset without {', '.join(map(repr, missing))}: not one from "
                        f"ds.load, which records the split and the standardization; load the data with ds.load")


def train_test_split(ds: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """Split at ``attrs['n_train']``: the test split continues the training orbit."""
    check_dataset(ds)
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
    return _make_dataset(x, dt=ds.attrs["dt"], dims=ds["channel"].values, attrs=attrs,
                         s=None if "s" not in fresh else fresh["s"].values, inputs=inputs)


def to_physical(ds: xr.Dataset) -> xr.Dataset:
    """Undo the standardization: x * std + mean (units of the original recording)."""
    check_dataset(ds, attrs=("mean", "std"))
    out = ds.copy()
    out["x"] = ds["x"] * xr.DataArray(np.asarray(ds.attrs["std"]), dims="channel") + xr.DataArray(
        np.asarray(ds.attrs["mean"]), dims="channel"
    )
    out.attrs["standardized"] = 0
    return out


def load_for(data_config) -> xr.Dataset:
    """The dataset a run was fitted on, from its :class:`dsrecon.config.DataConfig` or the ``data`` section
    of its config.json: the same name, seed and load options (noise, columns, dt, ...), so that re-scoring
    and figures see exactly the training data's channels."""
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
