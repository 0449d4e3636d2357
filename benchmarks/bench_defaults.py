"""How the defaults of `dsrecon fit lorenz --tau auto` were chosen: a small grid of training settings.

Each variant trains a PLRNN on the Lorenz training split with sparse teacher forcing for a fixed
number of steps and is scored on the test split (T_gen generated steps, D_stsp / D_H / PSC as in
`dsrecon.metrics`). Baseline in the same run: the noise floor (two independent true trajectories).

    python benchmarks/bench_defaults.py --variants base,M20,M50,reset --steps 3000 --t-gen 100000

The table printed at the end is what docs/defaults.md records. Runs use one torch thread each so two
can run side by side on a 2-core machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

import dsrecon as ds
from dsrecon.config import EvalConfig, ModelConfig, TrainConfig
from dsrecon.experiment import build_model, choose_tau, evaluate
from dsrecon.train import fit

VARIANTS = {
    "base": ({}, {}),
    "M20": ({"latent_dim": 20}, {}),
    "M50": ({"latent_dim": 50}, {}),
    "M100": ({"latent_dim": 100}, {}),
    "reset": ({"keep_unobserved": False}, {}),          # min-norm forcing: unobserved latents <- 0
    "a0.5": ({"a_init": 0.5}, {}),
    "a0.99": ({"a_init": 0.99}, {}),
    "w0.5": ({"w_scale": 0.5}, {}),
    "seq100": ({}, {"seq_len": 100}),
    "seq400": ({}, {"seq_len": 400}),
    "bs32": ({}, {"batch_size": 32}),
    "lr3e-3": ({}, {"lr": 3e-3}),
    "noval": ({}, {"validate_every": 0}),
    "tau10": ({}, {"tau": 10}),
    "tau100": ({}, {"tau": 100}),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="base")
    p.add_argument("--steps", type=int, default=TrainConfig().steps)
    p.add_argument("--t-gen", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="append JSON lines here")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = ds.load("lorenz")
    train, _ = ds.train_test_split(data)
    tau_auto, lam = choose_tau("auto", train)
    print(f"lambda_max = {lam.value:.3f}/time unit, tau_auto = {tau_auto}")
    rows = []
    for name in args.variants.split(","):
        mkw, tkw = VARIANTS[name]
        tau = tkw.pop("tau", tau_auto) if "tau" in tkw else tau_auto
        tcfg = dataclasses.replace(TrainConfig(), steps=args.steps, seed=args.seed, device="cpu", **tkw)
        model = build_model(dataclasses.replace(ModelConfig(), **mkw), 3, seed=args.seed)
        t0 = time.time()
        res = fit(model, ds.data.as_array(train), tau=tau, config=tcfg, progress=False)
        t_train = time.time() - t0
        m, _ = evaluate(res.model, data, EvalConfig(t_gen=args.t_gen))
        row = {"variant": name, "seed": args.seed, "steps": args.steps, "tau": tau, "train_s": round(t_train, 1),
               "best_step": res.history.get("best_step"), "val": res.history.get("best_val_d_stsp"),
               "D_stsp": m["D_stsp"], "D_H": m["D_H"], "PSC": m["PSC"], "T_gen": args.t_gen}
        print(json.dumps(row), flush=True)
        rows.append(row)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    print(f"\n{'variant':10s} {'tau':>4s} {'train s':>8s} {'D_stsp':>8s} {'D_H':>7s} {'PSC':>6s}")
    for r in rows:
        print(f"{r['variant']:10s} {r['tau']:4d} {r['train_s']:8.1f} {r['D_stsp']:8.3f} {r['D_H']:7.3f} {r['PSC']:6.3f}")


if __name__ == "__main__":
    main()
