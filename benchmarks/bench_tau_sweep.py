"""The τ-sweep of "How to train RNNs on chaotic data" Fig. 1: reconstruction quality against the forcing interval.

Runs the sweep in ``--config`` (default ``benchmarks/configs/tau-sweep.toml``: Lorenz, Rössler, Mackey-Glass and
Duffing × PLRNN, RNN, LSTM × sparse forcing at τ ∈ {5 … 400} and BPTT with gradient clipping) through
:func:`dsrecon.sweep.run_sweep` (resumable: finished runs are skipped), then prints, per dataset, the median D_stsp
and D_H over seeds at each τ next to τ_pred = ln2/λ_max (the card's reference λ) and the clipped-BPTT reference,
and says at which τ each model did best. The figures ``tau_sweep-<dataset>.png`` are written next to the results.

The paper's claim to check: τ near τ_pred beats both small τ (too much forcing: the model never learns to run
freely) and large τ (exploding gradients), and sparse forcing beats gradient clipping.

    python benchmarks/bench_tau_sweep.py [--config benchmarks/configs/tau-sweep-lorenz.toml] [--backend ray]

``--compare-ensemble`` runs the same sweep twice in this process, into ``<out>/process-pool`` (every run its own
process-pool task, ``--no-ensemble-jobs``) and ``<out>/ensemble-jobs`` (runs that differ by seed and τ trained as
ensemble jobs, docs/ensembles.md), and prints both wall times, the CPU seconds of each (this process and its
workers) and their ratios. ``--steps N`` (and ``--t-gen``) shorten every run for a quick measurement: train.steps
becomes N in every section, validate_every and checkpoint_every shrink by the same factor (the same number of
validations per run):

    python benchmarks/bench_tau_sweep.py --config benchmarks/configs/tau-sweep-lorenz.toml --compare-ensemble \
        --steps 300 --t-gen 5000 --workers 2 --out runs/bench-jobs
"""
from __future__ import annotations

import argparse
import copy
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np

from dsrecon import data as data_mod
from dsrecon.leaderboard import plot_tau_sweeps
from dsrecon.metrics import median_mad
from dsrecon.results import read_results
from dsrecon.sweep import load_sweep, parse_sweep, run_sweep


def tau_pred(dataset: str) -> float:
    c = data_mod.card(dataset)
    lam = float(c.get("reference", {}).get("lambda_max", math.nan))
    return math.log(2) / (lam * float(c["sampling"]["dt"])) if lam > 0 else math.nan


def table(ds, dataset: str, metric: str) -> str:
    rows = [i for i in range(ds.sizes["run"]) if str(ds["dataset"].values[i]) == dataset]
    groups: dict[tuple, dict] = {}
    for i in rows:
        t = ds["tau_steps"].values[i]
        key = (str(ds["model"].values[i]), str(ds["method"].values[i]))
        v = float(ds[metric].values[i]) if str(ds["status"].values[i]) == "ok" else math.inf
        groups.setdefault(key, {}).setdefault(int(t) if np.isfinite(t) else None, []).append(v)
    taus = sorted({t for g in groups.values() for t in g if t is not None})
    lines = [f"{dataset} — {metric} (median over seeds), tau_pred = {tau_pred(dataset):.1f} steps",
             "| model / method | " + " | ".join(f"tau {t}" for t in taus) + " | no tau | best tau |",
             "|---" * (len(taus) + 3) + "|"]
    for (model, method), by in sorted(groups.items()):
        med = {t: median_mad(v)[0] for t, v in by.items()}
        cells = [f"{med[t]:.3f}" if t in med else "" for t in taus]
        flat = f"{med[None]:.3f}" if None in med else ""
        finite = {t: m for t, m in med.items() if t is not None and math.isfinite(m)}
        best = str(min(finite, key=finite.get)) if finite else "–"
        lines.append(f"| {model} / {method} | " + " | ".join(cells) + f" | {flat} | {best} |")
    return "\n".join(lines)


def shortened(source: dict, steps: int | None, t_gen: int | None) -> dict:
    """A copy of a sweep's TOML dict shortened by the factor f = ``steps`` / its [train] steps: every
    train.steps, validate_every and checkpoint_every it sets (fixed, per-model or per-dataset) times f, so
    the runs keep their proportions and their number of validations; eval.t_gen = ``t_gen``. None leaves a
    setting as it is."""
    src = copy.deepcopy(source)
    if steps is not None:
        f = steps / int(src.get("train", {}).get("steps", 15000))
        src.setdefault("train", {})["steps"] = int(src["train"].get("steps", 15000))
        for t in [src] + [sec for key in ("per_model", "per_dataset") for sec in src.get(key, {}).values()]:
            for k in ("steps", "validate_every", "checkpoint_every"):
                if t.get("train", {}).get(k):
                    t["train"][k] = max(1, round(t["train"][k] * f))
    if t_gen is not None:
        src.setdefault("eval", {})["t_gen"] = t_gen
    return src


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children (the process pool's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def compare_ensemble(source: dict, path: str, out: Path, backend_kw: dict) -> list:
    """Run the sweep with and without ensemble jobs (fresh folders under ``out``), timed; returns the two
    result folders. Refuses folders that already hold runs (their finished runs would be skipped, not timed)."""
    times, outs = {}, []
    for mode, jobs in (("process-pool", False), ("ensemble-jobs", True)):
        folder = out / mode
        if any(folder.glob("runs/*")):
            sys.exit(f"bench_tau_sweep: {folder} already holds runs; give a new --out to time both modes afresh")
        sweep = parse_sweep(source, path=path, out=folder)
        t0, c0 = time.monotonic(), cpu_seconds()
        res = run_sweep(sweep, ensemble_jobs=jobs, **backend_kw)
        times[mode] = (time.monotonic() - t0, cpu_seconds() - c0, res)
        outs.append(folder)
    (w0, c0, r0), (w1, c1, r1) = times["process-pool"], times["ensemble-jobs"]
    print(f"\nprocess pool : {w0:8.1f} s wall, {c0:8.1f} CPU s, {r0.ran} runs, {len(r0.errors)} errors")
    print(f"ensemble jobs: {w1:8.1f} s wall, {c1:8.1f} CPU s, {r1.ran} runs, {len(r1.errors)} errors")
    print(f"ratio process pool / ensemble jobs: wall {w0 / w1:.2f}x, CPU {c0 / c1:.2f}x\n")
    return outs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(Path(__file__).parent / "configs" / "tau-sweep.toml"))
    p.add_argument("--out", default=None, help="output folder (default: the config's)")
    p.add_argument("--backend", default="local", choices=["local", "ray"])
    p.add_argument("--address", default=None, help="Ray cluster address")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--table-only", action="store_true", help="print the tables of the runs already done")
    p.add_argument("--ensemble-jobs", action=argparse.BooleanOptionalAction, default=None,
                   help="fold seeds and taus into ensemble jobs (default: the config's [sweep] ensemble)")
    p.add_argument("--compare-ensemble", action="store_true",
                   help="run the sweep with and without ensemble jobs and print both wall times and their ratio")
    p.add_argument("--steps", type=int, default=None, help="train.steps of every run (a shortened measurement)")
    p.add_argument("--t-gen", type=int, default=None, help="eval.t_gen of every run")
    args = p.parse_args()
    sweep = load_sweep(args.config, out=args.out)
    source = shortened(sweep.source, args.steps, args.t_gen)
    if args.compare_ensemble:
        if args.backend != "local" or args.table_only:
            sys.exit("bench_tau_sweep: --compare-ensemble runs the local backend (ensemble jobs are local only)")
        outs = compare_ensemble(source, args.config, Path(args.out or sweep.out), {"workers": args.workers})
    else:
        sweep = parse_sweep(source, path=args.config, out=args.out)
        if not args.table_only:
            run_sweep(sweep, backend=args.backend, address=args.address, workers=args.workers,
                      ensemble_jobs=args.ensemble_jobs)
        outs = [sweep.out]
    for out in outs:
        ds = read_results(out)
        print(f"results in {out}")
        for dataset in sorted(set(map(str, ds["dataset"].values))):
            for metric in ("D_stsp", "D_H"):
                print(table(ds, dataset, metric), end="\n\n")
        for path in plot_tau_sweeps(ds, out):
            print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
