"""The ``dsrecon`` command line's argument parser: every subcommand, its flags, help and examples.

:func:`build_parser` only describes the arguments; :mod:`dsrecon.cli` runs the subcommand they name.
"""
from __future__ import annotations

import argparse

from . import __version__
from .config import MAX_RUNS, METHODS, MODEL_KINDS, OVERSUBSCRIBE, TrainConfig

# `dsrecon task` flags renamed to the names `dsrecon fit` uses for the same thing
TASK_RENAMED = {"--T": "--seq-len", "--units": "--latent-dim", "--g": "--gain", "--epochs": "--steps",
                "--batch": "--batch-size"}

EPILOG_FIT = """examples:
  dsrecon fit lorenz --tau auto                 # λ_max from the data sets τ = round(ln2/λ_step)
  dsrecon fit lorenz --tau 30 --steps 2000 --out runs/quick
  dsrecon fit lorenz --model lstm --method gtf --gtf-alpha auto  # generalized teacher forcing, adaptive alpha
  dsrecon fit lorenz --model rnn --method bptt-clip   # the paper's baseline
  dsrecon fit lorenz --floss 5 --prefloss-epochs 200  # gradient flossing before training
  dsrecon fit lorenz --set train.lr=3e-4 --set model.ridge=1e-3
  dsrecon fit lorenz --time-budget 3m --device cuda
  dsrecon fit --resume runs/lorenz-plrnn-20261122-101500
"""


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints a usage block and then the error; the CLI promises one line, exit 2."""

    def error(self, message):
        self.exit(2, f"dsrecon: {self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``dsrecon`` and every subcommand (:func:`dsrecon.cli.main` runs what it parses)."""
    p = _OneLineParser(
        prog="dsrecon",
        description="Reconstruct the dynamics behind chaotic time series with RNNs trained by sparsely "
        "forced BPTT (τ from the predictability time ln2/λ_max).",
    )
    p.add_argument("--version", action="version", version=f"dsrecon {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    f = sub.add_parser(
        "fit", help="train a model on a dataset, generate, score, write a run directory",
        description="Train a model on DATASET (by default a clipped shPLRNN with generalized teacher forcing), "
        "generate a free run, score it "
        "(D_stsp, D_H, PSC with their noise floors) and write everything to a run directory.",
        epilog=EPILOG_FIT, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    f.add_argument("dataset", nargs="?", help="a registered dataset name (see `dsrecon data list`)")
    f.add_argument("--model", default=None, metavar="{" + ",".join(MODEL_KINDS) + "}",
                   help="architecture (default: shplrnn, clipped, sizes from the channel count; see docs/models.md "
                   "and docs/defaults.md)")
    f.add_argument("--method", default=None, metavar="{" + ",".join(METHODS) + "}",
                   help="training method: stf sparse teacher forcing, gtf generalized teacher forcing, id-tf "
                   "identity forcing, bptt-clip BPTT with gradient clipping, window zero-reset windows "
                   "(default: gtf; stf is the sparse-forcing paper's method, with its PLRNN: --model plrnn --method "
                   "stf)")
    f.add_argument("--latent-dim", type=int, default=None, metavar="M",
                   help="latent units M >= number of channels (default: shPLRNN max(N, 10) for N channels, with "
                   "30 M hidden units; PLRNN max(100, N))")
    f.add_argument("--tau", default=None, metavar="auto|INT",
                   help="forcing interval in steps (stf, id-tf, window); 'auto' = round(ln2 / λ_max per step) "
                   "with λ_max estimated from the training data (default: auto)")
    f.add_argument("--gtf-alpha", default=None, metavar="auto|auto-norm|A",
                   help="GTF mixing alpha in [0, 1]; 'auto' adapts it to 1 - exp(-λ_1 of the model), 'auto-norm' "
                   "to Hess et al.'s bound by one-step Jacobian norms "
                   f"(default: {TrainConfig().gtf_alpha}, fixed, from TrainConfig; --method gtf only)")
    f.add_argument("--floss", type=int, default=None, metavar="K",
                   help="gradient flossing of the first K Lyapunov exponents (default: off)")
    f.add_argument("--floss-target", type=float, default=None, metavar="LAMBDA",
                   help="target of the flossed exponents, per step (default: 0)")
    f.add_argument("--prefloss-epochs", type=int, default=None, metavar="E",
                   help="flossing updates before training (default: 0)")
    f.add_argument("--floss-every", type=int, default=None, metavar="STEPS",
                   help="a flossing episode (train.floss_epochs updates) every STEPS training steps (default: never)")
    f.add_argument("--noise", type=float, default=None, metavar="FRACTION",
                   help="observation noise added to the data (simulated datasets and files), std as a fraction of "
                   "each channel's std")
    f.add_argument("--forcing", default=None, choices=["phase", "input"],
                   help="driven datasets (duffing): observe the forcing phase (default) or keep it as an input")
    f.add_argument("--columns", default=None, metavar="A,B,...", help="files: the channels to use (names or indices)")
    f.add_argument("--dt", type=float, default=None, help="files: sampling interval (default: from a time column, else 1)")
    f.add_argument("--embed", default=None, choices=["auto"],
                   help="files: delay-embed (delay from mutual information, dimension from false nearest neighbours)")
    f.add_argument("--interpolate", action="store_true", help="files: fill NaNs and gaps linearly instead of refusing")
    f.add_argument("--data-dir", default=None, metavar="DIR",
                   help="downloaded recordings (jena, eeg): where to look for and store them")
    f.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config field, e.g. --set train.lr=3e-4 (repeatable; see config.json of a run); "
                   "a field that a flag (or another --set) gives another value is refused")
    f.add_argument("--steps", type=int, default=None, help="optimiser steps (default: 10000)")
    f.add_argument("--time-budget", default=None, metavar="DURATION",
                   help="stop training after this long, e.g. 90s, 3m, 1h (default: none)")
    f.add_argument("--device", default=None, choices=["auto", "cpu", "cuda", "mps"],
                   help="where to train (default: auto = cuda if available, else mps (Apple GPUs) if available, else cpu)")
    f.add_argument("--seed", type=int, default=None, help="training and initialisation seed (default: 0)")
    f.add_argument("--ensemble", default=None, metavar="auto|K",
                   help="train K members (seeds SEED..SEED+K-1) as one batched model and keep the best by held-out "
                   "validation; metrics.json reports every member (default: auto = 4 on a short recording, fewer "
                   "than 1000 decorrelation times, else 1; docs/ensembles.md)")
    f.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (default: 1; the per-step work of small RNNs is too small "
                   f"to share, and extra threads stall badly when the cores are busy; at most {OVERSUBSCRIBE} per core)")
    f.add_argument("--t-gen", type=int, default=None, metavar="N",
                   help="generated steps scored against the test split (default: 100000)")
    f.add_argument("--out", default=None, metavar="DIR",
                   help="run directory (default: runs/<dataset>-<model>-<timestamp>); refused if it holds a run, "
                   "unless --overwrite")
    f.add_argument("--overwrite", action="store_true",
                   help="let --out replace the run already in that folder (its files are deleted)")
    f.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from RUN_DIR/checkpoints/last.pt with its own settings; only "
                   "--set train.steps=N (train longer), --time-budget and --device may change")
    f.add_argument("--quiet", action="store_true", help="no progress bar, only errors")
    f.add_argument("--debug", action="store_true", help="show tracebacks")

    ly = sub.add_parser(
        "lyap", help="λ_max of a dataset or a file, or the Lyapunov spectrum of a trained run",
        description="TARGET is a dataset name or a file (.npy, .csv, .txt of shape (T,) or (T, N), time first): "
        "estimate λ_max (Rosenstein by default) with its bootstrap standard error, say whether the series looks "
        "chaotic, print τ_pred = ln2/λ_max and the fit diagnostics, and save the divergence plot. TARGET is a run "
        "directory: the QR Lyapunov spectrum of its model (± standard error over initial conditions), D_KY and "
        "entropy rate, compared with the data's λ_max.",
        epilog="examples:\n  dsrecon lyap lorenz\n  dsrecon lyap series.npy --dt 0.01 --method kantz\n"
        "  dsrecon lyap runs/lorenz-plrnn-20261122-101500 --k 5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ly.add_argument("target", help="a dataset name, a .npy/.csv/.txt file, or a run directory")
    ly.add_argument("--dt", type=float, default=None,
                    help="sampling interval of a file's series in time units (default: from a time column or an EDF header, else 1 per step)")
    ly.add_argument("--method", default=None, choices=["rosenstein", "kantz", "nolds"],
                    help="λ_max estimator (default: rosenstein; kantz is more robust to noise; nolds is the "
                    "optional cross-check)")
    ly.add_argument("--plot", default=None, metavar="PNG",
                    help="where to save the divergence plot (default: lambda_max-<name>.png)")
    ly.add_argument("--k", type=int, default=None,
                    help="number of exponents of a model (default: the run's eval.lyap_k, 5; another value may "
                    "change lambda_max in its last digits)")
    ly.add_argument("--n-steps", type=int, default=None,
                    help="QR steps of a model's spectrum (default: the run's eval.lyap_steps, 1000, as `dsrecon eval`)")
    ly.add_argument("--debug", action="store_true", help="show tracebacks")

    ev = sub.add_parser(
        "eval", help="re-score a saved run directory (every metric with its variant and noise floor)",
        description="Load RUN_DIR's model and data, generate a fresh free run of --t-gen steps and score it: D_stsp "
        "(bins and legacy), D_H (default and legacy), PSC, PE(25), VPT, the model's Lyapunov exponents, each with "
        "its variant and the noise floor of an independent true trajectory of the same length. Nothing in RUN_DIR "
        "is changed.",
        epilog="examples:\n  dsrecon eval runs/lorenz-plrnn-20261122-101500\n"
        "  dsrecon eval runs/lorenz-plrnn-20261122-101500 --t-gen 20000 --n-init 10 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `dsrecon fit`")
    ev.add_argument("--t-gen", type=int, default=None, metavar="N",
                    help="generated steps (default: the run's eval.t_gen)")
    ev.add_argument("--n-init", type=int, default=1, metavar="B",
                    help="also score B initial conditions, batched, as median ± MAD (default: 1)")
    ev.add_argument("--true-spectrum", action="store_true",
                    help="compare the model's Lyapunov spectrum and D_KY with those of the dataset's true equations "
                    "(QR on the card's system, 1000 steps: tens of seconds; simulated datasets only)")
    ev.add_argument("--json", action="store_true", help="print every score as JSON instead of a table")
    ev.add_argument("--debug", action="store_true", help="show tracebacks")

    cmp_ = sub.add_parser(
        "compare", help="one table of the saved scores of several run directories",
        description="Read metrics.json and config.json of each RUN_DIR and print one table: dataset, model, method, "
        "tau, T_gen, D_stsp and D_H with their noise floors, PSC, VPT, the model's lambda_max, steps.",
        epilog="example:\n  dsrecon compare runs/lorenz-*", formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmp_.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by `dsrecon fit`")
    cmp_.add_argument("--plot", default=None, metavar="PNG",
                      help="also save D_stsp and D_H against tau (one line per model/method, noise floor, tau_pred)")
    cmp_.add_argument("--debug", action="store_true", help="show tracebacks")

    d = sub.add_parser("data", help="list the registered datasets, or download a recording",
                       description="list: every registered dataset with its kind, description and reference "
                       "λ_max. fetch NAME: download a recording (jena, eeg) into the data directory, check its "
                       "SHA-256 and print its path; offline, say which file to place where.",
                       epilog="examples:\n  dsrecon data list\n  dsrecon data fetch jena\n"
                       "  dsrecon data fetch eeg --data-dir ~/data/dsrecon",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("action", choices=["list", "fetch"], help="list the datasets, or fetch one recording")
    d.add_argument("name", nargs="?", help="the dataset to fetch (see `dsrecon data list`)")
    d.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where recordings are stored (default: $DSRECON_DATA_DIR, else <cache dir>/downloads)")
    d.add_argument("--debug", action="store_true", help="show tracebacks")
    t = sub.add_parser(
        "task", help="train a tanh RNN on a delayed task of 'Gradient Flossing' (copy, XOR), optionally flossed",
        description="Train the paper's vanilla tanh RNN on a delayed task ('Gradient Flossing' §6-7, App. H) with "
        "optional preflossing and flossing episodes; print the final test loss/accuracy and whether it succeeded.")
    t.add_argument("task", choices=["copy", "xor", "binary_xor", "spatial_xor"])
    t.add_argument("--delay", type=int, required=True, metavar="D", help="delay d in steps (even for the temporal XORs)")
    t.add_argument("--seq-len", type=int, default=300, metavar="T", help="steps per sequence (paper: 300)")
    t.add_argument("--latent-dim", type=int, default=80, metavar="N", help="RNN units N (paper: 80)")
    t.add_argument("--gain", type=float, default=1.0, help="gain g of the initial W (paper: 1)")
    t.add_argument("--steps", type=int, default=10_000, help="Adam steps, each on a fresh batch (paper: 10^4)")
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    t.add_argument("--batch-size", type=int, default=16, help="sequences per step (paper: 16)")
    for old in TASK_RENAMED:   # the flags' former names: one line naming the new one
        t.add_argument(old, dest=f"renamed_{old[2:]}", default=None, help=argparse.SUPPRESS)
    t.add_argument("--floss", type=int, default=None, metavar="K",
                   help="flossed exponents (default: 75, the paper's; with --prefloss-epochs or --floss-at)")
    t.add_argument("--prefloss-epochs", type=int, default=0, metavar="E",
                   help="flossing updates before training (paper: 500; default: 0)")
    t.add_argument("--floss-at", default="", metavar="E1,E2,...",
                   help="epochs of flossing episodes during training, e.g. 0,100,200,300,400")
    t.add_argument("--floss-epochs", type=int, default=None,
                   help="updates per flossing episode of --floss-at (default: 500, the paper's)")
    t.add_argument("--floss-lr", type=float, default=None, help="Adam learning rate of flossing (default: 1e-3)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--debug", action="store_true", help="show tracebacks")

    sw = sub.add_parser(
        "sweep", help="run many fits (datasets x models x methods x tau x seeds, plus baselines) and a leaderboard",
        description="Run every run of the sweep in CONFIG.toml (see docs/sweeps.md) on a local process pool or a Ray "
        "cluster. Each finished run is written to disk at once; a restarted sweep skips finished runs and resumes "
        "half-trained ones. Results go to <out>/results.nc, the leaderboard to <out>/leaderboard.md and .html.",
        epilog="examples:\n  dsrecon sweep benchmarks/configs/leaderboard-reduced.toml\n"
        "  dsrecon sweep my-sweep.toml --workers 4\n"
        "  dsrecon sweep my-sweep.toml --backend ray --address ray://head-node:10001\n"
        "  dsrecon sweep my-sweep.toml --backend ray --address ray://head-node:10001 "
        "--runtime-env '{\"working_dir\": \".\", \"pip\": [\"dsrecon\"]}'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("config", metavar="CONFIG.toml", help="the sweep description")
    sw.add_argument("--backend", default="local", choices=["local", "ray"],
                    help="local: a process pool on this machine (default); ray: a Ray cluster")
    sw.add_argument("--address", default=None,
                    help="Ray cluster address (auto, HOST:6379 on a node, ray://HOST:10001 from outside); default: "
                    "[ray] address, else start a local Ray instance")
    sw.add_argument("--runtime-env", default=None, metavar="JSON",
                    help="Ray runtime_env as JSON or a .json file, e.g. '{\"working_dir\": \".\", \"pip\": "
                    "[\"dsrecon\"]}' for nodes without dsrecon (default: [ray] runtime_env)")
    sw.add_argument("--connect-timeout", type=float, default=None, metavar="S",
                    help="seconds to reach --address before giving up (default: [ray] connect_timeout, else 30)")
    sw.add_argument("--max-attempts", type=int, default=None, metavar="N",
                    help="Ray: tries of a run whose node failed it (node lost, out of memory, file missing "
                    "there), each on another node when one is alive (default: [ray] max_attempts, else 3)")
    sw.add_argument("--retry-failed", action="store_true",
                    help="run again the runs that failed (diverged, collapsed, not chaotic): by default a restart keeps them, "
                    "since the same seed and code fail the same way (runs that errored are always run again)")
    sw.add_argument("--workers", type=int, default=None,
                    help="local backend: processes (default: [sweep] workers, else the number of cores)")
    sw.add_argument("--ensemble-jobs", action=argparse.BooleanOptionalAction, default=None,
                    help="local backend: train the runs that differ only by seed and tau as ensemble jobs, each run "
                    "still written as its own run (default: [sweep] ensemble; docs/ensembles.md)")
    sw.add_argument("--out", default=None, metavar="DIR", help="output folder (default: [sweep] out, else runs/sweeps/NAME)")
    sw.add_argument("--max-runs", type=int, default=None, metavar="N",
                    help=f"refuse a sweep of more than N runs, counted from its lists before anything is expanded "
                    f"(default: {MAX_RUNS:_}; raise it for a larger grid on purpose)".replace("_", ","))
    sw.add_argument("--dry-run", action="store_true", help="validate the config and list the runs; run nothing")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.add_argument("--debug", action="store_true", help="show tracebacks")

    lb = sub.add_parser(
        "leaderboard", help="markdown and HTML tables (median ± MAD over seeds) of a sweep's results",
        description="Read RESULTS (a results.nc written by `dsrecon sweep`, or its folder), print the markdown "
        "leaderboard and write leaderboard.md and leaderboard.html next to it (or into --out).",
        epilog="example:\n  dsrecon leaderboard runs/sweeps/leaderboard-reduced", formatter_class=argparse.RawDescriptionHelpFormatter)
    lb.add_argument("results", metavar="RESULTS", help="results.nc or the sweep folder holding it")
    lb.add_argument("--out", default=None, metavar="DIR", help="where to write leaderboard.md/.html")
    lb.add_argument("--metrics", default="D_stsp,D_H,PSC",
                    help="comma-separated scores, the first one ranks: D_stsp, D_H, PSC, D_stsp_legacy, D_H_legacy, "
                    "PE, VPT (default: D_stsp,D_H,PSC)")
    lb.add_argument("--debug", action="store_true", help="show tracebacks")
    return p
