"""What the default fit costs as the recording grows: channels and length (issue 22, part 7).

For each case, ``dsrecon fit FILE --dt 0.01 --seed 0`` with **no other option** but the training budget (the
defaults a new user gets), as a subprocess, on a recording made from the Lorenz card:

- channels N in 3, 10, 32, 64, 128: the card's 3 channels (N = 3), else a fixed random linear mixture of them into N
  channels plus 5 % independent observation noise per channel (the shape of many-electrode recordings: many
  channels, few degrees of freedom). Length 10⁴ samples.
- length T in 500, 2000, 10⁴, 10⁵ (and 10⁶ with ``--long``): the card's 3 channels, simulated with its settings.

Each recording is split by dsrecon's own rule (80 % train). Per case the table gives what the defaults chose
(latent size M, hidden width L, candidates K, steps trained and why training stopped), the training time per step,
the wall time, D_stsp and D_H of the scored free run, and the wall time as a ratio to the **baseline case**: 3
channels, 10⁴ samples, in the same run of this script. With ``--steps N`` every fit trains at most N steps and the
table adds the default budget's projected wall: setup + (train seconds per step) x (steps the default would train:
its TrainConfig.steps, or fewer if it stopped early) + scoring; the scores of such a reduced run are not the
default's.

    python benchmarks/bench_scale.py                         # every case, full defaults (hours on 2 cores)
    python benchmarks/bench_scale.py --steps 200             # a quick look: per-step cost and projected wall
    python benchmarks/bench_scale.py --channels 3,64 --lengths 10000 --steps 300

Runs are ordinary run directories under ``--out`` (default runs/bench_scale); one that holds metrics.json is reused.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DT = 0.01
NOISE = 0.05
BASELINE = (3, 10_000)


def recording(n_channels: int, n_samples: int, folder: Path) -> Path:
    """The Lorenz card's trajectory (physical units) as an (n_samples, n_channels) .npy file, written once."""
    path = folder / f"lorenz-N{n_channels}-T{n_samples}.npy"
    if path.exists():
        return path
    import dsrecon as ds

    n_test = max(n_samples // 5, 1)
    data = ds.load("lorenz", n_train=n_samples - n_test, n_test=n_test)   # simulated with the card's settings
    x = ds.to_physical(data)["x"].values[:n_samples]
    x = np.asarray(x, dtype=np.float64)
    if n_channels != x.shape[1]:
        rng = np.random.default_rng(n_channels)
        mix = rng.standard_normal((x.shape[1], n_channels)) / np.sqrt(x.shape[1])
        x = x @ mix
        x = x + NOISE * x.std(axis=0) * rng.standard_normal(x.shape)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, x)
    os.replace(tmp, path)
    return path


def run_case(n_channels: int, n_samples: int, args) -> dict:
    out = Path(args.out) / (f"N{n_channels}-T{n_samples}" + ("" if not args.steps else f"-steps{args.steps}"))
    data = recording(n_channels, n_samples, Path(args.out) / "data")
    if not (out / "metrics.json").exists():
        cmd = [sys.executable, "-m", "dsrecon.cli", "fit", str(data), "--dt", repr(DT), "--seed", "0", "--quiet",
               "--out", str(out), "--overwrite", "--threads", str(args.threads)]
        cmd += ["--steps", str(args.steps)] if args.steps else []
        t0 = time.monotonic()
        rc = subprocess.call(cmd)
        wall = time.monotonic() - t0
        print(f"{out.name}: exit {rc} after {wall:.0f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
        if rc != 0:
            return {"N": n_channels, "T": n_samples, "error": f"exit {rc}"}
        (out / "wall.json").write_text(json.dumps({"wall_seconds": wall}))
    m = json.loads((out / "metrics.json").read_text())
    info = json.loads((out / "config.json").read_text())
    import torch

    hp = torch.load(out / "model.pt", weights_only=True, map_location="cpu")["config"]["hparams"]
    wall = json.loads((out / "wall.json").read_text())["wall_seconds"]
    steps, train_s = int(m.get("steps") or 0), float(m.get("train_seconds") or 0.0)
    row = {"N": n_channels, "T": n_samples, "M": hp.get("latent_dim", hp.get("units")), "L": hp.get("hidden_dim"),
           "K": info["config"]["train"].get("ensemble"), "steps": steps, "stopped": m.get("stopped"),
           "s_per_step": train_s / max(steps, 1), "train_s": train_s, "wall_s": wall,
           "D_stsp": m.get("D_stsp"), "D_H": m.get("D_H"), "status": m.get("status")}
    if args.steps:
        from dsrecon.config import TrainConfig

        default_steps = TrainConfig().steps
        row["projected_s"] = wall - train_s + row["s_per_step"] * default_steps
    return row


def _fmt(v, digits=3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--channels", default="3,10,32,64,128")
    p.add_argument("--lengths", default="500,2000,10000,100000")
    p.add_argument("--long", action="store_true", help="also 10^6 samples (simulated)")
    p.add_argument("--steps", type=int, default=None, help="train at most N steps and project the default's wall")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/bench_scale")
    args = p.parse_args(argv)
    channels = [int(c) for c in args.channels.split(",") if c]
    lengths = [int(n) for n in args.lengths.split(",") if n] + ([1_000_000] if args.long else [])
    cases = [BASELINE] + [(n, 10_000) for n in channels if (n, 10_000) != BASELINE] + \
        [(3, t) for t in lengths if (3, t) != BASELINE]
    rows = [run_case(n, t, args) for n, t in cases]
    base = rows[0].get("projected_s" if args.steps else "wall_s")
    cols = ["N", "T", "M", "L", "K", "steps", "stopped", "s_per_step", "train_s", "wall_s"] + \
        (["projected_s"] if args.steps else []) + ["ratio", "D_stsp", "D_H", "status"]
    print(f"\nbaseline: N = {BASELINE[0]} channels, T = {BASELINE[1]} samples (ratio 1.00 in this run)"
          + (f"; every fit at most {args.steps} steps, projected to the default budget" if args.steps else ""))
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        if "error" in r:
            print(f"| {r['N']} | {r['T']} | " + r["error"] + " |")
            continue
        own = r.get("projected_s" if args.steps else "wall_s")
        r["ratio"] = None if not base else own / base
        print("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
