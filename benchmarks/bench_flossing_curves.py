"""Gradient flossing against task difficulty: "Gradient Flossing" (Engelken, NeurIPS 2023) Fig. 3C/D and 4C/D.

What the paper plots (final value against the delay d; mean line, 20-80 % percentile band, one dot per run):

- Fig. 3C: delayed copy y_t = x_{t-d}, x ~ U(0, 1): mean final test MSE, without vs with preflossing;
- Fig. 3D: continuous temporal XOR y_t = |x_{t-d/2} - x_{t-d}|: the same;
- Fig. 4C: binary temporal XOR y_t = x_{t-d/2} XOR x_{t-d}: final test accuracy, no flossing vs preflossing vs
  flossing during training (preflossing, then another episode "after 500 epochs of training", §7);
- Fig. 4D: spatial XOR y_t = x¹_{t-d} XOR x²_{t-d} XOR x³_{t-d}: the same three conditions.
Paper settings (``--full``): tanh RNN, N = 80, g = 1, T = 300, batch 16, 10⁴ epochs (one Adam step each, lr 1e-3),
E_f = 500 flossing updates on k = 75 (the copy text says k = 40; digest §12 #2), 5 realizations (Fig. 3) and 20
(Fig. 4). The text names delays up to d = 70 but not the plotted grid; --full uses d = 10, 20, ..., 70.
Paper's findings: copy fails beyond d = 20 without flossing and is reliable at d = 40 with it; binary XOR is at
chance for d >= 40 without flossing, still at chance at d = 70 with preflossing only, > 80 % at d = 70 with
flossing during training; spatial XOR with preflossing fails for d > 60, flossing during training goes further.

The default is a reduced setting that took 13 CPU-minutes on the shared 2-core machine (printed at the start; every knob is an
option): N = 32, T = 60, 1000 epochs at lr 3e-3, 100 flossing updates on k = 16 at lr 1e-2 (T_f = T, task inputs,
z₀ = 0; dsrecon.tasks.train_task), the episode during training at epoch 100 (the paper's is at 500 of 10⁴ epochs;
10 % of the reduced budget here, a choice, not tuned), delays 8, 16, 24, 32 (at this budget plain training fails from d = 16-24
on, preflossing moves that limit by about 8 steps: docs/benchmarks.md), 3 seeds. Within one seed every condition
starts from the same initial weights and sees the same training batches and test set. Success: test MSE < 10 %
of the input-blind predictor (copy, xor) or test accuracy > 90 % (binary tasks), dsrecon.tasks.

Writes every run to a JSON file (``--out``, default runs/bench/flossing_curves.json; rewritten after each run,
so an interrupted or extended benchmark resumes with ``--resume``: runs of the same settings are kept, whatever
the delays and seeds asked for before) and a 2 x 2 figure
with the same stem (.png). One torch thread (the machine is shared).

    python benchmarks/bench_flossing_curves.py                          # reduced, ~13 CPU-min
    python benchmarks/bench_flossing_curves.py --tasks copy,binary_xor --delays 4,12 --seeds 2
    python benchmarks/bench_flossing_curves.py --full --seeds 5         # paper's settings (days on a CPU)
    python benchmarks/bench_flossing_curves.py --plot-only              # redraw the figure from the JSON

Fig. 1B (flossing λ_1 to a target) and the copy-task success table are in benchmarks/bench_flossing.py.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from dsrecon.tasks import Task, task_model, train_task

FIGURE = {"copy": "3C", "xor": "3D", "binary_xor": "4C", "spatial_xor": "4D"}
CONDITIONS = {"copy": ("none", "prefloss"), "xor": ("none", "prefloss"),            # Fig. 3: before training only
              "binary_xor": ("none", "prefloss", "during"), "spatial_xor": ("none", "prefloss", "during")}
LABEL = {"none": "no flossing", "prefloss": "preflossing", "during": "flossing during training"}
COLOR = {"none": "tab:blue", "prefloss": "tab:orange", "during": "tab:green"}   # the paper's colours
PAPER = dict(n=80, T=300, epochs=10_000, lr=1e-3, batch=16, floss_epochs=500, k=75, floss_lr=1e-3,
             floss_at=500, delays="10,20,30,40,50,60,70", seeds_fig3=5, seeds_fig4=20)
REDUCED = dict(n=32, T=60, epochs=1000, lr=3e-3, batch=16, floss_epochs=100, k=16, floss_lr=1e-2,
               floss_at=100, delays="8,16,24,32", seeds_fig3=3, seeds_fig4=3)


def settings(args) -> dict:
    """The settings that define a run (what --resume compares), from the defaults and the options given."""
    base = PAPER if args.full else REDUCED
    s = {key: (getattr(args, key) if getattr(args, key) is not None else base[key])
         for key in ("n", "T", "epochs", "lr", "batch", "floss_epochs", "k", "floss_lr", "floss_at", "delays")}
    s["delays"] = [int(d) for d in str(s["delays"]).split(",")]
    s["seeds_fig3"] = args.seeds if args.seeds is not None else base["seeds_fig3"]
    s["seeds_fig4"] = args.seeds if args.seeds is not None else base["seeds_fig4"]
    s["g"], s["test_batch"], s["mode"] = 1.0, args.test_batch, "full" if args.full else "reduced"
    return s


def one_run(name: str, d: int, cond: str, seed: int, s: dict) -> dict:
    task = Task(name, d, T=s["T"])
    floss = dict(floss_k=s["k"], floss_lr=s["floss_lr"], floss_epochs=s["floss_epochs"])
    if cond == "prefloss":
        floss["prefloss_epochs"] = s["floss_epochs"]
    elif cond == "during":
        floss.update(prefloss_epochs=s["floss_epochs"], floss_at=(s["floss_at"],))
    cpu0 = time.process_time()
    r = train_task(task_model(task, latent_dim=s["n"], g=s["g"], seed=seed), task, epochs=s["epochs"], lr=s["lr"],
                   batch=s["batch"], test_batch=s["test_batch"], seed=seed, **floss)
    return {"task": name, "figure": FIGURE[name], "delay": d, "condition": cond, "seed": seed,
            "test_loss": r.final_loss, "loss_over_trivial": r.final_loss / task.trivial_loss,
            "test_accuracy": r.final_accuracy, "success": bool(r.success),
            "lambda_after_floss": [lam[0] for lam in r.floss_lambda],   # λ_1 per step at the end of each episode
            "seconds": r.seconds, "floss_seconds": r.floss_seconds, "cpu_seconds": time.process_time() - cpu0}


def valid_delays(name: str, delays: list[int]) -> list[int]:
    return [d for d in delays if not (name in ("xor", "binary_xor") and d % 2)]   # temporal XOR: d even


def write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def summary(runs: list[dict], tasks: list[str]) -> list[tuple]:
    rows = []
    for name in tasks:
        for d in sorted({r["delay"] for r in runs if r["task"] == name}):
            for cond in CONDITIONS[name]:
                rs = [r for r in runs if (r["task"], r["delay"], r["condition"]) == (name, d, cond)]
                if not rs:
                    continue
                key = "test_accuracy" if rs[0]["test_accuracy"] is not None else "loss_over_trivial"
                v = np.array([r[key] for r in rs])
                rows.append((name, d, cond, key, v.mean(), *np.percentile(v, [20, 80]),
                             sum(r["success"] for r in rs), len(rs), np.mean([r["cpu_seconds"] for r in rs])))
    return rows


def print_table(rows: list[tuple]) -> None:
    print(f"\n{'fig':>3} {'task':<11} {'d':>3} {'condition':<9} {'value':<15} {'mean':>6} {'p20':>6} {'p80':>6} "
          f"{'success':>7} {'cpu s/run':>9}")
    for name, d, cond, key, mean, p20, p80, ok, n, sec in rows:
        what = "accuracy" if key == "test_accuracy" else "MSE/trivial"
        print(f"{FIGURE[name]:>3} {name:<11} {d:3d} {cond:<9} {what:<15} {mean:6.3f} {p20:6.3f} {p80:6.3f} "
              f"{f'{ok}/{n}':>7} {sec:9.1f}")


def plot(runs: list[dict], s: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    titles = {"copy": "delayed copy (MSE)", "xor": "continuous temporal XOR (MSE)",
              "binary_xor": "binary temporal XOR", "spatial_xor": "spatial XOR"}
    rng = np.random.default_rng(0)
    for ax, name in zip(axes.flat, FIGURE):
        rs_task = [r for r in runs if r["task"] == name]
        for j, cond in enumerate(CONDITIONS[name]):
            rs = [r for r in rs_task if r["condition"] == cond]
            if not rs:
                continue
            key = "test_loss" if name in ("copy", "xor") else "test_accuracy"
            ds = sorted({r["delay"] for r in rs})
            vals = [np.array([r[key] for r in rs if r["delay"] == d]) for d in ds]
            ax.plot(ds, [v.mean() for v in vals], "-", color=COLOR[cond], label=LABEL[cond])
            ax.fill_between(ds, [np.percentile(v, 20) for v in vals], [np.percentile(v, 80) for v in vals],
                            color=COLOR[cond], alpha=0.2, lw=0)
            for d, v in zip(ds, vals):
                ax.plot(d + 0.15 * (j - 1) + 0.05 * rng.standard_normal(len(v)), v, ".", color=COLOR[cond], ms=4)
        if name in ("copy", "xor"):
            ax.set_ylabel("final test MSE")
            ax.axhline(Task(name, 2, T=4).trivial_loss, color="gray", ls=":", lw=1, label="input-blind predictor")
        else:
            ax.set_ylabel("final test accuracy")
            ax.axhline(0.5, color="gray", ls=":", lw=1, label="chance")
            ax.set_ylim(0.4, 1.02)
        ax.set_xlabel("delay d")
        ax.set_title(f"Fig. {FIGURE[name]}: {titles[name]}", fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(f"Gradient flossing vs task difficulty ({s['mode']}: N = {s['n']}, T = {s['T']}, "
                 f"{s['epochs']} epochs, lr {s['lr']:g}, flossing {s['floss_epochs']} updates on k = {s['k']})",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="the paper's settings (each option below still overrides)")
    p.add_argument("--tasks", default="copy,xor,binary_xor,spatial_xor", help="subset of the four tasks")
    p.add_argument("--delays", default=None, help="comma-separated d (odd d are skipped for the temporal XORs); "
                   f"reduced {REDUCED['delays']}, full {PAPER['delays']}")
    p.add_argument("--seeds", type=int, default=None,
                   help=f"network realizations per point (reduced {REDUCED['seeds_fig3']}; full 5 for Fig. 3, 20 for Fig. 4)")
    p.add_argument("--n", type=int, default=None, help="units (paper 80)")
    p.add_argument("--T", type=int, default=None, help="sequence length (paper 300)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs, one Adam step each (paper 10^4)")
    p.add_argument("--lr", type=float, default=None, help="Adam lr (paper 1e-3)")
    p.add_argument("--batch", type=int, default=None, help="sequences per epoch (paper 16)")
    p.add_argument("--floss-epochs", dest="floss_epochs", type=int, default=None,
                   help="updates per flossing episode, before and during training (paper E_f = 500)")
    p.add_argument("--k", type=int, default=None, help="flossed exponents (paper 75 of 80)")
    p.add_argument("--floss-lr", dest="floss_lr", type=float, default=None, help="flossing Adam lr (not in the paper)")
    p.add_argument("--floss-at", dest="floss_at", type=int, default=None,
                   help="epoch of the episode during training (paper 500)")
    p.add_argument("--test-batch", dest="test_batch", type=int, default=256, help="test sequences")
    p.add_argument("--out", default="runs/bench/flossing_curves.json", help="results JSON; the PNG gets the same stem")
    p.add_argument("--resume", action="store_true", help="keep the runs already in --out (same settings) and skip them")
    p.add_argument("--plot-only", action="store_true", help="redraw the figure and table from --out, run nothing")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(tasks) - set(FIGURE))
    if unknown:
        p.error(f"unknown task(s) {', '.join(unknown)}; use {', '.join(FIGURE)}")

    if args.plot_only:
        payload = json.loads(out.read_text())
        print_table(summary(payload["runs"], tasks))
        plot(payload["runs"], payload["settings"], out.with_suffix(".png"))
        print(f"figure: {out.with_suffix('.png')}")
        return

    s = settings(args)
    runs = []
    if args.resume and out.exists():
        old = json.loads(out.read_text())
        ignore = ("delays", "seeds_fig3", "seeds_fig4")           # runs are keyed by task, d, condition, seed
        if {k: v for k, v in old["settings"].items() if k not in ignore} == {k: v for k, v in s.items() if k not in ignore}:
            runs = old["runs"]
            print(f"resuming: {len(runs)} runs already in {out}")
        else:
            print(f"--resume: {out} has other settings; starting afresh")
    done = {(r["task"], r["delay"], r["condition"], r["seed"]) for r in runs}
    print(f"{s['mode']} setting: tanh RNN N = {s['n']}, g = 1, T = {s['T']}, batch {s['batch']}, {s['epochs']} epochs, "
          f"Adam lr {s['lr']:g}; flossing: {s['floss_epochs']} updates on k = {s['k']} at lr {s['floss_lr']:g} "
          f"(T_f = T, task inputs, z0 = 0) before training ('prefloss'), and before training plus again at epoch "
          f"{s['floss_at']} ('during'); delays {s['delays']}; seeds: {s['seeds_fig3']} (Fig. 3), {s['seeds_fig4']} "
          f"(Fig. 4); {s['test_batch']} test sequences")
    t0, c0 = time.perf_counter(), time.process_time()
    for name in tasks:
        n_seeds = s["seeds_fig3"] if FIGURE[name].startswith("3") else s["seeds_fig4"]
        for d in valid_delays(name, s["delays"]):
            if d >= s["T"]:
                print(f"  skip {name} d={d}: needs T > d (T = {s['T']})")
                continue
            for seed in range(n_seeds):
                for cond in CONDITIONS[name]:
                    if (name, d, cond, seed) in done:
                        continue
                    r = one_run(name, d, cond, seed, s)
                    runs.append(r)
                    write_json(out, {"settings": s, "runs": runs})
                    val = (f"accuracy {r['test_accuracy']:.3f}" if r["test_accuracy"] is not None
                           else f"MSE/trivial {r['loss_over_trivial']:.3f}")
                    lam = f", lambda_1 after flossing {r['lambda_after_floss'][-1]:+.3f}" if r["lambda_after_floss"] else ""
                    print(f"  Fig. {FIGURE[name]} {name} d={d:3d} {cond:<8} seed={seed}: {val}, success={r['success']}"
                          f"{lam} ({r['cpu_seconds']:.1f} cpu-s)", flush=True)
    print_table(summary(runs, tasks))
    plot(runs, s, out.with_suffix(".png"))
    print(f"\nresults: {out}\nfigure:  {out.with_suffix('.png')}\n"
          f"this invocation: {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU")


if __name__ == "__main__":
    main()
