"""A 2000-sample Lorenz-63 recording with the default fit (issue 22): wall time, and D_stsp of the model's free run
against the 10 000 steps that follow the recording (binned, 30 bins per dimension over the truth's range:
``dsrecon.metrics.d_stsp(method="bins")``, box min-max of the truth with the default 0.1 sigma margin).

The recording is the first 2000 samples of the lorenz card's training split (seed 0, physical units, a CSV with a
time column at dt = 0.01), the truth the next 10 000. The fit is ``dsrecon fit recording.csv --seed S --threads 1``
with every other option at its default; its generated.nc (T_gen = 10^5 steps, physical units) is scored.

    python benchmarks/bench_short_lorenz.py --out /tmp/short --seeds 0
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/bench_short_lorenz")
    p.add_argument("--seeds", default="0")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--follow", type=int, default=10_000)
    args = p.parse_args(argv)
    from dsrecon import cli, data as data_mod
    from dsrecon.metrics import d_stsp

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = data_mod.load("lorenz")
    train, _ = data_mod.train_test_split(data_mod.to_physical(ds))
    x = data_mod.as_array(train)
    rec, truth = x[:args.n], x[args.n:args.n + args.follow]
    csv = out / f"lorenz{args.n}.csv"
    np.savetxt(csv, np.column_stack([np.arange(args.n) * 0.01, rec]), delimiter=",", header="time,x,y,z",
               comments="")
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        run = out / f"run_seed{seed}"
        t0, c0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
        rc = cli.main(["fit", str(csv), "--seed", str(seed), "--threads", "1", "--out", str(run), "--overwrite",
                       "--quiet"])
        wall, c1 = time.monotonic() - t0, resource.getrusage(resource.RUSAGE_SELF)
        cpu = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime   # CPU seconds: less sensitive to other load
        gen = data_mod.as_array(data_mod.read_netcdf(run / "generated.nc"))
        d = d_stsp(truth, gen, method="bins", n_bins=30)
        m = json.loads((run / "metrics.json").read_text())
        row = {"seed": seed, "rc": rc, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "train_s": round(m["train_seconds"], 1),
               "D_stsp_following": round(float(d.value), 4), "steps": m["steps"], "stopped": m["stopped"],
               "kept_member": m.get("ensemble", {}).get("kept_member")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
