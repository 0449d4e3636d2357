"""Results files of sweeps: ``<out>/results.nc`` (one row per finished run, dim ``run``), read, written and
appended atomically; the sweep driver writes it and the leaderboard reads it.

Coordinates key/dataset/model/method/tau/seed/status/sweep, one variable per scalar of metrics.json
(:data:`RESULT_METRICS`, NaN when a run lacks it) and its noise floor (``floor_*``, :data:`FLOOR_METRICS`).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import xarray as xr

from . import runs
from .errors import ConfigError, DataError
from .fileio import atomic_write_bytes

#: Scalars of metrics.json kept in results.nc (missing ones are NaN); noise floors get a "floor_" prefix.
RESULT_METRICS = ("D_stsp", "D_H", "PSC", "D_stsp_legacy", "D_H_legacy", "PE", "VPT", "model_lambda_max",
                  "model_D_KY", "lambda_max", "T_gen", "steps", "train_seconds", "total_seconds")
FLOOR_METRICS = ("D_stsp", "D_H", "PSC", "D_stsp_legacy", "D_H_legacy")


def records_to_dataset(records: list[dict]):
    """One row per run (dim ``run``): coordinates key/dataset/model/method/tau/seed/status, one variable per metric."""
    records = sorted(records, key=lambda r: r["key"])
    coords = {
        "key": ("run", [r["key"] for r in records]),
        "dataset": ("run", [str(r["dataset"]) for r in records]),
        "model": ("run", [r["model"] for r in records]),
        "method": ("run", [r["method"] for r in records]),
        "tau": ("run", ["-" if r.get("tau") is None else str(r["tau"]) for r in records]),
        "seed": ("run", np.array([int(r["seed"]) for r in records], dtype=np.int64)),
        "status": ("run", [r["status"] for r in records]),
        "sweep": ("run", [str(r.get("sweep", "")) for r in records]),
    }
    data = {}
    for name in RESULT_METRICS:
        data[name] = ("run", np.array([r["metrics"].get(name, math.nan) for r in records], dtype=float))
    for name in FLOOR_METRICS:
        data[f"floor_{name}"] = ("run", np.array([r["noise_floor"].get(name, math.nan) for r in records], dtype=float))
    data["tau_steps"] = ("run", np.array([math.nan if r.get("tau_steps") is None else r["tau_steps"]
                                          for r in records], dtype=float))
    data["reason"] = ("run", [r.get("reason", "") for r in records])
    data["run_dir"] = ("run", [r.get("run_dir", "") for r in records])
    data["host"] = ("run", [str(r.get("host", "")) for r in records])   # who ran it (the Ray node id, if any)
    data["node"] = ("run", [str(r.get("node", "")) for r in records])
    by_dataset: dict[str, dict] = {}   # the variants can differ between datasets (bins below 6 dims, GMM above)
    for r in records:
        for k, v in r.get("variants", {}).items():
            by_dataset.setdefault(str(r["dataset"]), {}).setdefault(k, v)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(description="dsrecon sweep results: one row per finished run",
                    metric_variants=json.dumps(by_dataset, default=str),
                    noise_floor="floor_* = the same scores of an independent true trajectory of length T_gen")
    return ds


def dataset_to_records(ds) -> list[dict]:
    out = []
    for i in range(ds.sizes["run"]):
        row = ds.isel(run=i)
        tau = str(row["tau"].values)
        tau_steps = float(row["tau_steps"].values)
        out.append({
            "key": str(row["key"].values), "dataset": str(row["dataset"].values), "model": str(row["model"].values),
            "method": str(row["method"].values), "tau": None if tau == "-" else tau, "seed": int(row["seed"].values),
            "status": str(row["status"].values), "sweep": str(row["sweep"].values),
            "tau_steps": None if math.isnan(tau_steps) else tau_steps,
            "metrics": {k: float(row[k].values) for k in RESULT_METRICS},
            "noise_floor": {k: float(row[f"floor_{k}"].values) for k in FLOOR_METRICS},
            "reason": str(row["reason"].values), "run_dir": str(row["run_dir"].values),
            "host": str(row["host"].values) if "host" in row else "", "node": str(row["node"].values) if "node" in row else "",
            "variants": {},
        })
    variants = json.loads(ds.attrs.get("metric_variants", "{}"))   # {dataset: {metric: variant}}
    for r in out:
        r["variants"] = variants.get(r["dataset"], {})
    return out


RESULT_COORDS = ("key", "dataset", "model", "method", "tau", "seed", "status")


def read_results(path):
    """The results netCDF (a file, or a sweep directory holding ``results.nc``) as an xr.Dataset.

    Raises DataError naming the file when it is missing, not a readable netCDF, or not a sweep's results
    (no ``run`` dimension, no key/dataset/model/method/tau/seed/status, a score that is not numeric). Score
    columns an older file lacks read as NaN.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "results.nc"
    if not path.exists():
        raise DataError(f"no results file at {path}; run `dsrecon sweep CONFIG.toml` first (it writes results.nc "
                        f"in the sweep's output folder)")
    rebuild = ("run the sweep again with the same --out: it rebuilds results.nc from the runs' result.json files"
               if path.name == "results.nc" else "give the results.nc that `dsrecon sweep` wrote, or its folder")
    try:
        with xr.open_dataset(path) as ds:
            ds = ds.load()
    except Exception as err:  # noqa: BLE001 - each netCDF backend fails differently on a damaged file
        why = str(err).splitlines()[0] if str(err) else ""
        why = ("no netCDF backend recognises it" if "did not find a match" in why
               else f"{type(err).__name__}: {why[:100]}")
        raise DataError(f"{path} is not a readable netCDF results file ({why}); {rebuild}") from None
    missing = [k for k in RESULT_COORDS if k not in ds.variables or ds[k].dims != ("run",)]
    bad = [k for k in (*RESULT_METRICS, *(f"floor_{m}" for m in FLOOR_METRICS), "tau_steps")
           if k in ds and (ds[k].dims != ("run",) or ds[k].dtype.kind not in "fiu")]
    if missing or bad:
        what = f"no {', '.join(missing)} per run" if missing else f"non-numeric {', '.join(bad)}"
        raise DataError(f"{path} is not a dsrecon sweep results file ({what}); {rebuild}")
    n = ds.sizes["run"]
    for k in (*RESULT_METRICS, *(f"floor_{m}" for m in FLOOR_METRICS), "tau_steps"):
        if k not in ds:
            ds[k] = ("run", np.full(n, math.nan))
    for k in ("reason", "run_dir", "sweep", "host", "node"):
        if k not in ds:
            ds[k] = ("run", np.array([""] * n, dtype=object))
    return ds


def _unreadable(path) -> str | None:
    """Why the results file cannot be read, or None when it is fine or absent."""
    try:
        if Path(path).exists():
            read_results(path)
    except DataError as err:
        return str(err).split("; ")[0]
    return None


def inside_run(path) -> Path | None:
    """The run folder of `dsrecon fit` that ``path`` is or lies inside (symbolic links and ``..`` resolved), else
    None. A run folder holds a ``config.json`` with a ``"config"`` object (as every run writes it), or the
    manifest or lock file that :mod:`dsrecon.runs` names: the run's ``--overwrite`` deletes its checkpoints/ and
    its .png files, so nothing of a sweep, a leaderboard or a plot may be written there."""
    marks = [getattr(runs, "MANIFEST", "manifest.json"), getattr(runs, "LOCK", ".dsrecon.lock")]
    try:
        here = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):   # a symlink loop, a NUL: the writer's own check names it
        return None
    for folder in (here, *here.parents):
        if _run_marked(folder, *marks):
            return folder
    return None


def _run_marked(folder: Path, manifest: str, lock: str) -> bool:
    """``folder`` holds the lock, a manifest ``{"dsrecon_run": 1, ...}`` or a config.json ``{"config": {...}}``."""
    if (folder / lock).is_file():
        return True
    for name, key in (("config.json", "config"), (manifest, "dsrecon_run")):
        try:
            obj = json.loads((folder / name).read_bytes()) if (folder / name).is_file() else None
        except (OSError, ValueError):   # unreadable, not JSON: not a run's
            continue
        if isinstance(obj, dict) and (isinstance(obj.get(key), dict) if key == "config" else obj.get(key) == 1):
            return True
    return False


def check_not_in_run(path, what: str) -> None:
    """ConfigError, one line, when ``path`` (a folder or a file to write) is or lies inside a run folder
    (:func:`inside_run`)."""
    run = inside_run(path)
    if run is not None:
        where = "is the run folder" if Path(path).expanduser().resolve() == run else "lies inside the run folder"
        raise ConfigError(f"{what} {path} {where} {run} of `dsrecon fit`, whose --overwrite would delete it; "
                          f"give a path outside every run folder")


def check_out_dir(path, what: str = "--out") -> Path:
    """Refuse, before any work, an output folder that is a file, is or lies inside a run folder of `dsrecon fit`
    (:func:`inside_run`), or sits where nothing can be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, not a folder; give a folder (it is created if missing)")
    if (path / "config.json").is_file() and any((path / n).exists() for n in ("model.pt", "metrics.json", "checkpoints")):
        raise ConfigError(f"{what} {path} holds a run of `dsrecon fit` (config.json, model.pt); results and "
                          f"leaderboards need a folder of their own")
    check_not_in_run(path, what)
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what} {path} cannot be created: {probe} is a file; give another folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path} is not writable ({probe} is read-only to you); give another folder")
    return path


def append_results(path, records: list[dict]) -> None:
    """Add ``records`` to the results file (rows with the same key are replaced), atomically."""
    path = Path(path)
    old = dataset_to_records(read_results(path)) if path.exists() else []
    merged = {r["key"]: r for r in old}
    for r in records:
        if r.get("status") in ("ok", "failed"):
            merged[r["key"]] = r
    if not merged:
        return
    ds = records_to_dataset(list(merged.values()))
    atomic_write_bytes(path, ds.to_netcdf())
