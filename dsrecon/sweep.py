"""Sweeps: many independent fits (datasets × models × methods × τ × seeds, plus baselines) on one
machine or a Ray cluster, each finished run on disk at once, a results netCDF and a leaderboard.

A sweep is described by a TOML file::

    [sweep]
    name = "reduced"                                  # results go to runs/sweeps/<name> unless `out` is set
    datasets = ["lorenz", "rossler", "duffing", "mackey-glass"]
    models = ["plrnn", "rnn", "lstm"]
    methods = ["stf", "gtf"]
    seeds = [0, 1, 2]
    taus = ["auto"]                                   # optional; several values make a τ-sweep
    baselines = ["esn"]                               # optional: the echo state network (dsrecon[esn])

    [train]                                           # fixed settings of every run: the sections and keys
    steps = 3000                                      # of a run's config.json ([data], [model], [train], [eval])
    [eval]
    t_gen = 20000

    [per_model.lstm.train]                            # settings for one model kind only
    steps = 1500
    [per_dataset.mackey-glass.eval]                   # ... or for one dataset
    t_gen = 10000
    [esn]                                             # the baseline's constructor arguments
    units = 500

Every run is validated before any work starts (a bad key or value is one line naming it and the
allowed ones). Each run has a key: a hash of its full configuration. Its directory
``<out>/runs/<dataset>-<model>-<method>-tau<τ>-seed<s>-<key>/`` is a normal run directory (see
:mod:`dsrecon.runs`) plus ``result.json``, written atomically when the run has finished: a restarted
sweep skips every run that has one and resumes a half-trained run from its checkpoint, so a killed sweep
loses no finished run and redoes none. ``<out>/results.nc`` (dim ``run``) collects one row per finished run;
later sweeps writing to the same file append rows (a row with the same key is replaced). A ``result.json``
or ``results.nc`` damaged from outside is renamed to ``*.corrupt``: that run's record is rebuilt from its
``metrics.json`` (or, without one, the run is redone), the results file from the runs' ``result.json`` files,
each with one warning line. The name is one plain folder name
(letters, digits, ``-_.``), so ``runs/sweeps/<name>`` stays inside ``runs/sweeps``.

Backends (:mod:`dsrecon.backends`) run the same function, :func:`dsrecon.backends.run_one`, on a spec dict:
``local`` (default) a process pool of ``workers`` processes (default: the number of cores; 1 runs in this
process) and ``ray`` a Ray cluster (``address=None`` starts a local one). Each worker uses ``threads`` torch threads (default 1), so results
do not depend on the backend. The driver makes every path absolute before submitting (:func:`dsrecon.backends.portable_spec`);
on Ray a node that does not see the output folder returns its run directory to the driver, a run that its node
failed (lost node, out of memory, a missing file) is retried on another node (``max_attempts``), every record
names its host and node, and the ``[ray]`` section (address, runtime_env, connect_timeout, max_attempts)
configures the connection; an address where nothing answers is one ConfigError after ``connect_timeout`` s.
Each record keeps its ``config_hash`` (every setting but the seed), its ``data_fingerprint`` (of the data as the
driver loaded them, each dataset once per sweep) and the dsrecon version: a restart runs again, afresh and with one
line saying why, a record whose data or config changed since (:func:`dsrecon.results.stale_reason`), and a failed
one whose data did not load then and load now. Other failed runs are kept (a deterministic outcome: the same
config, data and code fail the same way) unless ``retry_failed=True``; runs that errored (a crash, a lost node)
are always run again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from . import data as data_mod, leaderboard
from .backends import (_RECORD_KEYS, CONNECT_TIMEOUT, MAX_ATTEMPTS, _connect, _flat, _import_ray, _local,
                       _mark_shared, _ray, portable_spec, recover_result, unpack_artifacts)
from .baselines import ESN
from .config import METHODS, MODEL_KINDS, OVERSUBSCRIBE, RunConfig, check_threads, parse_tau
from .errors import ConfigError, DataError, DsreconError
from .fileio import atomic_write_bytes
from .jobs import plan_jobs
from .ray_options import RAY_KEYS, RUNTIME_ENV_KEYS, check_ray_options, check_runtime_env  # noqa: F401
from .sweep_values import (SECTIONS, check_grid as _check_grid, check_max_runs as _check_max_runs,
                           check_name as _check_name, merge as _merge, one_value as _one_value, sweep_list as _list,
                           where as _where)
from .results import (RETRY, _unreadable, append_results, check_out_dir, config_hash, read_result, set_aside,
                      sort_runs, stale_reason)
from .runs import write_json
from .train import resolve_device, uses_tau
from .validation import check_lengths

log = logging.getLogger("dsrecon")

BASELINES = ("esn",)
BACKENDS = ("local", "ray")
SWEEP_KEYS = ("name", "out", "datasets", "models", "methods", "seeds", "taus", "baselines", "workers", "threads",
              "ensemble")
TOP_KEYS = ("sweep", "data", "model", "train", "eval", "per_model", "per_dataset", "esn", "ray")
# [sweep] ensemble's default: off, so that a run's numbers do not depend on the runs it was batched with and stay
# bit-identical to `dsrecon fit` and to the Ray backend; jobs measured 1.22x faster on the tau-sweep (2 cores;
# docs/ensembles.md, "Sweeps as ensemble jobs"): an opt-in speed-up, equal only up to float rounding
ENSEMBLE_JOBS = False


# ------------------------------------------------------------------------------ the sweep file
@dataclass
class Sweep:
    """A parsed, validated sweep: the run specs and where they go."""

    name: str
    out: Path
    specs: list[dict]
    workers: int | None = None
    threads: int = 1
    source: dict = field(default_factory=dict)
    ray: dict = field(default_factory=dict)    # the validated [ray] section
    ensemble: bool = ENSEMBLE_JOBS   # fold runs that differ by seed and tau into ensemble jobs (dsrecon.jobs)


def parse_sweep(source, *, path=None, out=None, max_runs: int | None = None) -> Sweep:
    """Validate a sweep (a dict as read from TOML) and expand it into run specs; nothing runs here.

    Raises ConfigError naming the bad key and the allowed values; a grid of more than ``max_runs`` runs
    (default :data:`MAX_RUNS`) is refused before it is expanded.
    """
    max_runs = _check_max_runs(max_runs)
    if not isinstance(source, dict):
        raise ConfigError(f"{_where(path)}a sweep is a TOML table, got {type(source).__name__}")
    for key in source:
        if key not in TOP_KEYS:
            raise ConfigError(f"{_where(path)}unknown top-level key [{key}]; allowed: {', '.join(TOP_KEYS)}")
    sw = source.get("sweep")
    if not isinstance(sw, dict):
        raise ConfigError(f"{_where(path)}missing [sweep] table (with datasets, models, methods, seeds)")
    for key in sw:
        if key not in SWEEP_KEYS:
            raise ConfigError(f"{_where(path)}unknown key {key!r} in [sweep]; allowed: {', '.join(SWEEP_KEYS)}")
    name = _check_name(sw["name"] if "name" in sw else (Path(path).stem if path else "sweep"), "name" in sw, path)
    if "out" in sw and (not isinstance(sw["out"], str) or not sw["out"].strip()):
        raise ConfigError(f"{_where(path)}[sweep] out must be a folder path (a non-empty string), got {sw['out']!r}")
    for table in ("per_model", "per_dataset", "esn"):
        if table in source and not isinstance(source[table], dict):
            example = "[esn] with units = 500" if table == "esn" else f"[{table}.NAME.train] with steps = 500"
            raise ConfigError(f"{_where(path)}[{table}] must be a table, e.g. {example}; see docs/sweeps.md")
    datasets = _list(sw, "datasets", None, path)
    for d in datasets:
        if not isinstance(d, str):
            raise ConfigError(f"{_where(path)}[sweep] datasets: {d!r} is not a name or a path")
        if not data_mod.is_path(d) and d not in data_mod.available():
            raise ConfigError(f"{_where(path)}[sweep] datasets: unknown dataset {d!r}; allowed: "
                              f"{', '.join(data_mod.available())} or a file path")
        if data_mod.is_path(d) and not Path(d).exists():
            raise ConfigError(f"{_where(path)}[sweep] datasets: file {d!r} does not exist")
    models = _list(sw, "models", [], path, MODEL_KINDS)
    methods = _list(sw, "methods", ["stf"] if models else [], path, METHODS)
    if models and not methods:
        raise ConfigError(f"{_where(path)}[sweep] methods must be a non-empty list when models are given, got []; "
                          f"allowed: {', '.join(METHODS)}")
    seeds = _list(sw, "seeds", [0], path)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"{_where(path)}[sweep] seeds: {s!r} is not an integer >= 0")
    tau_list = _list(sw, "taus", ["auto"], path)
    try:
        bad = next((t for t in tau_list if isinstance(t, bool)), None)
        if bad is not None:   # TOML true would read as 1
            raise ConfigError(f"tau must be 'auto' or an integer >= 1, got {bad!r}")
        taus = [parse_tau(t) for t in tau_list]
    except ConfigError as err:
        raise ConfigError(f"{_where(path)}[sweep] taus: {err}") from None
    baselines = _list(sw, "baselines", [], path, BASELINES)
    if not models and not baselines:
        raise ConfigError(f"{_where(path)}[sweep] needs models (allowed: {', '.join(MODEL_KINDS)}) or baselines "
                          f"(allowed: {', '.join(BASELINES)})")
    workers = sw.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"{_where(path)}[sweep] workers must be an integer >= 1, got {workers!r}")
    threads = sw.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"{_where(path)}[sweep] threads must be an integer >= 1, got {threads!r}")
    ensemble = sw.get("ensemble", ENSEMBLE_JOBS)
    if not isinstance(ensemble, bool):
        raise ConfigError(f"{_where(path)}[sweep] ensemble must be true or false, got {ensemble!r}")
    _check_grid(source, datasets, models, methods, taus, seeds, baselines, max_runs, path)

    fixed = _merge({}, {k: source[k] for k in SECTIONS if k in source}, _where(path) + "fixed settings")
    per = {}
    for table, allowed in (("per_model", models), ("per_dataset", datasets)):
        for key, values in source.get(table, {}).items():
            if key not in allowed:
                raise ConfigError(f"{_where(path)}[{table}.{key}]: {key!r} is not in the sweep; allowed: "
                                  f"{', '.join(map(str, allowed))}")
            per[(table, key)] = values
    # the keys each run gets from the sweep's own lists: set in a section too, they would be ignored without a word
    owned = {("data", "name"): "datasets", ("model", "kind"): "models", ("train", "method"): "methods",
             ("train", "seed"): "seeds", ("train", "tau"): "taus"}
    tables = [("", fixed)] + [(f"[{t}.{k}]", v) for (t, k), v in per.items()]
    for where, table in tables:
        for (section, key), lst in owned.items():
            if isinstance(table, dict) and isinstance(table.get(section), dict) and key in table[section]:
                raise ConfigError(f"{_where(path)}{where}[{section}] {key} is set by [sweep] {lst}, which every run "
                                  f"takes it from; drop it (or list the value in [sweep] {lst})")
    _one_value(per, path)
    ray_opts = check_ray_options(source.get("ray", {}), f"{_where(path)}[ray]")
    esn_params = source.get("esn", {})
    esn_allowed = [p for p in inspect.signature(ESN).parameters if p != "seed"]
    for key in esn_params:
        if key not in esn_allowed:
            raise ConfigError(f"{_where(path)}unknown key {key!r} in [esn]; allowed: {', '.join(esn_allowed)}")

    out_dir = Path(out or sw.get("out") or Path("runs") / "sweeps" / name)
    specs = []
    for dataset in datasets:
        for model in models:
            for method in methods:
                for tau in taus:
                    for seed in seeds:
                        cfg = _merge(fixed, per.get(("per_dataset", dataset), {}),
                                     f"{_where(path)}[per_dataset.{dataset}]")
                        cfg = _merge(cfg, per.get(("per_model", model), {}), f"{_where(path)}[per_model.{model}]")
                        cfg.setdefault("data", {})["name"] = dataset
                        cfg.setdefault("model", {})["kind"] = model
                        cfg.setdefault("train", {}).update(method=method, tau=tau, seed=seed)
                        # a sweep compares seeds: each run is one model unless the sweep sets train.ensemble
                        cfg["train"].setdefault("ensemble", 1)
                        try:
                            rc = RunConfig.from_dict(cfg)
                        except ConfigError as err:
                            raise ConfigError(f"{_where(path)}{err}") from None
                        except TypeError as err:
                            raise ConfigError(f"{_where(path)}invalid value: {err}") from None
                        used = tau
                        if not uses_tau(rc.train.method, rc.train.gtf_alpha):   # no forcing interval: one run per seed
                            rc, used = rc.replace(train=dataclasses.replace(rc.train, tau="auto")), None
                        specs.append(_spec("rnn", dataset, model, method, used, seed, rc.to_dict(), out_dir, threads))
        for baseline in baselines:
            for seed in seeds:
                cfg = _merge(fixed, per.get(("per_dataset", dataset), {}), f"{_where(path)}[per_dataset.{dataset}]")
                cfg.setdefault("data", {})["name"] = dataset
                rc = RunConfig.from_dict({k: v for k, v in cfg.items() if k in ("data", "eval")})
                try:
                    ESN(seed=seed, **esn_params)   # validates the values
                except TypeError as err:
                    raise ConfigError(f"{_where(path)}[esn]: {err}") from None
                specs.append(_spec("baseline", dataset, baseline, "esn", None, seed, rc.to_dict(), out_dir, threads,
                                   baseline=dict(esn_params)))
    unique = {}
    for s in specs:   # the same run listed twice (or a collapsed τ grid) runs once
        unique.setdefault(s["key"], s)
    specs = list(unique.values())
    return Sweep(name=name, out=out_dir, specs=specs, workers=workers, threads=threads, source=source, ray=ray_opts,
                 ensemble=ensemble)


def _spec(kind, dataset, model, method, tau, seed, config, out_dir, threads, baseline=None) -> dict:
    spec = {"kind": kind, "dataset": dataset, "model": model, "method": method,
            "tau": None if tau is None else str(tau), "seed": int(seed), "config": config, "threads": int(threads)}
    if baseline is not None:
        spec["baseline"] = baseline
    spec["key"], spec["config_hash"] = _key(spec), config_hash(spec)
    spec["run_dir"] = str(out_dir / "runs" / _dirname(spec))
    return spec


def _key(spec: dict) -> str:
    ident = {k: spec.get(k) for k in ("kind", "dataset", "model", "method", "tau", "seed", "config", "baseline")}
    return hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _dirname(spec: dict) -> str:
    tau = "" if spec["tau"] is None else f"-tau{spec['tau']}"
    return f"{Path(str(spec['dataset'])).stem}-{spec['model']}-{spec['method']}{tau}-seed{spec['seed']}-{spec['key']}"


def load_sweep(path, *, out=None, max_runs: int | None = None) -> Sweep:
    """Read and validate a sweep TOML file (``max_runs``: :func:`parse_sweep`)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"sweep file {path} does not exist")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give the sweep's TOML file, e.g. {path / 'sweep.toml'}")
    try:
        with open(path, "rb") as fh:
            source = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({str(err).splitlines()[0]}); see docs/sweeps.md for the "
                          f"format") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {err.start}); a sweep is a TOML file, see "
                          f"docs/sweeps.md") from None
    except OSError as err:
        raise ConfigError(f"cannot read sweep file {path}: {err.strerror or err}") from None
    return parse_sweep(source, path=path, out=out, max_runs=max_runs)


# ------------------------------------------------------------------------------ the driver
@dataclass
class SweepResult:
    out: Path
    records: list[dict]
    skipped: int
    ran: int
    errors: list[dict]
    seconds: float


def check_load(sweep: Sweep, workers: int | None = None) -> None:
    """ConfigError unless the local backend's processes and threads fit this machine: ``[sweep] threads`` per
    run, and workers x threads in all, at most ``OVERSUBSCRIBE`` per core (``workers``: --workers, else
    ``[sweep] workers``, else the number of cores, never more than the runs)."""
    check_threads(sweep.threads, "[sweep] threads")
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers or workers < 1):
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
    cores = os.cpu_count() or 1
    n = min(int(workers or sweep.workers or cores), len(sweep.specs) or 1)
    if n * sweep.threads > OVERSUBSCRIBE * cores:
        who = "--workers" if workers else "[sweep] workers" if sweep.workers else "workers (the number of cores)"
        raise ConfigError(f"{who} {n} x [sweep] threads {sweep.threads} = {n * sweep.threads} threads exceed this "
                          f"machine's limit of {OVERSUBSCRIBE * cores} ({OVERSUBSCRIBE} per core, {cores} cores); use "
                          f"at most {max(1, OVERSUBSCRIBE * cores // sweep.threads)} workers or fewer threads")


def check_runs(sweep: Sweep, *, here: bool = True, workers: int | None = None) -> dict:
    """The checks of each run that need its data, before any work (``dsrecon sweep``, its ``--dry-run`` and
    :func:`run_sweep`): every dataset loads (once), and each run's settings fit it -- ``tau``, ``seq_len``
    and ``batch_size`` against the training split, ``latent_dim`` against its channels, the held-out
    validation -- and its device exists. Without this a setting that cannot run became a permanent
    "failed" record at run time. Data this machine cannot load (a node-local file, a recording not yet
    downloaded) are left to the run itself, as before, and so is the device when the runs do not run ``here``
    (on Ray the nodes may have a GPU the driver lacks); one line names the run and the setting otherwise.
    Runs ``here`` (the local backend) are also checked against this machine's cores (:func:`check_load`).
    Returns {run key: the fingerprint of its data as loaded here (:func:`dsrecon.data.data_fingerprint`), None
    when they do not load here}: each dataset is loaded and hashed once per sweep, not once per run."""
    if here:
        check_load(sweep, workers)
    splits, fingerprints = {}, {}
    for s in sweep.specs:
        cfg = RunConfig.from_dict(s["config"])
        where = f"run {s['dataset']} {s['model']} {s['method']} tau={s['tau']} seed={s['seed']}: "
        try:
            ident = json.dumps(dataclasses.asdict(cfg.data), sort_keys=True, default=str)
            if ident not in splits:
                try:
                    data = data_mod.load_for(cfg.data)
                    train, _ = data_mod.train_test_split(data)
                    splits[ident] = (int(train.sizes["time"]), int(train.sizes["channel"]),
                                     data_mod.data_fingerprint(data))
                except DataError:   # not loadable here (a node-local file, a recording to download): the run's
                    splits[ident] = None   # own check decides, where it runs
            fingerprints[s["key"]] = None if splits[ident] is None else splits[ident][2]
            if s["kind"] != "rnn":
                continue
            if here:
                resolve_device(cfg.train.device)
            if splits[ident] is None:
                continue
            n, channels, _ = splits[ident]
            cfg.check_series(n, channels, f"the training split of {s['dataset']}")
            check_lengths(n, cfg.train)
        except DsreconError as err:   # ConfigError, DataError, or the device's
            raise type(err)(where + str(err)) from None
    return fingerprints


def run_sweep(sweep: Sweep | str | os.PathLike, *, backend: str = "local", address: str | None = None,
              workers: int | None = None, progress: bool = True, echo=print, retry_failed: bool = False,
              runtime_env: dict | None = None, connect_timeout: float | None = None,
              max_attempts: int | None = None, ensemble_jobs: bool | None = None) -> SweepResult:
    """Run every unfinished run of ``sweep`` (a :class:`Sweep` or a TOML path) and update results and leaderboard.

    Finished runs (``result.json`` with status ok) are skipped unless stale (their data or config changed since:
    :func:`dsrecon.results.stale_reason`, one line each, run afresh); runs that failed (status failed) on the same
    config and data are run again only with ``retry_failed=True``; results.nc gets each new run as soon as it
    ends. Every path a run needs is made absolute here (:func:`portable_spec`). On Ray (``address``, ``runtime_env``, ``connect_timeout``,
    ``max_attempts`` override the sweep's [ray] section): when the nodes see the output folder the runs write
    there, otherwise each node returns its run directory and the driver unpacks it there.
    ``ensemble_jobs`` (default: the sweep's ``[sweep] ensemble``): on the local backend, the runs that differ
    only by seed and τ train together as ensemble jobs (:mod:`dsrecon.jobs`); every run still gets its own
    run directory and record.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    if workers is not None and (int(workers) != workers or workers < 1):
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
    fingerprints = check_runs(sweep, here=backend != "ray", workers=workers)
    opts = dict(sweep.ray)
    if runtime_env is not None:
        opts["runtime_env"] = runtime_env
    for k, v in (("address", address), ("connect_timeout", connect_timeout), ("max_attempts", max_attempts)):
        if v is not None:
            opts[k] = v
    opts = check_ray_options(opts, "Ray options")
    if backend != "ray" and opts.get("runtime_env") and runtime_env is not None:
        raise ConfigError("--runtime-env applies to --backend ray only")
    address = opts.get("address") if backend == "ray" else None
    specs = [portable_spec(s, runtime_env=opts.get("runtime_env") if backend == "ray" else None,
                           address=address) for s in sweep.specs]   # refuses an unportable path before any work
    for s in specs:
        s["data_fingerprint"] = fingerprints.get(s["key"])
    started = False
    if backend == "ray":   # connect before anything is written: a bad address is one line and nothing else
        ray = _import_ray()
        if not ray.is_initialized():
            _connect(ray, address, opts.get("runtime_env"), opts.get("connect_timeout", CONNECT_TIMEOUT))
            started = True
    try:
        jobs = sweep.ensemble if ensemble_jobs is None else bool(ensemble_jobs)
        return _run_sweep(sweep, specs, backend, address, opts, workers, progress, echo, retry_failed, jobs)
    finally:
        if started:
            ray.shutdown()


def _run_sweep(sweep, specs, backend, address, opts, workers, progress, echo, retry_failed,
               jobs: bool = False) -> SweepResult:
    t0 = time.monotonic()
    out = sweep.out.absolute()
    where = "the output folder ([sweep] out or --out)"
    check_out_dir(out, where)
    results = out / "results.nc"
    finished, todo, damaged, records, redo = sort_runs(specs, retry_failed)
    bad_results = _unreadable(results)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "sweep.json", json.dumps(
            {"name": sweep.name, "source": sweep.source, "runs": [s["key"] for s in sweep.specs],
             "run_info": [{k: s[k] for k in (*_RECORD_KEYS, "config_hash")} for s in sweep.specs]},
            indent=2, default=str).encode())
    except OSError as err:
        raise ConfigError(f"cannot write into {where} {out}: {err.strerror or err}; give another folder") from None
    retried = [spec for spec, done, why in redo if why == RETRY]
    for spec, done, why in redo:   # the old outcome is kept next to the run: result.json.failed, .stale
        set_aside(done, ".failed" if why == RETRY else ".stale")
        if why != RETRY:   # run afresh: its old run is replaced (fit_run's overwrite), never resumed or rebuilt
            spec["fresh"] = True
            echo(f"  {Path(spec['run_dir']).name} is run again: {why}")
    if retried:
        echo(f"{len(retried)} failed run(s) are run again (--retry-failed)")
    for spec, done in damaged:   # result.json is written last and atomically: damage came from outside
        kept = set_aside(done).name
        rec = recover_result(spec)
        if rec is not None and stale_reason(rec, spec) is not None:
            rec, spec["fresh"] = None, True
        if rec is None:
            echo(f"warning: {done} is unreadable or not this run's result; kept as {kept}, the run is redone")
            continue
        write_json(done, rec)
        todo.remove(spec)
        finished.append(spec)
        records.append(rec)
        echo(f"warning: {done} is unreadable or not this run's result; kept as {kept} and rebuilt from the run's "
             f"metrics.json")
    for r in records:
        r.setdefault("sweep", sweep.name)
    rows = list(records)
    if bad_results:   # every row can be rebuilt from the runs' result.json files, this sweep's and earlier ones'
        kept = set_aside(results)
        mine = {r["key"] for r in records}
        rows += [{**r, "sweep": r.get("sweep", sweep.name)}
                 for r in map(read_result, sorted(out.glob("runs/*/result.json"))) if r and r["key"] not in mine]
        echo(f"warning: {bad_results}; kept as {kept.name} and rebuilt from {len(rows)} runs' result.json")
    if rows:
        append_results(results, rows)   # the file may have been lost or belong to an older sweep
    n_workers = int(workers or sweep.workers or os.cpu_count() or 1)
    n_workers = max(1, min(n_workers, len(todo) or 1))
    items = plan_jobs(todo, n_workers) if jobs and backend == "local" else todo
    n_jobs = sum(1 for i in items if i.get("kind") == "job")
    echo(f"sweep {sweep.name}: {len(sweep.specs)} runs, {len(finished)} already finished (skipped), "
         f"{len(todo)} to run on backend {backend}" + (f" with {n_workers} workers" if backend == "local" else "")
         + (f" ({len(todo) - len(items) + n_jobs} of them in {n_jobs} ensemble jobs)" if n_jobs else "")
         + f"; results in {results}")
    errors = []
    if backend == "local":
        gen = _flat(_local(items, min(n_workers, len(items) or 1), sweep.threads))
    else:
        shared = _mark_shared(out)
        gen = _ray([{**s, "shared": shared} for s in todo], address, sweep.threads,
                   runtime_env=opts.get("runtime_env"), connect_timeout=opts.get("connect_timeout", CONNECT_TIMEOUT),
                   max_attempts=opts.get("max_attempts", MAX_ATTEMPTS), echo=echo)
    bar = tqdm(total=len(todo), desc=f"sweep {sweep.name}", unit="run", disable=not progress or not todo)
    try:
        for rec in gen:
            rec["sweep"] = sweep.name
            if rec["status"] == "error":
                errors.append(rec)
                echo(f"  error in {rec['run_dir']}: {rec['reason']} (a restart retries it)")
            else:
                artifacts = rec.pop("artifacts", None)
                if artifacts is not None:   # the node did not see the output folder: its run comes here
                    unpack_artifacts(artifacts, rec["run_dir"])
                    rec["artifacts"] = "returned to the driver"
                if artifacts is not None or not (Path(rec["run_dir"]) / "result.json").exists():
                    write_json(Path(rec["run_dir"]) / "result.json", rec)
                records.append(rec)
                append_results(results, [rec])
                if rec["status"] == "failed":
                    echo(f"  failed: {Path(rec['run_dir']).name}: {rec['reason']}")
            bar.update(1)
    finally:
        bar.close()
    if records:
        leaderboard.write_leaderboard(results, out)
    return SweepResult(out=out, records=records, skipped=len(finished), ran=len(todo) - len(errors), errors=errors,
                       seconds=time.monotonic() - t0)
