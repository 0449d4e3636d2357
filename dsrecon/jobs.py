"""Ensemble jobs of a sweep (issue 14 part 4): runs that differ only by seed and τ trained as one batched model.

A sweep's grid repeats one configuration over seeds (and, for the forcing methods, over τ). Such runs share
the data, the architecture and every setting but the seed and τ, so they can train as the members of one
:class:`dsrecon.ensemble.Ensemble` in the one training loop (:func:`dsrecon.train.train_loop`, one τ per member:
:func:`dsrecon.train.member_tau`): each member initialises with its run's seed and samples its batches with
it, exactly as its single run does (up to float rounding, tests/test_ensemble_jobs.py).

- :func:`plan_jobs` groups the unfinished runs (:func:`job_group`) into jobs of at most ``max_members``,
  and splits jobs while there are fewer than ``workers`` of them, so that every worker has something to do.
  A run that cannot join one (GRU, a driven model, flossing, an ``--ensemble`` run, a baseline) or that
  already has its own checkpoint (a started single run: it resumes as one) or is to be run afresh over its old
  run (``fresh``: a stale record, replaced through fit_run's overwrite, never by a job's ``clear_run``) stays a
  job of its own.
- :func:`train_job` trains a job's members together, with the checkpoint of the whole ensemble in
  ``<out>/jobs/job-<key>/last.pt`` (an interrupted job resumes from it: the same unfinished runs regroup to
  the same key), then writes into every member's run directory its ``config.json`` and, as
  ``checkpoints/last.pt``, the member's own single-run checkpoint at the end of training. Each member run is
  then finished by the ordinary single-run path, a resume with no steps left (:func:`dsrecon.sweep.run_one`):
  final validation, ``model.pt``, scores, ``metrics.json``, ``generated.nc``, figures and ``result.json`` are
  written exactly as for a run trained alone, under the run's own key and folder. So results.nc, the
  leaderboard and the skipping of finished runs see no difference, and a job interrupted while its members
  are being scored leaves runs that resume one by one.

Pitfalls: a member's ``train_seconds`` is the whole job's training time (the members trained together). A
member whose training diverged (more than ``max_recoveries`` recoveries) is recorded as failed, as its single
run would be, but after a recovery a member departs from its single run (docs/ensembles.md). Only the
``local`` backend folds jobs; on Ray every run is its own task, as before.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from pathlib import Path

from . import data as data_mod
from .config import RunConfig
from .ensemble import SUPPORTED, Ensemble
from .experiment import _prepare
from .models import MODELS
from .runs import clear_run, data_fingerprint, load_torch, package_versions, save_torch, write_json
from .train import USES_TAU, _member_history, train_loop

log = logging.getLogger("dsrecon")

MAX_JOB_MEMBERS = 16   # members per job: beyond this the batched step gains little on a CPU (docs/ensembles.md)


def job_group(spec: dict) -> str | None:
    """What a run shares with the other members of its job (a string), or None when it cannot join one.

    Members share the dataset, model, method and every setting of the run's config but ``train.seed`` and, for
    the methods whose τ is a forcing interval (stf, id-tf, window: one τ per member), ``train.tau``. Runs of
    other methods group over seeds only (gtf with ``gtf_alpha = "auto"`` reads τ as the floor of α, shared).
    None: not a model run, an architecture the ensemble cannot batch, flossing, or an ``--ensemble`` run (a
    number above 1, or "auto", which the run resolves from its data)."""
    if spec.get("kind") != "rnn":
        return None
    cfg = json.loads(json.dumps(spec["config"], default=str))
    train, model = cfg.get("train", {}), cfg.get("model", {})
    cls = MODELS.get(model.get("kind"))
    if cls is None or not issubclass(cls, SUPPORTED) or train.get("ensemble", 1) != 1 \
            or int(train.get("floss_k", 0) or 0):
        return None
    train.pop("seed", None)
    if train.get("method") in USES_TAU:
        train.pop("tau", None)
    return json.dumps({"dataset": spec["dataset"], "model": spec["model"], "method": spec["method"],
                       "config": cfg}, sort_keys=True)


def _started_alone(spec: dict) -> bool:
    """A run with its own training checkpoint (interrupted alone, or a job's member already written): it
    resumes as a single run."""
    run_dir = Path(spec["run_dir"])
    return (run_dir / "config.json").exists() and (run_dir / "checkpoints" / "last.pt").exists()


def make_job(specs: list[dict]) -> dict:
    """A job of ``specs`` (two or more runs of one group): its key (a hash of the members' keys, so the same
    unfinished runs always make the same job) and its folder ``<out>/jobs/job-<key>`` for the checkpoint."""
    key = hashlib.sha1(",".join(s["key"] for s in specs).encode()).hexdigest()[:10]
    out = Path(specs[0]["run_dir"]).parent.parent
    return {"kind": "job", "key": key, "members": specs, "run_dir": str(out / "jobs" / f"job-{key}"),
            "threads": int(specs[0].get("threads", 1))}


def plan_jobs(specs: list[dict], workers: int = 1, max_members: int = MAX_JOB_MEMBERS) -> list[dict]:
    """The unfinished runs ``specs`` as work items: jobs (:func:`make_job`) of the runs of one
    :func:`job_group`, each of at most ``max_members``, and single specs for the rest. While there are
    fewer items than ``workers``, the largest job is halved (a job uses one worker; idle workers cost more
    than the batching saves). Jobs come first, largest first, so that the long items start early."""
    if max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}")
    groups: dict[str, list[dict]] = {}
    single = []
    for s in specs:
        g = None if _started_alone(s) or s.get("fresh") else job_group(s)   # fresh: its old run is replaced alone
        if g is None:
            single.append(s)
        else:
            groups.setdefault(g, []).append(s)
    chunks = []
    for members in groups.values():
        n = math.ceil(len(members) / max_members)
        size = math.ceil(len(members) / n)
        chunks += [members[i:i + size] for i in range(0, len(members), size)]
    while len(chunks) + len(single) < workers and any(len(c) > 1 for c in chunks):
        big = max(range(len(chunks)), key=lambda i: len(chunks[i]))
        c = chunks.pop(big)
        chunks += [c[: len(c) // 2], c[len(c) // 2:]]
    chunks.sort(key=len, reverse=True)
    return [make_job(c) if len(c) > 1 else c[0] for c in chunks] + single


def train_job(job: dict, quiet: bool = True) -> dict[str, str]:
    """Train a job's members as one ensemble and leave in every member's run directory its ``config.json``
    and its own single-run checkpoint at the end of training (see the module docstring).

    Returns {run key: reason} for the members whose training diverged (their runs failed, as a single run
    would); the other members are ready for :func:`dsrecon.sweep.run_one` to finish. The job's checkpoint
    folder is removed once every member's checkpoint is written.
    Raises: ConfigError/DataError when the runs cannot train as one ensemble (an unsupported model, a driven
      model, too little memory, an unusable job checkpoint): the caller then runs them one by one;
      DivergenceError when every member diverged; :class:`dsrecon.train.Interrupted` on Ctrl-C (the job's
      checkpoint is kept: a restart resumes it).
    """
    specs = job["members"]
    cfgs = [RunConfig.from_dict(s["config"]) for s in specs]
    data = data_mod.load_for(cfgs[0].data)
    notes: list[list[str]] = []
    prepared = []
    for c in cfgs:   # every check and choice of the single run, per member: its model (its seed), its τ
        lines: list[str] = []
        prepared.append(_prepare(c, data, lines.append))
        notes.append(lines)
    models, taus = [p[0] for p in prepared], [p[1] for p in prepared]   # (each p: model, tau, fi, cfg)
    ens = Ensemble(models)   # ConfigError for what cannot be batched: the caller runs the members alone
    job_dir = Path(job["run_dir"])
    ck = job_dir / "last.pt"
    resuming = ck.exists()
    fingerprint, versions = data_fingerprint(data), package_versions()
    run_dirs = [Path(s["run_dir"]) for s in specs]
    handlers = []
    try:
        for k, (spec, c, run_dir) in enumerate(zip(specs, cfgs, run_dirs)):
            run_dir.mkdir(parents=True, exist_ok=True)
            if not resuming:
                clear_run(run_dir)   # leftovers of an attempt that wrote no checkpoint (only dsrecon's names)
            write_json(run_dir / "config.json", {
                "config": c.to_dict(), "tau_steps": taus[k], "versions": versions, "data_fingerprint": fingerprint,
                "ensemble_job": {"job": job["key"], "member": k, "size": len(specs)}})
            h = logging.FileHandler(run_dir / "train.log")
            h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            h.handleError = lambda record: None
            handlers.append(h)
            log.addHandler(h)
            if not resuming:
                for line in notes[k]:
                    log.info(line)
            log.info("trained as member %d of an ensemble job of %d runs (job %s, members' seeds %s, tau %s); the "
                     "job's log follows", k, len(specs), job["key"], ens.seeds, taus)
            log.removeHandler(h)
        for h in handlers:
            log.addHandler(h)
        log.setLevel(logging.INFO)
        job_dir.mkdir(parents=True, exist_ok=True)
        tau = None if all(t is None for t in taus) else taus
        res = train_loop(ens, data_mod.as_array(data_mod.train_test_split(data)[0]), tau=tau, config=cfgs[0].train,
                        checkpoint=ck, resume=resuming, progress=not quiet)
    finally:
        for h in handlers:
            log.removeHandler(h)
            h.close()
    state = load_torch(ck)   # the final snapshot, written by train.train_loop after its loop (before the final validation)
    failed = {}
    for k, (spec, run_dir) in enumerate(zip(specs, run_dirs)):
        mine = {**state["members"][k], "step": state["step"], "elapsed": state["elapsed"], "tau": taus[k],
                "history": _member_history(state["history"], k)}
        save_torch(run_dir / "checkpoints" / "last.pt", mine)
        if res.members[k].stopped == "diverged":
            failed[spec["key"]] = (f"training diverged: {mine['recoveries']} non-finite or exploding losses in an "
                                   f"ensemble job; the last good state is in {run_dir / 'checkpoints' / 'last.pt'}. "
                                   f"Try a smaller --set train.lr=... or another --tau")
    shutil.rmtree(job_dir, ignore_errors=True)
    return failed
