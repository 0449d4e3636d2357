"""The τ-sweep of "How to train RNNs on chaotic data" Fig. 1: reconstruction quality against the forcing interval.

Runs the sweep in ``--config`` (default ``benchmarks/configs/tau-sweep.toml``: Lorenz, Rössler, Mackey-Glass and
Duffing × PLRNN, RNN, LSTM × sparse forcing at τ ∈ {5 … 400} and BPTT with gradient clipping) through
:func:`dsrecon.sweep.run_sweep` (resumable: finished runs are skipped), then prints, per dataset, the median D_stsp
and D_H over seeds at each τ next to τ_pred = ln2/λ_max (the card's reference λ) and the clipped-BPTT reference,
and says at which τ each model did best. The figures ``tau_sweep-<dataset>.png`` are written next to the results.

The paper's claim to check: τ near τ_pred beats both small τ (too much forcing: the model never learns to run
freely) and large τ (exploding gradients), and sparse forcing beats gradient clipping.

    python benchmarks/bench_tau_sweep.py [--config benchmarks/configs/tau-sweep-lorenz.toml] [--backend ray]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from dsrecon import data as data_mod
from dsrecon.leaderboard import plot_tau_sweeps
from dsrecon.metrics import median_mad
from dsrecon.results import read_results
from dsrecon.sweep import load_sweep, run_sweep


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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(Path(__file__).parent / "configs" / "tau-sweep.toml"))
    p.add_argument("--out", default=None, help="output folder (default: the config's)")
    p.add_argument("--backend", default="local", choices=["local", "ray"])
    p.add_argument("--address", default=None, help="Ray cluster address")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--table-only", action="store_true", help="print the tables of the runs already done")
    args = p.parse_args()
    sweep = load_sweep(args.config, out=args.out)
    if not args.table_only:
        run_sweep(sweep, backend=args.backend, address=args.address, workers=args.workers)
    ds = read_results(sweep.out)
    for dataset in sorted(set(map(str, ds["dataset"].values))):
        for metric in ("D_stsp", "D_H"):
            print(table(ds, dataset, metric), end="\n\n")
    for path in plot_tau_sweeps(ds, sweep.out):
        print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
