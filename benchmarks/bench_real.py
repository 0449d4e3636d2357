"""Real recordings and noisy, short simulated series: the default `dsrecon fit` against an echo state network.

Issue 15, part 5. For each dataset, ``dsrecon fit DATA --seed S`` with **no other option** (the defaults a new user
gets) for seeds 0..n-1, and the echo-state-network baseline (:mod:`dsrecon.baselines`, reservoirpy, its own
validation search of hyperparameters) on the same split with the same seeds. Datasets:

- ``chaosrnn-eeg``, ``chaosrnn-weather``: the sparse-forcing paper's recordings (cards of that name), read from
  ``--data-dir`` (default: /work/shared/data/chaosrnn where it exists, else $DSRECON_DATA_DIR or the cache), never
  downloaded by this script unless the cards' cache lacks them and the network is there;
- ``lorenz-noisy``, ``rossler-noisy``, ``mackey-glass-noisy``: the simulated cards with 10 % observation noise and
  5000 samples (4000 train, 1000 test), written as a plain ``.npy`` file and fitted as a user's recording
  (``--dt`` the card's): no second orbit, so the noise floor is a block bootstrap of the training split, as for
  any recording.

Per run: D_stsp (its variant: bins or Gaussian mixture, chosen by ``method="auto"``), D_H and PSC over the
whole free run of T_gen steps with their noise floors, the dynamics verdict of the free run's tail and the
run's status (failed = diverged or collapsed), and wall time. For the two paper recordings also the paper's
own metrics (the ChaosRNN code's variants: EEG D_stsp by Gaussian mixtures with σ² = 0.1 sampled from the
generated run, weather D_stsp by 10 bins in the ±2σ box, D_H of pse.py) next to the paper's figures from the
cards' ``[paper]`` tables. Prints one markdown table (median over seeds) at the end, and the per-run rows.

Runs are ordinary run directories under ``--out`` (default runs/bench_real); one that already holds
metrics.json is reused, so an interrupted benchmark continues where it stopped.

    python benchmarks/bench_real.py                          # everything: 5 datasets x 3 seeds (hours on 2 cores)
    python benchmarks/bench_real.py --seeds 1 --steps 3000   # a quick look
    python benchmarks/bench_real.py --datasets chaosrnn-eeg,chaosrnn-weather --jobs 2
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REAL = ("chaosrnn-eeg", "chaosrnn-weather")
NOISY = {"lorenz-noisy": "lorenz", "rossler-noisy": "rossler", "mackey-glass-noisy": "mackey-glass"}
DATASETS = (*REAL, *NOISY)
NOISE, N_SAMPLES, N_TEST = 0.10, 5000, 1000
SHARED = Path("/work/shared/data/chaosrnn")


def noisy_file(name: str, folder: Path) -> tuple[Path, float]:
    """The simulated card ``NOISY[name]`` with 10 % observation noise and 5000 samples, in physical units, as a
    ``.npy`` file (written once); returns (path, dt)."""
    import dsrecon as ds

    card = NOISY[name]
    data = ds.load(card, noise=NOISE, n_train=N_SAMPLES - N_TEST, n_test=N_TEST)
    path = folder / f"{name}-{int(NOISE * 100)}pct-{N_SAMPLES}.npy"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, ds.to_physical(data)["x"].values)
        os.replace(tmp, path)
    return path, float(data.attrs["dt"])


def fit_args(name: str, folder: Path, data_dir: str | None) -> list[str]:
    """The `dsrecon fit` arguments that name the data (and nothing else: the defaults are what is measured)."""
    if name in REAL:
        return [name] + (["--data-dir", data_dir] if data_dir else [])
    path, dt = noisy_file(name, folder / "data")
    return [str(path), "--dt", repr(dt)]


def load(name: str, folder: Path, data_dir: str | None):
    import dsrecon as ds

    if name in REAL:
        return ds.load(name, data_dir=data_dir)
    path, dt = noisy_file(name, folder / "data")
    return ds.load(str(path), dt=dt)


def run_fit(name: str, seed: int, args, folder: Path) -> dict:
    out = folder / f"{name}-s{seed}"
    if not (out / "metrics.json").exists():
        cmd = [sys.executable, "-m", "dsrecon.cli", "fit", *fit_args(name, folder, args.data_dir), "--seed", str(seed),
               "--quiet", "--out", str(out), "--overwrite"]
        cmd += (["--steps", str(args.steps)] if args.steps else []) + (["--t-gen", str(args.t_gen)] if args.t_gen else [])
        t0 = time.monotonic()
        rc = subprocess.call(cmd)
        wall = time.monotonic() - t0
        print(f"{out.name}: exit {rc} after {wall:.0f} s (load average {os.getloadavg()[0]:.1f})", flush=True)
        if rc != 0 or not (out / "metrics.json").exists():
            return {"name": name, "seed": seed, "model": "dsrecon", "error": f"exit {rc}"}
        (out / "wall.json").write_text(json.dumps({"wall_seconds": wall, "load_average": os.getloadavg()}))
    m = json.loads((out / "metrics.json").read_text())
    wall = json.loads((out / "wall.json").read_text())["wall_seconds"] if (out / "wall.json").exists() else None
    row = _row(name, seed, "dsrecon", m, wall)
    row["config"] = _config_summary(json.loads((out / "config.json").read_text()), out)
    if name in REAL:
        row["paper_metrics"] = paper_metrics(name, load(name, folder, args.data_dir), _generated(out))
    return row


def _generated(run_dir: Path) -> np.ndarray:
    """The free run of a run directory, standardized like the data (generated.nc is in physical units)."""
    import dsrecon as ds

    g = ds.runs.open(run_dir).generated()   # the one reader of a run's files (a legacy channel dim renamed)
    mean, std = np.asarray(g.attrs.get("mean", 0.0)), np.asarray(g.attrs.get("std", 1.0))
    return (g["x"].values - mean) / std


def _config_summary(info: dict, run_dir: Path) -> str:
    """What the defaults chose for this run: architecture and sizes (from model.pt), method, α or τ, steps."""
    import torch

    c = info["config"]
    m, t = dict(c["model"]), c["train"]
    hp = torch.load(run_dir / "model.pt", weights_only=True, map_location="cpu")["config"]["hparams"]
    m["latent_dim"], m["hidden_dim"] = hp.get("latent_dim"), hp.get("hidden_dim")
    alpha = f" α {t['gtf_alpha']}" if t["method"] == "gtf" else ""
    tau = f" τ {info.get('tau_steps')}" if info.get("tau_steps") else ""
    ens = f" ×{t['ensemble']}" if t.get("ensemble", 1) > 1 else ""
    size = f"M={m['latent_dim']}" + (f" L={m['hidden_dim']}" if m.get("hidden_dim") else "")
    return f"{m['kind']} {size} {t['method']}{alpha}{tau} seq {t['seq_len']}, {t['steps']} steps{ens}"


def run_esn(name: str, seed: int, args, folder: Path) -> dict:
    """The ESN baseline on the same split; the floors are the dsrecon run's (same data, same split)."""
    from dsrecon import metrics as M
    from dsrecon.baselines import ESN
    from dsrecon.data import as_array, train_test_split
    from dsrecon.evaluation import generated_dataset

    path = folder / f"{name}-esn-s{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    data = load(name, folder, args.data_dir)
    train, test = train_test_split(data)
    t_gen = args.t_gen or 100_000
    t0 = time.monotonic()
    esn = ESN(seed=seed).fit(as_array(train))
    gen = generated_dataset(esn.generate(t_gen), test, "ESN (reservoirpy)")
    wall = time.monotonic() - t0
    scores = M.score_all(test, gen, method="auto")
    dyn = M.dynamics_verdict(gen, test)
    status, why = M.run_status(dyn, M.dynamics_verdict(test, test, tail_fraction=1.0))
    m = {k: float(v.value) for k, v in scores.items()}
    m.update({"variants": {k: v.variant for k, v in scores.items()}, "status": status, "status_reason": why,
              "dynamics": dyn.to_dict(), "T_gen": t_gen})
    row = _row(name, seed, "esn", m, wall)
    row["config"] = "ESN " + ", ".join(f"{k} {v}" for k, v in esn.hparams.items() if k in ("units", "sr", "lr",
                                                                                          "input_scaling", "bias_scaling"))
    if name in REAL:
        row["paper_metrics"] = paper_metrics(name, data, as_array(gen, allow_nonfinite=True))
    path.write_text(json.dumps(row))
    print(f"{name}-esn-s{seed}: {wall:.0f} s", flush=True)
    return row


def _row(name, seed, model, m, wall) -> dict:
    nf = m.get("noise_floor", {})
    return {"name": name, "seed": seed, "model": model, "D_stsp": m.get("D_stsp"), "D_H": m.get("D_H"),
            "PSC": m.get("PSC"), "variant": (m.get("variants", {}).get("D_stsp") or {}).get("method"),
            "floor": {k: nf.get(k) for k in ("D_stsp", "D_H", "PSC")}, "status": m.get("status"),
            "verdict": (m.get("dynamics") or {}).get("verdict"), "wall": wall,
            "informative": m.get("informative", {})}


def paper_metrics(name: str, data, gen: np.ndarray) -> dict:
    """D_stsp and D_H as the sparse-forcing paper's code computed them for this recording (ChaosRNN
    evaluation/klz.py for EEG: Gaussian mixtures with σ² = 0.1 around each of the first T points, samples from
    the generated mixture, i.e. KL(gen || true), T = min(test length, 5000); evaluation/klx.py with 10 bins in the
    ±2σ box for weather; pse.py for D_H), against the test split."""
    from dsrecon import metrics as M
    from dsrecon.data import as_array, train_test_split

    _, test = train_test_split(data)
    t = as_array(test)
    g = np.asarray(gen, dtype=float)
    if name == "chaosrnn-eeg":
        n = min(len(t), 5000)
        ds_ = M.d_stsp(g[:n], t[:n], method="gmm", sigma2=0.1, standardize=False, max_points=n).value
    else:
        ds_ = M.d_stsp(t, g, method="legacy", n_bins=10).value
    dh = M.hellinger_distance(t, g, variant="legacy").value
    return {"D_stsp": float(ds_), "D_H": float(dh)}


def _med(values):
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(v) if v else None


def _f(v, nd=3):
    return "–" if v is None else ("inf" if v == math.inf else f"{v:.{nd}f}")


def table(rows: list[dict]) -> str:
    floors = {}   # the floor belongs to the data and its split (the ESN is scored on the same split)
    for r in rows:
        if r["model"] == "dsrecon" and "error" not in r:
            floors.setdefault(r["name"], r["floor"])
    out = ["| data | model | D_stsp (variant) | floor | D_H | floor | PSC | floor | verdicts (status) | wall s |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for name in DATASETS:
        for model in ("dsrecon", "esn"):
            rs = [r for r in rows if r["name"] == name and r["model"] == model and "error" not in r]
            errs = [r for r in rows if r["name"] == name and r["model"] == model and "error" in r]
            if not rs and not errs:
                continue
            verdicts = {}
            for r in rs:
                verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
            failed = sum(r["status"] == "failed" for r in rs)
            vtext = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items(), key=lambda kv: str(kv[0])))
            vtext += f" ({failed} failed)" if failed else ""
            vtext += f"; {len(errs)} errors" if errs else ""
            fl = lambda k: (floors.get(name) or {}).get(k)  # noqa: E731
            variant = ", ".join(sorted({str(r["variant"]) for r in rs}))
            out.append(f"| {name} | {model} | {_f(_med([r['D_stsp'] for r in rs]))} ({variant}) | {_f(fl('D_stsp'))} "
                       f"| {_f(_med([r['D_H'] for r in rs]))} | {_f(fl('D_H'))} | {_f(_med([r['PSC'] for r in rs]))} "
                       f"| {_f(fl('PSC'))} | {vtext} | {_f(_med([r['wall'] for r in rs]), 0)} |")
    return "\n".join(out)


def paper_table(rows: list[dict]) -> str:
    import dsrecon as ds

    out = ["| data | model | D_stsp, the paper's variant | D_H (pse.py) |", "|---|---|---|---|"]
    for name in REAL:
        paper = ds.data.card(name)["paper"]
        for model in ("dsrecon", "esn"):
            rs = [r for r in rows if r["name"] == name and r["model"] == model and "paper_metrics" in r]
            if rs:
                out.append(f"| {name} | {model} (median of {len(rs)}) | {_f(_med([r['paper_metrics']['D_stsp'] for r in rs]))} "
                           f"| {_f(_med([r['paper_metrics']['D_H'] for r in rs]))} |")
        for k in ("LSTM", "RNN", "PLRNN"):
            out.append(f"| {name} | paper {k} | {paper['d_stsp'][k]} | {paper['d_h'][k]} |")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, from {', '.join(DATASETS)}")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..n-1 (default 3)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (default: dsrecon fit's default)")
    p.add_argument("--t-gen", type=int, default=None, help="generated steps (default: dsrecon fit's, 100000)")
    p.add_argument("--jobs", type=int, default=2, help="fits side by side (each on one torch thread; default 2)")
    p.add_argument("--no-esn", action="store_true", help="skip the echo-state-network baseline")
    p.add_argument("--data-dir", default=str(SHARED) if SHARED.is_dir() else None,
                   help="where the chaosrnn recordings are (default: /work/shared/data/chaosrnn if present)")
    p.add_argument("--out", default="runs/bench_real", help="run directories and results (default runs/bench_real)")
    args = p.parse_args()
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    bad = [n for n in names if n not in DATASETS]
    if bad or args.seeds < 1 or args.jobs < 1:
        p.error(f"unknown dataset {bad[0]!r}; choose from {', '.join(DATASETS)}" if bad else "--seeds and --jobs must be >= 1")
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:           # write the noisy series once, before the parallel fits read them
        if n in NOISY:
            noisy_file(n, folder / "data")
    print(f"bench_real: {', '.join(names)}; seeds 0..{args.seeds - 1}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    tasks = [(n, s) for n in names for s in range(args.seeds)]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda t: run_fit(t[0], t[1], args, folder), tasks))
    if not args.no_esn:
        try:
            import reservoirpy  # noqa: F401
        except ImportError:
            print("ESN baseline skipped: pip install 'dsrecon[esn]'")
        else:
            rows += [run_esn(n, s, args, folder) for n, s in tasks]
    (folder / "rows.json").write_text(json.dumps(rows, indent=1, default=str))
    print("\nper run:")
    for r in rows:
        if "error" in r:
            print(f"  {r['name']} s{r['seed']} {r['model']}: {r['error']}")
            continue
        pm = r.get("paper_metrics")
        print(f"  {r['name']} s{r['seed']} {r['model']}: D_stsp {_f(r['D_stsp'])} ({r['variant']}), D_H {_f(r['D_H'])}, "
              f"PSC {_f(r['PSC'])}, {r['verdict']} ({r['status']}), {_f(r['wall'], 0)} s; {r.get('config', '')}"
              + (f"; paper metrics D_stsp {_f(pm['D_stsp'])}, D_H {_f(pm['D_H'])}" if pm else ""))
    print(f"\nmedian over seeds 0..{args.seeds - 1} (load average at the end {os.getloadavg()[0]:.1f}):\n")
    print(table(rows))
    if any(r.get("paper_metrics") for r in rows):
        print("\nthe paper's metrics (its code's variants, see the cards' [paper] tables):\n")
        print(paper_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
