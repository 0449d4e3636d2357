"""How a sweep's runs run: one run of a spec (:func:`run_one`, idempotent, its record in ``result.json``) and the
backends that run many (``local``: a process pool; ``ray``: a Ray cluster, an optional extra), with the same
results. The sweep file, its specs and the driver are :mod:`dsrecon.sweep`'s.

A record names its host and Ray node; a node that does not see the sweep's output folder runs in a temporary
folder and returns the run directory to the driver (:func:`unpack_artifacts`); a run that its node failed (lost
node, out of memory, a data file missing there) is retried on another node (``max_attempts``).
"""
from __future__ import annotations

import concurrent.futures as cf
import io
import json
import logging
import multiprocessing as mp
import os
import shutil
import socket
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from . import __version__, data as data_mod, runs
from .baselines import run_esn
from .config import RunConfig
from .errors import ConfigError, DataError, DsreconError
from .experiment import fit_run
from .jobs import train_job
from .fileio import atomic_write_bytes
from .results import FLOOR_METRICS, _scalars, read_result, set_aside, stale_reason  # noqa: F401 (re-exported)
from .runs import data_fingerprint, package_versions, write_json
from .train import Interrupted

log = logging.getLogger("dsrecon")

CONNECT_TIMEOUT = 30.0     # seconds to reach a Ray address before giving up in one line
_RECORD_KEYS = ("key", "kind", "dataset", "model", "method", "tau", "seed")   # what a record names
MAX_ATTEMPTS = 3           # tries of a run whose node failed it (lost node, missing file, out of memory)


# ------------------------------------------------------------------------------ one run
def run_one(spec: dict) -> dict:
    """Run one spec to completion and return its result record (also written to ``result.json``).

    Idempotent: a run with ``result.json`` returns it; a run with a checkpoint resumes. An error raised on
    purpose (diverged training, a series that is not chaotic for ``--tau auto``) is a finished outcome:
    the record has ``status = "failed"`` and the one-line reason, and the run is not redone. An interrupt
    or any other exception gives ``status = "error"`` without result.json, so a restart retries (resumes) it.

    Every record names the ``host`` and Ray ``node`` (empty off Ray) that ran it, and what its numbers came from
    (:func:`_provenance`). A spec with ``fresh`` (a stale record set aside by the driver) is run afresh, its old
    run replaced through fit_run's ``overwrite``: never resumed or rebuilt from the old files. A spec prepared
    by the driver (:func:`portable_spec`) may also carry ``env`` (DSRECON_* variables, absolute paths), ``needs`` (the data
    files this node must see: a missing one is ``status = "error"`` with ``environment = True``, retried on
    another node and never recorded as finished) and ``shared`` (a marker file and its token in the sweep's
    output folder): a node that does not see the marker runs in a temporary folder and returns the run
    directory as ``artifacts`` (a tar.gz of bytes) for the driver to unpack, so one place holds every run.
    """
    for k, v in spec.get("env", {}).items():   # before any import reads them (cache and data folders)
        os.environ[k] = v
    if spec.get("kind") == "job":   # several runs trained as one ensemble (dsrecon.jobs): a list of records
        return run_job(spec)
    run_dir = Path(spec["run_dir"])
    record = _record(spec)
    missing = [f for f in spec.get("needs", []) if not Path(f).is_file()]
    if missing:   # this node lacks a file another node may have: not an outcome of the run
        return {**record, "status": "error", "environment": True, "metrics": {}, "noise_floor": {}, "variants": {},
                "reason": f"no such file on host {record['host']}: {missing[0]} (cwd {os.getcwd()})"}
    local = _sees_shared_out(spec.get("shared"))
    if local:
        return _run_where(spec, run_dir, record)
    tmp = Path(tempfile.mkdtemp(prefix="dsrecon-run-"))
    try:
        rec = _run_where(spec, tmp / run_dir.name, record)
        if rec["status"] in ("ok", "failed"):
            rec["artifacts"] = _pack(tmp / run_dir.name)
        return rec
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_job(job: dict) -> list[dict]:
    """Run an ensemble job (:func:`dsrecon.jobs.plan_jobs`) and return one record per member run, each exactly
    what :func:`run_one` returns for that run: the members train together (:func:`dsrecon.jobs.train_job`),
    then each is finished by :func:`run_one` from its own checkpoint (final validation, scores, files,
    ``result.json``). When the runs cannot train as one ensemble (an unsupported or driven model, too little
    memory, an unusable job checkpoint) or every member diverged, they run one by one, as without jobs.
    An interrupt or a crash gives every member ``status = "error"`` (a restart resumes the job)."""
    torch.set_num_threads(int(job.get("threads", 1)))
    t0 = time.monotonic()
    try:
        failed = train_job(job)
    except Interrupted as err:
        return [{**_record(s), "status": "error", "reason": str(err).splitlines()[0], "metrics": {}, "noise_floor": {},
                 "variants": {}, "seconds": time.monotonic() - t0} for s in job["members"]]
    except DsreconError as err:
        log.warning("ensemble job %s: %s; its %d runs train one by one", job["key"], str(err).splitlines()[0],
                    len(job["members"]))
        shutil.rmtree(job["run_dir"], ignore_errors=True)
        return [run_one(s) for s in job["members"]]
    except Exception as err:  # noqa: BLE001 - a bug or a crash: report it, let a restart retry the runs
        log.exception("sweep job %s crashed", job["key"])
        return [{**_record(s), "status": "error", "reason": f"{type(err).__name__}: {err}".splitlines()[0],
                 "metrics": {}, "noise_floor": {}, "variants": {}, "seconds": time.monotonic() - t0,
                 "environment": isinstance(err, MemoryError)} for s in job["members"]]
    records = []
    for s in job["members"]:
        if s["key"] in failed:   # diverged: a finished outcome, as DivergenceError is for a single run
            rec = {**_record(s), "status": "failed", "reason": failed[s["key"]], "tau_steps": None, "metrics": {},
                   "noise_floor": {}, "variants": {}, "seconds": time.monotonic() - t0}
            write_json(Path(s["run_dir"]) / "result.json", rec)
            records.append(rec)
        else:
            records.append(run_one(s))
    return records


def _record(spec: dict) -> dict:
    return {**{k: spec[k] for k in _RECORD_KEYS}, "run_dir": str(spec["run_dir"]), **_where_am_i(),
            **_provenance(spec)}


def _provenance(spec: dict) -> dict:
    """What a record's numbers came from (:data:`dsrecon.results.PROVENANCE`): the run's config (and its hash
    without the seed), the fingerprint of its data as the driver loaded them (None when they did not load
    there), and the dsrecon version that ran it."""
    return {"config_hash": spec.get("config_hash"), "data_fingerprint": spec.get("data_fingerprint"),
            "dsrecon_version": __version__, "config": spec.get("config")}


def _where_am_i() -> dict:
    """The host, and the Ray node id when this runs in a Ray task (else "")."""
    node = ""
    ray = __import__("sys").modules.get("ray")
    if ray is not None:
        try:
            if ray.is_initialized():
                node = ray.get_runtime_context().get_node_id() or ""
        except Exception:  # noqa: BLE001 - the node id is a label; never fail a run for it
            node = ""
    return {"host": socket.gethostname(), "node": str(node)}


def _sees_shared_out(shared) -> bool:
    """True off Ray, or when this node reads the driver's marker (its token) in the sweep's output folder."""
    if not shared:
        return True
    try:
        return Path(shared["path"]).read_text().strip() == shared["token"]
    except (OSError, ValueError):
        return False


def _pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return buf.getvalue()


def unpack_artifacts(data: bytes, run_dir) -> None:
    """Unpack a run directory returned by a node without the shared output folder into ``run_dir`` (every
    file but result.json, which the driver writes last); members that are not plain files or folders inside
    the run directory are refused."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if Path(m.name).name != "result.json" or Path(m.name).parent != Path(".")]
        for m in members:
            if not (m.isfile() or m.isdir()) or Path(m.name).is_absolute() or ".." in Path(m.name).parts:
                raise DsreconError(f"a node returned a run directory with an unsafe entry {m.name!r}; not unpacked")
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}   # Python >= 3.11.4
        tar.extractall(run_dir, members=members, **safe)


def _run_where(spec: dict, run_dir: Path, record: dict) -> dict:
    spec = {**spec, "run_dir": str(run_dir)}
    done = run_dir / "result.json"
    fresh = bool(spec.get("fresh"))
    if done.exists() and not fresh:
        rec = read_result(done, spec["key"])
        if rec is not None:
            return {**rec, "run_dir": record["run_dir"]}
        set_aside(done)   # damaged from outside (it is written atomically)
    elif done.exists():
        set_aside(done, ".stale")
    rec = None if fresh else recover_result(spec)   # result.json lost after the run had finished: rebuilt, not redone
    if rec is not None and stale_reason(rec, spec) is not None:   # ... unless its data or config changed since
        rec, spec = None, {**spec, "fresh": True}
    if rec is not None:
        rec = {**rec, **{k: record[k] for k in ("run_dir", "host", "node")}}
        write_json(done, rec)
        return rec
    torch.set_num_threads(int(spec.get("threads", 1)))
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    record = dict(record)
    try:
        metrics, tau_steps = (_run_baseline if spec["kind"] == "baseline" else _run_model)(spec, run_dir)
        record.update(**_outcome(metrics), tau_steps=tau_steps, metrics=_scalars(metrics),
                      noise_floor=_scalars(metrics.get("noise_floor", {}), FLOOR_METRICS),
                      variants=metrics.get("variants", {}))
    except Interrupted as err:   # Ctrl-C: the checkpoint is kept, a restart resumes the run
        record.update(status="error", reason=str(err).splitlines()[0], metrics={}, noise_floor={}, variants={},
                      seconds=time.monotonic() - t0)
        return record
    except DsreconError as err:
        record.update(status="failed", reason=str(err).splitlines()[0], tau_steps=None, metrics={}, noise_floor={},
                      variants={})
    except Exception as err:  # noqa: BLE001 - a bug or a crash: report it, let a restart retry the run
        log.exception("sweep run %s crashed", spec["key"])
        record.update(status="error", reason=f"{type(err).__name__}: {err}".splitlines()[0], metrics={},
                      noise_floor={}, variants={}, seconds=time.monotonic() - t0,
                      environment=isinstance(err, MemoryError))   # out of memory: another node may have room
        return record
    record["seconds"] = time.monotonic() - t0
    write_json(done, record)
    return record


def recover_result(spec: dict) -> dict | None:
    """The record of a run that finished (its metrics.json, written last by a fit or the ESN, is complete) but
    whose result.json is missing or damaged; None when the outcome is unknown (the run must be done again)."""
    run_dir = Path(spec["run_dir"])
    try:
        run = runs.open(run_dir)
        metrics, info = run.metrics(), run.info
    except DataError:
        return None
    if not isinstance(metrics, dict) or not isinstance(info, dict) or "D_stsp" not in metrics:
        return None
    tau_steps = info.get("tau_steps")
    floor, variants = metrics.get("noise_floor"), metrics.get("variants")
    versions = info.get("versions") if isinstance(info.get("versions"), dict) else {}
    record = {**{k: spec[k] for k in _RECORD_KEYS}, **_provenance(spec), "data_fingerprint":
              info.get("data_fingerprint"), "dsrecon_version": versions.get("dsrecon")}   # of the run, not of now
    record.update(run_dir=str(run_dir), **_outcome(metrics), metrics=_scalars(metrics),
                  tau_steps=tau_steps if isinstance(tau_steps, int) and not isinstance(tau_steps, bool) else None,
                  noise_floor=_scalars(floor if isinstance(floor, dict) else {}, FLOOR_METRICS),
                  variants=variants if isinstance(variants, dict) else {}, recovered="from metrics.json")
    return record


def _outcome(metrics: dict) -> dict:
    """status and reason of a scored run: "failed" when scoring judged it so (a free run that diverged, or
    collapsed to a fixed point while the data do not: metrics.json's ``status``), whatever its scores."""
    if metrics.get("status") == "failed":
        return {"status": "failed", "reason": str(metrics.get("status_reason") or "failed").splitlines()[0]}
    return {"status": "ok", "reason": ""}


def _run_model(spec: dict, run_dir: Path):
    """Fit one run into ``run_dir``: resumed from its checkpoint when it has one; otherwise started afresh
    (``overwrite``) — a run stopped before its first checkpoint (or whose outcome is unknown) left a folder
    that fit_run would refuse, and a refusal must not become a permanent "failed" record."""
    cfg = RunConfig.from_dict(spec["config"])
    resume = run_dir if not spec.get("fresh") and (run_dir / "config.json").exists() and (
        run_dir / "checkpoints" / "last.pt").exists() else None
    if resume is not None:
        run = fit_run(cfg, resume=resume, quiet=True)
        return run.metrics, run.tau
    with _kept_aside(run_dir):
        run = fit_run(cfg, out=run_dir, overwrite=run_dir.is_dir() and any(run_dir.iterdir()), quiet=True)
    return run.metrics, run.tau


class _kept_aside:
    """Move the sweep's own files in a run folder (``result.json.corrupt``, ``result.json.failed``: names that
    fit_run does not know) next to it while the run starts afresh, and back afterwards."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.moved = run_dir, []

    def __enter__(self):
        if self.run_dir.is_dir():
            hold = self.run_dir.parent / f".{self.run_dir.name}.kept"
            for p in sorted(self.run_dir.glob("result.json.*")):
                hold.mkdir(exist_ok=True)
                os.replace(p, hold / p.name)
                self.moved.append(p)
        return self

    def __exit__(self, *exc):
        for p in self.moved:
            os.replace(p.parent.parent / f".{p.parent.name}.kept" / p.name, p)
        if self.moved:
            (self.run_dir.parent / f".{self.run_dir.name}.kept").rmdir()
        return False


def _run_baseline(spec: dict, run_dir: Path):
    cfg = RunConfig.from_dict(spec["config"])
    data = data_mod.load_for(cfg.data)
    write_json(run_dir / "config.json", {"config": cfg.to_dict(), "tau_steps": None, "baseline": spec["baseline"],
                                          "versions": package_versions(), "data_fingerprint": data_fingerprint(data)})
    ev = cfg.eval
    metrics = run_esn(data, t_gen=ev.t_gen, seed=spec["seed"], params=spec["baseline"], run_dir=run_dir,
                      eval_kw={"n_bins": ev.n_bins, "alpha": ev.alpha, "sigma": ev.sigma})
    return metrics, None


# ------------------------------------------------------------------------------ backends
def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _flat(records):
    """The records of the local backend, one per run: a job's list of records is unpacked."""
    for rec in records:
        yield from (rec if isinstance(rec, list) else [rec])


def _local(specs, workers: int, threads: int):
    if workers <= 1:
        for s in specs:
            yield run_one(s)
        return
    # spawn: no forked torch/OpenMP state; each worker imports dsrecon afresh
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                initializer=_init_worker, initargs=(threads,)) as pool:
        futures = [pool.submit(run_one, s) for s in specs]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _mark_shared(out: Path) -> dict:
    """Write a fresh token into ``<out>/.dsrecon-shared``: a node that reads it back shares the output folder."""
    token = os.urandom(8).hex()
    atomic_write_bytes(out / ".dsrecon-shared", token.encode())
    return {"path": str(out / ".dsrecon-shared"), "token": token}


def portable_spec(spec: dict, *, runtime_env: dict | None = None, address: str | None = None,
                  shared: dict | None = None) -> dict:
    """A copy of ``spec`` that means the same on any node: the run folder, a dataset file, ``data_dir`` and
    $DSRECON_CACHE_DIR / $DSRECON_DATA_DIR as absolute paths (resolved here, on the driver); a dataset file
    inside the runtime_env's working_dir relative to it (Ray unpacks working_dir as each task's current
    folder). The run's key is unchanged (it is the configuration as written).

    Raises ConfigError for a relative dataset path that cannot be made portable: with Ray Client
    (``ray://``) the nodes do not see this machine's current folder, so the file must be in working_dir (or
    given as an absolute path on a filesystem the nodes share).
    """
    spec = json.loads(json.dumps(spec, default=str))   # a deep copy of plain data
    spec["run_dir"] = str(Path(spec["run_dir"]).absolute())
    data = spec["config"].setdefault("data", {})
    name = data.get("name")
    wd = (runtime_env or {}).get("working_dir")
    wd = Path(wd) if wd and "://" not in wd else None
    if isinstance(name, str) and data_mod.is_path(name):
        full = Path(name).absolute()
        inside = wd is not None and full.is_relative_to(wd)
        if inside:
            data["name"] = str(full.relative_to(wd))
        elif not Path(name).is_absolute() and str(address or "").startswith("ray://"):
            raise ConfigError(f"[sweep] datasets: {name!r} is a relative path on this machine, which the cluster's "
                              f"nodes cannot see through Ray Client ({address}); ship its folder with --runtime-env "
                              f"'{{\"working_dir\": \"{full.parent}\"}}', or give an absolute path on a "
                              f"filesystem every node shares")
        else:
            data["name"] = str(full)
        spec["needs"] = [data["name"]]
    if data.get("data_dir"):
        data["data_dir"] = str(Path(data["data_dir"]).absolute())
    env = {k: str(Path(os.environ[k]).absolute()) for k in ("DSRECON_CACHE_DIR", "DSRECON_DATA_DIR")
           if os.environ.get(k)}
    if env:
        spec["env"] = env
    if shared:
        spec["shared"] = shared
    return spec


def _endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of a Ray address (``HOST:PORT``, ``ray://HOST[:PORT]``); None for ``auto`` / ``local``."""
    addr = str(address).strip()
    if addr in ("auto", "local"):
        return None
    client = addr.startswith("ray://")
    hostport = addr[len("ray://"):] if client else addr
    host, sep, port = hostport.rpartition(":")
    if not sep:
        host, port = hostport, "10001" if client else "6379"
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address {address!r} is not a Ray address; give auto, HOST:PORT (e.g. 10.0.0.1:6379) or "
                          f"ray://HOST:10001")
    return host, int(port)


def probe_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse, in one line and within ``timeout`` seconds, a Ray address where nothing accepts a connection
    (Ray itself would retry for minutes). At most 1 + timeout / 0.5 TCP connects, each bounded in time."""
    end = _endpoint(address)
    if end is None:
        return
    deadline, why = time.monotonic() + timeout, "no answer"
    for _ in range(int(timeout / 0.5) + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.create_connection(end, timeout=min(2.0, left)):
                return
        except OSError as err:
            why = err.strerror or type(err).__name__
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    raise ConfigError(f"--address {address}: nothing accepts connections at {end[0]}:{end[1]} ({why}; tried for "
                      f"{timeout:.0f} s, --connect-timeout); check the head node's address and port (`ray status` on "
                      f"the head), or start one with `ray start --head`")


def _connect(ray, address: str | None, runtime_env: dict | None, timeout: float) -> None:
    if address:
        probe_address(address, timeout)
    kw = {"runtime_env": runtime_env} if runtime_env else {}
    try:
        if address and str(address).startswith("ray://"):   # Ray Client takes no local-instance options
            ray.init(address=address, **kw)
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False, **kw)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError, ImportError) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "ray[client]" in msg or "ray\\[client\\]" in msg:
            raise ConfigError("Ray Client (--address ray://...) needs ray[client]: pip install 'dsrecon[ray]'") from None
        raise ConfigError(f"--address {address or '(a new local instance)'}: Ray did not connect: {msg[:300]}") from None


class _OnceEach:
    """Wraps Ray's driver-side printer of cluster errors (a dead raylet's log dump arrives once per
    subscriber and was printed twice): each distinct message is printed once."""

    def __init__(self, inner):
        self.inner, self.seen = inner, set()

    def __call__(self, data, *args, **kw):
        text = "\n".join(map(str, data.get("lines", []))) if isinstance(data, dict) else str(data)
        if text in self.seen:
            return None
        self.seen.add(text)
        return self.inner(data, *args, **kw)




def _lost(spec: dict, reason: str, **extra) -> dict:
    return {**{k: spec[k] for k in _RECORD_KEYS}, "run_dir": spec["run_dir"], "status": "error",
            "reason": reason, "metrics": {}, "noise_floor": {}, "variants": {}, "environment": True, **extra}


def _ray(specs, address: str | None, threads: int, *, runtime_env: dict | None = None,
         connect_timeout: float = CONNECT_TIMEOUT, max_attempts: int = MAX_ATTEMPTS, echo=print):
    """Run ``specs`` as Ray tasks. A run that its node failed (the node or worker died, out of memory, a data
    file missing there) is submitted again, to a node that has not failed it when one is alive, up to
    ``max_attempts`` tries in all; after that it is reported as an error (not finished: a restart retries it)."""
    ray = _import_ray()
    try:
        import ray._private.worker as ray_worker   # optional extra (dsrecon[ray]); where Ray prints cluster errors
    except ImportError:
        ray_worker = None
    started = False
    if not ray.is_initialized():
        _connect(ray, address, runtime_env, connect_timeout)
        started = True
    printer = getattr(ray_worker, "print_to_stdstream", None) if ray_worker is not None else None
    if printer is not None:
        ray_worker.print_to_stdstream = _OnceEach(printer)
    try:
        def dsrecon_run(spec):
            # defined here, so Ray pickles it by value and dsrecon (and torch) are imported on the node at call
            # time only: Ray Client's server on the head otherwise imports them to unpickle run_one, and torch's
            # MKL could not load there ("Intel oneMKL FATAL ERROR: Cannot load libtorch_cpu.so", measured)
            from dsrecon.backends import run_one as run

            return run(spec)

        remote = ray.remote(num_cpus=threads, max_retries=0)(dsrecon_run)
        tries: dict[str, list[str]] = {}   # key -> nodes that failed it ("" when unknown)

        def submit(spec):
            avoid = set(tries.get(spec["key"], []))
            opts = {}
            if avoid - {""}:
                alive = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["NodeID"] not in avoid
                         and n.get("Resources", {}).get("CPU", 0) >= threads]
                if alive:
                    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy   # optional extra: ray

                    opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(alive[0], soft=True)
            return (remote.options(**opts) if opts else remote).remote(spec)

        pending = {submit(s): s for s in specs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ready[0])
            try:
                rec = ray.get(ready[0])
            except Exception as err:  # noqa: BLE001 - the node or worker was lost (run_one itself never raises)
                rec = _lost(spec, f"ray: {type(err).__name__}: {err}".splitlines()[0])
            if rec.get("status") == "error" and rec.get("environment"):
                tried = tries.setdefault(spec["key"], [])
                tried.append(str(rec.get("node", "")))
                if len(tried) < max_attempts:
                    echo(f"  retrying {Path(spec['run_dir']).name} on another node (try {len(tried) + 1} of "
                         f"{max_attempts}): {rec['reason']}")
                    pending[submit(spec)] = spec
                    continue
                rec["reason"] = f"{rec['reason']} (after {len(tried)} tries)"
            yield rec
    finally:
        if printer is not None:
            ray_worker.print_to_stdstream = printer
        if started:
            ray.shutdown()


def _import_ray():
    try:
        import ray   # an optional extra (dsrecon[ray]): imported only for --backend ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'dsrecon[ray]'") from None
    return ray
