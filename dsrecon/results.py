"""Results files of sweeps: ``<out>/results.nc`` (one row per finished run, dim ``run``), read, written and
appended atomically; the sweep driver writes it and the leaderboard reads it.

Coordinates key/dataset/model/method/tau/seed/status/sweep, one variable per scalar of metrics.json
(:data:`RESULT_METRICS`, NaN when a run lacks it) and its noise floor (``floor_*``, :data:`FLOOR_METRICS`), and
what each number came from (:data:`PROVENANCE`: the run's config hash, data fingerprint, dsrecon version, config).

A record is stale when it is no longer what its run would give now (:func:`stale_reason`): its config hash
(:func:`config_hash`, every setting but the seed) or its data fingerprint differs from the run's today.
"""
from __future__ import annotations

import hashlib
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
#: what a record keeps of where its numbers came from (strings; "" when unknown, e.g. a record of an older dsrecon)
PROVENANCE = ("config_hash", "data_fingerprint", "dsrecon_version", "config")


def config_hash(spec: dict) -> str:
    """A run's settings but its seed, hashed (16 hex): kind, dataset, model, method, τ, the full config without
    ``train.seed`` and a baseline's parameters. Runs with one hash differ by seed only: a leaderboard's seeds."""
    cfg = json.loads(json.dumps(spec.get("config") or {}, default=str))
    if isinstance(cfg.get("train"), dict):
        cfg["train"].pop("seed", None)
    ident = {**{k: spec.get(k) for k in ("kind", "dataset", "model", "method", "tau", "baseline")}, "config": cfg}
    return hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_fingerprint(run_dir) -> str | None:
    """The data fingerprint in a run folder's config.json (written by the fit on the data it loaded), or None."""
    try:
        fp = runs.open(run_dir).fingerprint   # the one reader of a run folder
    except DataError:   # no folder, no config.json, not JSON: nothing to compare
        return None
    return fp if isinstance(fp, str) and fp else None


def stale_reason(rec: dict, spec: dict) -> str | None:
    """Why the finished record ``rec`` of the run ``spec`` is no longer what the run would give now, or None to
    keep it. ``spec`` carries the run's ``config_hash`` and ``data_fingerprint`` as the driver computes them today
    (None: the data do not load on the driver, so nothing is compared). The record's fingerprint is its own, else
    the run's config.json's (records of an older dsrecon). A failed record whose data did not load when it ran
    (no fingerprint) is stale once they load; a failure on the same config and data is kept (deterministic)."""
    old, new = rec.get("config_hash"), spec.get("config_hash")
    if old and new and old != new:
        return f"its config changed (config {old[:8]} -> {new[:8]})"
    now = spec.get("data_fingerprint")
    if not now:
        return None
    then = rec.get("data_fingerprint") or run_fingerprint(spec["run_dir"])
    if not then:
        return ("it failed when its data did not load, and they load now" if rec.get("status") == "failed"
                else None)
    return f"its data changed since it ran (data fingerprint {then[:8]} -> {now[:8]})" if then != now else None


def read_result(path, key: str | None = None) -> dict | None:
    """A run's ``result.json`` as a finished record, or None when it is unreadable, not a finished run's record
    (status ok or failed, its key, dataset, model, method, seed) or, with ``key``, another run's record."""
    try:
        rec = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):   # ValueError: not UTF-8 or not JSON
        return None
    if not isinstance(rec, dict) or rec.get("status") not in ("ok", "failed"):
        return None
    if not all(isinstance(rec.get(k), str) and rec[k] for k in ("key", "dataset", "model", "method")):
        return None
    seed = rec.get("seed")
    if (key is not None and rec["key"] != key) or isinstance(seed, bool) or not isinstance(seed, int):
        return None
    if not all(isinstance(rec.get(k, {}), dict) for k in ("metrics", "noise_floor", "variants")):
        return None
    tau, tau_steps = rec.get("tau"), rec.get("tau_steps")
    return {**rec, "metrics": _scalars(rec.get("metrics", {})),
            "noise_floor": _scalars(rec.get("noise_floor", {}), FLOOR_METRICS),
            "variants": rec.get("variants", {}), "tau": None if tau is None else str(tau),
            "tau_steps": float(tau_steps) if isinstance(tau_steps, (int, float)) and not isinstance(tau_steps, bool)
            else None, "reason": str(rec.get("reason", "")), "run_dir": str(rec.get("run_dir", Path(path).parent))}


def set_aside(path, suffix: str = ".corrupt") -> Path:
    """Rename a damaged file to ``<name>.corrupt`` (``.corrupt-2``, ... if taken): its bytes kept, its name freed."""
    path = Path(path)
    dest, n = path.with_name(path.name + suffix), 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}{suffix}-{n}")
    os.replace(path, dest)
    return dest


RETRY = "--retry-failed"   # the reason sort_runs gives a failed record that only retry_failed runs again


def sort_runs(specs: list[dict], retry_failed: bool = False):
    """A restarted sweep's runs by the state of their ``result.json``: (finished specs, specs to run, damaged
    [(spec, path)], finished records, to redo [(spec, path, why)]). A finished record is redone when it is stale
    (:func:`stale_reason`: ``why`` says so) or, failed, with ``retry_failed`` (``why`` is :data:`RETRY`)."""
    finished, todo, damaged, records, redo = [], [], [], [], []
    for s in specs:
        done = Path(s["run_dir"]) / "result.json"
        rec = read_result(done, s["key"]) if done.exists() else None
        why = None if rec is None else stale_reason(rec, s)
        if why is None and rec is not None and rec["status"] == "failed" and retry_failed:
            why = RETRY
        if why is not None:
            redo.append((s, done, why))
            todo.append(s)
        elif rec is not None:   # the same key is the same config: a record of an older dsrecon gets its hash
            finished.append(s)
            records.append({**rec, "config_hash": rec.get("config_hash") or s.get("config_hash"),
                            "config": rec.get("config") or s.get("config")})
        else:
            todo.append(s)
            if done.exists():
                damaged.append((s, done))
    return finished, todo, damaged, records, redo


def _scalars(metrics: dict, names=RESULT_METRICS) -> dict:
    out = {}
    for k in names:
        v = metrics.get(k)
        if isinstance(v, str):   # JSON's "inf"/"nan"
            try:
                v = float(v)
            except ValueError:
                v = None
        out[k] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan")
    return out


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
    for k in PROVENANCE:   # config: JSON text, so that a leaderboard can say what differs between two configs
        data[k] = ("run", [_text(r.get(k)) for r in records])
    by_dataset: dict[str, dict] = {}   # the variants can differ between datasets (bins below 6 dims, GMM above)
    for r in records:
        for k, v in r.get("variants", {}).items():
            by_dataset.setdefault(str(r["dataset"]), {}).setdefault(k, v)
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(description="dsrecon sweep results: one row per finished run",
                    metric_variants=json.dumps(by_dataset, default=str),
                    noise_floor="floor_* = the same scores of an independent true trajectory of length T_gen")
    return ds


def _text(v) -> str:
    return "" if v is None else v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)


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
            "variants": {}, **{k: str(row[k].values) if k in row else "" for k in PROVENANCE},
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
    for k in ("reason", "run_dir", "sweep", "host", "node", *PROVENANCE):
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
    None: a folder that :func:`dsrecon.runs.is_run` recognises, or that holds a run's lock file (a fit writing it
    now). The run's ``--overwrite`` replaces what is in it, so nothing of a sweep, a leaderboard or a plot may be
    written there."""
    try:
        here = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):   # a symlink loop, a NUL: the writer's own check names it
        return None
    for folder in (here, *here.parents):
        if (folder / runs.LOCK).is_file() or runs.is_run(folder):
            return folder
    return None


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
