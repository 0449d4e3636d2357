"""A sweep on a two-node Ray cluster against the local backend with the same total cores (issue 16).

Starts a loopback cluster (head raylet on 127.0.0.2, worker raylet on 127.0.0.3, ``--cpus`` CPUs each; the
helper of ``tests/test_ray_cluster.py``, which kills everything it started on exit), then, in one run of this
script:

1. the local backend (a process pool of 2 × ``--cpus`` workers) runs the sweep from a driver folder with a
   relative ``--out`` and a relative data file;
2. the Ray backend runs the same sweep from another driver folder, the cluster having been started from a
   third folder;
3. ``dsrecon sweep ... --backend ray --address 127.0.0.9:6390`` (nothing listens there) with the default
   ``--connect-timeout``.

It prints the wall time of each (the Ray time includes connecting, not starting the cluster), whether every
artifact landed in the one output folder, whether the metrics are identical, and the node of each run.

    python benchmarks/bench_ray_cluster.py [--runs-per-dataset 4] [--steps 300] [--cpus 1]

Only loopback addresses are used.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_ray_cluster import loopback_cluster, write_recording  # noqa: E402

from dsrecon.cli import main  # noqa: E402
from dsrecon.results import read_results  # noqa: E402

SWEEP = """[sweep]
name = "bench-ray"
datasets = ["rec.csv", "lorenz"]
models = ["plrnn"]
methods = ["stf"]
seeds = {seeds}
taus = [20]
[model]
latent_dim = 8
[train]
steps = {steps}
validate_every = 0
checkpoint_every = 100
batch_size = 8
seq_len = 40
[eval]
t_gen = 2000
"""


def timed_sweep(cwd: Path, args: list[str]) -> tuple[int, float]:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        t0 = time.perf_counter()
        code = main(["sweep", "../cfg/s.toml", "--out", "rel_out", "--quiet", *args])
        return code, time.perf_counter() - t0
    finally:
        os.chdir(old)


def one_place(out: Path) -> tuple[bool, int]:
    ds = read_results(out)
    ok = all(Path(str(rd)).parent == out.absolute() / "runs" and (Path(str(rd)) / "model.pt").is_file()
             and (Path(str(rd)) / "result.json").is_file() and list(Path(str(rd)).glob("*.png"))
             for rd in ds["run_dir"].values)
    return ok, ds.sizes["run"]


def main_bench() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-per-dataset", type=int, default=4, help="seeds per dataset (default 4; 2 datasets)")
    ap.add_argument("--steps", type=int, default=300, help="training steps per run (default 300)")
    ap.add_argument("--cpus", type=int, default=1, help="CPUs per node (default 1; local gets 2x this)")
    a = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    os.environ.setdefault("DSRECON_CACHE_DIR", str(root / "cache"))
    (root / "cfg").mkdir()
    (root / "cfg" / "s.toml").write_text(SWEEP.format(seeds=list(range(a.runs_per_dataset)), steps=a.steps))
    for d in ("local", "ray", "cluster-cwd"):
        (root / d).mkdir()
    write_recording(root / "local" / "rec.csv")
    (root / "ray" / "rec.csv").write_bytes((root / "local" / "rec.csv").read_bytes())
    import dsrecon

    dsrecon.load("lorenz")   # generate the cached series once, outside both timings

    n_runs = 2 * a.runs_per_dataset
    code_l, t_local = timed_sweep(root / "local", ["--workers", str(2 * a.cpus)])
    with loopback_cluster(root / "cluster-cwd", cpus_per_node=a.cpus) as address:
        code_r, t_ray = timed_sweep(root / "ray", ["--backend", "ray", "--address", address])
    (root / "local2").mkdir()   # the local backend again, after Ray: order effects (caches, a busy machine)
    (root / "local2" / "rec.csv").write_bytes((root / "local" / "rec.csv").read_bytes())
    code_l2, t_local2 = timed_sweep(root / "local2", ["--workers", str(2 * a.cpus)])
    local, ray_ = read_results(root / "local" / "rel_out").sortby("key"), read_results(root / "ray" / "rel_out").sortby("key")
    same = all(np.array_equal(local[m].values, ray_[m].values, equal_nan=True)
               for m in ("D_stsp", "D_H", "PSC", "PE", "floor_D_stsp"))
    place, n = one_place(root / "ray" / "rel_out")
    print(f"\n{n_runs} runs ({a.steps} steps each), local backend {2 * a.cpus} workers vs 2-node loopback Ray "
          f"cluster ({a.cpus} CPU per node), the same total cores:")
    print(f"  local: {t_local:6.1f} s (exit {code_l}) before Ray, {t_local2:6.1f} s (exit {code_l2}) after")
    print(f"  ray:   {t_ray:6.1f} s (exit {code_r}); ray / local = {t_ray / t_local:.2f} (before), "
          f"{t_ray / t_local2:.2f} (after)")
    print(f"  ray: {n} runs in results.nc, every artifact in {root / 'ray' / 'rel_out'}: {place}; "
          f"nothing in the cluster's folder: {not any((root / 'cluster-cwd').iterdir())}")
    print(f"  metrics identical to the local backend: {same}")
    nodes = sorted(set(map(str, ray_["node"].values)))
    print(f"  runs per node: " + ", ".join(f"{nd[:8]}…: {int((ray_['node'] == nd).sum())}" for nd in nodes))

    toml = root / "cfg" / "s.toml"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "dsrecon.cli", "sweep", str(toml), "--out", str(root / "nowhere"),
                        "--backend", "ray", "--address", "127.0.0.9:6390"], capture_output=True, text=True,
                       timeout=120, cwd=root / "ray")
    dt = time.perf_counter() - t0
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    print(f"\n`dsrecon sweep ... --backend ray --address 127.0.0.9:6390`: exit {r.returncode} after {dt:.1f} s, "
          f"{len(lines)} line(s) of output, output folder created: {(root / 'nowhere').exists()}")
    for line in lines:
        print(f"  {line}")
    return 0 if code_l == code_r == code_l2 == 0 and same and place and r.returncode == 2 else 1


if __name__ == "__main__":
    sys.exit(main_bench())
