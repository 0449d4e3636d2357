"""How the defaults of `dsrecon fit lorenz --tau auto` were chosen: a small grid of training settings.

Each variant trains a PLRNN on the Lorenz training split with sparse teacher forcing for a fixed
number of steps and is scored on the test split (T_gen generated steps, D_stsp / D_H / PSC as in
`dsrecon.metrics`). Baseline in the same run: the noise floor (two independent true trajectories).

    python benchmarks/bench_defaults.py --variants default,keep,M30,M50 --steps 3000 --t-gen 100000

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
from dsrecon.evaluation import evaluate
from dsrecon.experiment import build_model, choose_tau
from dsrecon.train import train_loop

VARIANTS = {  # (model overrides, training overrides) relative to the defaults
    "default": ({}, {}),
    "keep": ({"keep_unobserved": True}, {}),                 # forcing keeps the unobserved latents
    "identity": ({"learn_observation": False, "keep_unobserved": True}, {}),  # x = first N latents
    "identity-reset": ({"learn_observation": False}, {}),
    "M30": ({"latent_dim": 30}, {}),
    "M50": ({"latent_dim": 50}, {}),
    "M200": ({"latent_dim": 200}, {}),
    "anneal": ({}, {"tau_anneal": 0.3}),                     # tau grows from 1 over 30 % of the steps
    "seq100": ({}, {"seq_len": 100}),
    "bs64": ({}, {"batch_size": 64}),
    "lr2e-3": ({}, {"lr": 2e-3}),
    "lr_end1e-4": ({}, {"lr_end": 1e-4}),
    "tau20": ({}, {"tau": 20}),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="default", help=f"comma-separated, from: {', '.join(VARIANTS)}")
    p.add_argument("--steps", type=int, default=15000)
    p.add_argument("--t-gen", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="append JSON lines here")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = ds.load("lorenz")
    train, _ = ds.train_test_split(data)
    tau_auto, fi = choose_tau("auto", train)
    lam = fi.lam
    print(f"lambda_max = {lam.value:.3f}/time unit, tau_auto = {tau_auto}")
    rows = []
    for name in args.variants.split(","):
        mkw, tkw = VARIANTS[name]
        tkw = dict(tkw)
        tau = tkw.pop("tau", tau_auto)
        # the grid around the defaults of its time, a PLRNN with sparse forcing (fit's defaults are now GTF and a
        # clipped shPLRNN: docs/defaults.md, "Real recordings")
        tcfg = dataclasses.replace(TrainConfig(method="stf", steps=15000), steps=args.steps, seed=args.seed,
                                   device="cpu", **tkw)
        model = build_model(dataclasses.replace(ModelConfig(kind="plrnn"), **mkw), 3, seed=args.seed)
        t0 = time.time()
        res = train_loop(model, ds.data.as_array(train), tau=tau, config=tcfg, progress=False)
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
