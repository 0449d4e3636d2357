"""Training methods and models on Lorenz.

A set of ordinary ``dsrecon fit`` runs (one run directory each, skipped when it already has metrics.json, so an
interrupted benchmark continues where it stopped). The τ-sweep of "How to train RNNs on chaotic data" Fig. 1 is
``benchmarks/bench_tau_sweep.py`` (a sweep, median over seeds, every dataset).


- ``methods``: every model × {stf, gtf} plus the paper's baselines (bptt-clip, window) for the PLRNN, each with
  a fixed number of optimiser steps chosen so that training takes about 7 minutes of one core on an idle
  2-core machine (measured CPU time per step: PLRNN ≈ 25 ms, shPLRNN ≈ 35, RNN ≈ 21, LSTM ≈ 72, GRU ≈ 83 at
  the default sizes, batch 32, 200-step subsequences). Fixed steps, not a time budget, so that the numbers do
  not depend on how busy the machine is; the wall time of each run is printed next to them.

Prints one table: D_stsp, D_H, PSC with the noise floor, steps, wall time.

    python benchmarks/bench_methods.py methods [--root runs/bench]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

STEPS = {"plrnn": 15000, "shplrnn": 12000, "rnn": 15000, "lstm": 6000, "gru": 5000}


def runs(experiment: str = "methods") -> list[tuple[str, list[str]]]:
    """(run name, extra `dsrecon fit lorenz` arguments) of the experiment."""
    # 200-step windows for every method, as when docs/training.md's table was measured (gtf's default is now 50)
    # and the shPLRNN of that time (M = 100, L = 50, unclipped; fit's shPLRNN is now sized from the data, clipped)
    then = {"shplrnn": ["--latent-dim", "100", "--set", "model.hidden_dim=50", "--set", "model.clipped=false"]}
    out = [(f"{m}-{meth}", ["--model", m, "--method", meth, "--steps", str(s), "--set", "train.seq_len=200",
                            *then.get(m, [])])
           for m, s in STEPS.items() for meth in ("stf", "gtf")]
    out += [(f"plrnn-{meth}", ["--model", "plrnn", "--method", meth, "--steps", str(STEPS["plrnn"])])
            for meth in ("bptt-clip", "window")]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=["methods"])
    p.add_argument("--root", default=None, help="where the run directories go (default: runs/bench)")
    p.add_argument("--table-only", action="store_true", help="print the table of the runs already done, run nothing")
    args = p.parse_args()
    root = Path(args.root or "runs/bench")
    root.mkdir(parents=True, exist_ok=True)
    for name, extra in runs(args.experiment):
        out = root / name
        if (out / "metrics.json").exists() or args.table_only:
            continue
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "dsrecon.cli", "fit", "lorenz", *extra, "--quiet", "--out", str(out)]
        rc = subprocess.call(cmd)
        print(f"{name}: exit {rc} after {time.monotonic() - t0:.0f} s", flush=True)
    rows = []
    for name, _ in runs(args.experiment):
        mpath = root / name / "metrics.json"
        if not mpath.exists():
            rows.append(f"| {name} | not run |")
            continue
        m = json.loads(mpath.read_text())
        nf = m.get("noise_floor", {})
        f = lambda v: f"{float(v):.3f}" if v is not None and math.isfinite(float(v)) else str(v)  # noqa: E731
        rows.append(f"| {name} | {m.get('tau')} | {f(m['D_stsp'])} | {f(m['D_H'])} | {f(m['PSC'])} | "
                    f"{f(nf.get('D_stsp'))} / {f(nf.get('D_H'))} | {m.get('steps')} | {m.get('train_seconds', 0):.0f} |")
    print("| run | tau | D_stsp | D_H | PSC | noise floor D_stsp / D_H | steps | train s |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
