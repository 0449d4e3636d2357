"""The dataset registry: declarative cards in ``datasets/`` -> standardized ``xarray.Dataset``.

A dataset is an ``xarray.Dataset`` with one variable ``x`` of dims ``("time", "dim")``, a ``time``
coordinate in the system's time units, a ``dim`` coordinate with channel names, and attrs ``dt``,
``name``, ``card_version``, ``units``, ``source``, ``parameters`` (JSON), ``provenance`` (JSON list of
the steps applied), ``n_train`` (the first ``n_train`` samples are the training split), ``mean`` and
``std`` (the standardization, per channel, computed on the training split only) and ``lambda_ref``
(reference λ_max per time unit from the card, with ``lambda_ref_source``). It round-trips through
netCDF unchanged.

Simulated datasets are generated once per (card version, seed, lengths) and cached as netCDF under
``$DSRECON_CACHE_DIR`` (default: the user cache dir, e.g. ``~/.cache/dsrecon``).
"""
from __future__ import annotations

import json
import os
import tempfile
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import xarray as xr

from . import systems
from .errors import DataError


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


def card(name: str) -> dict:
    """The parsed card of dataset ``name``; DataError listing the available names if unknown."""
    files = _card_files()
    if name not in files:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(sorted(files))}")
    with files[name].open("rb") as fh:
        return tomllib.load(fh)


def cache_dir() -> Path:
    """Where generated and downloaded data are cached: $DSRECON_CACHE_DIR or the user cache dir."""
    env = os.environ.get("DSRECON_CACHE_DIR")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("dsrecon"))


# ---------------------------------------------------------------------------------------- io
def write_netcdf(ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Write ``ds`` to ``path`` atomically (temp file in the same folder, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        ds.to_netcdf(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_netcdf(path: str | os.PathLike) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


# ---------------------------------------------------------------------------------------- build
def _make_dataset(x: np.ndarray, *, dt: float, dims, attrs: dict) -> xr.Dataset:
    return xr.Dataset(
        {"x": (("time", "dim"), x)},
        coords={"time": np.arange(x.shape[0]) * dt, "dim": list(dims)},
        attrs={"dt": float(dt), **attrs},
    )


def load(name: str, *, seed: int | None = None, cache: bool = True) -> xr.Dataset:
    """Load the registered dataset ``name`` (train and test splits, standardized).

    Parameters: ``seed`` overrides the card's initial-condition seed (an independent orbit);
    ``cache=False`` regenerates without touching the cache.
    Returns: an ``xr.Dataset`` as described in the module docstring; use :func:`train_test_split`.
    Raises: DataError for an unknown name (listing the available ones).
    """
    c = card(name)
    if c.get("kind") != "ode":
        raise DataError(f"dataset {name!r} has kind {c.get('kind')!r}, which this version cannot load")
    s = c["sampling"]
    seed = int(s.get("seed", 0) if seed is None else seed)
    n_train, n_test = int(s["n_train"]), int(s["n_test"])
    fname = f"{name}-v{c['version']}-seed{seed}-{n_train}+{n_test}.nc"
    path = cache_dir() / fname
    if cache and path.exists():
        try:
            return read_netcdf(path)
        except Exception:  # a corrupt cache entry is regenerated, never trusted
            path.unlink(missing_ok=True)
    raw = simulate_card(c, n_samples=n_train + n_test, seed=seed)
    mean = raw[:n_train].mean(axis=0)
    std = raw[:n_train].std(axis=0)
    ref = c.get("reference", {})
    ds = _make_dataset(
        (raw - mean) / std,
        dt=s["dt"],
        dims=c["dims"],
        attrs={
            "name": name,
            "card_version": int(c["version"]),
            "description": c.get("description", ""),
            "units": c.get("units", ""),
            "time_units": c.get("time_units", ""),
            "source": f"simulated: {c['system']} integrated by {c['integration']['method']}, "
            f"rtol={c['integration']['rtol']}, atol={c['integration']['atol']}",
            "parameters": json.dumps(c.get("parameters", {})),
            "seed": seed,
            "n_train": n_train,
            "mean": mean.tolist(),
            "std": std.tolist(),
            "lambda_ref": float(ref.get("lambda_max", np.nan)),
            "lambda_ref_source": ref.get("source", ""),
            "provenance": json.dumps(
                [
                    {"step": "simulate", "system": c["system"], "seed": seed,
                     "transient": int(s["transient"]), "n_samples": n_train + n_test},
                    {"step": "standardize", "on": "train split", "mean": mean.tolist(), "std": std.tolist()},
                ]
            ),
        },
    )
    if cache:
        write_netcdf(ds, path)
    return ds


def simulate_card(c: dict, *, n_samples: int, seed: int) -> np.ndarray:
    s, integ = c["sampling"], c["integration"]
    return systems.simulate(
        c["system"], c["parameters"], dt=float(s["dt"]), n_samples=n_samples,
        transient=int(s["transient"]), seed=seed, rtol=float(integ["rtol"]), atol=float(integ["atol"]),
    )


def train_test_split(ds: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """Split at ``attrs['n_train']``: the test split continues the training orbit."""
    n = int(ds.attrs["n_train"])
    return ds.isel(time=slice(0, n)), ds.isel(time=slice(n, None))


def independent_trajectory(ds: xr.Dataset, n_steps: int, *, seed: int) -> xr.Dataset:
    """A fresh orbit of the same system (another initial condition), standardized like ``ds``.

    Used for noise floors: the score between two independent true trajectories of the same length.
    """
    c = card(ds.attrs["name"])
    raw = simulate_card(c, n_samples=n_steps, seed=seed)
    x = (raw - np.asarray(ds.attrs["mean"])) / np.asarray(ds.attrs["std"])
    attrs = {k: v for k, v in ds.attrs.items() if k != "n_train"}
    attrs["seed"] = seed
    return _make_dataset(x, dt=ds.attrs["dt"], dims=ds["dim"].values, attrs=attrs)


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
