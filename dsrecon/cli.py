"""Command line: ``dsrecon fit DATASET --tau auto``.

Each subcommand parses its arguments, calls the Python API and prints the result. Errors raised on
purpose (:class:`dsrecon.errors.DsreconError`) are printed as one line and exit with status 2;
``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from . import data as data_mod, evaluation, experiment, runs
from .cli_parser import TASK_RENAMED, build_parser
from .data import true_spectrum
from .config import (DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig, _same, check_threads, parse_duration,
                     parse_tau, parse_value)
from .errors import ConfigError, DataError, DsreconError
from .fileio import check_path
from .leaderboard import check_metrics, expected_runs, to_markdown, write_leaderboard
from .lyapunov import forcing_interval, max_lyapunov
from .report import compare_table, plot_lambda_max, plot_tau_sweep, score_table
from .results import check_not_in_run, check_out_dir, read_results
from .runs import _json_safe, check_writable_dir, check_writable_file
from .ray_options import check_address
from .sweep import check_ray_options, check_runs, check_runtime_env, load_sweep, run_sweep
from .tasks import Task, task_model, train_task
from .train import Interrupted, uses_tau   # uses_tau: the one "does this run use tau" rule

# fit flags -> the config keys they set (messages about a flag's value name the flag the user typed)
FIT_FLAGS = {"model.kind": "--model", "train.method": "--method", "model.latent_dim": "--latent-dim",
             "train.tau": "--tau", "train.gtf_alpha": "--gtf-alpha", "train.floss_k": "--floss",
             "train.floss_target": "--floss-target", "train.prefloss_epochs": "--prefloss-epochs",
             "train.floss_every": "--floss-every", "data.noise": "--noise", "data.forcing": "--forcing",
             "data.columns": "--columns", "data.dt": "--dt", "data.embed": "--embed", "data.data_dir": "--data-dir",
             "train.steps": "--steps", "train.time_budget": "--time-budget", "train.device": "--device",
             "train.seed": "--seed", "train.ensemble": "--ensemble", "eval.t_gen": "--t-gen",
             "data.interpolate": "--interpolate"}


# the arguments that name a file or folder, checked before any command runs: a name no file can have (an empty
# --out, a NUL byte, a name longer than file systems take) is one line naming the argument, not an OSError or a
# ValueError from deep inside the command (or, for an empty --out, a run written into the current folder)
PATH_ARGS = {"out": "--out", "data_dir": "--data-dir", "plot": "--plot", "resume": "--resume", "dataset": "DATASET",
             "target": "TARGET", "run_dir": "RUN_DIR", "run_dirs": "RUN_DIR", "config": "CONFIG.toml",
             "results": "RESULTS"}


def _check_paths(args) -> None:
    for dest, what in PATH_ARGS.items():
        value = getattr(args, dest, None)
        for item in value if isinstance(value, list) else [value]:
            if item is not None and not (dest == "dataset" and item == ""):   # fit says what an empty DATASET needs
                check_path(item, what, ConfigError)


def _flag_names(message: str, given: dict | None = None) -> str:
    """A config error about a flag's value, with ``section.key`` replaced by the flag (``train.seed`` -> ``--seed``);
    with ``given`` (config key -> how the user wrote it), only the keys given by a flag."""
    for key, flag in FIT_FLAGS.items():
        if (given is not None and given.get(key) != flag) or key == "train.gtf_alpha":   # tests match its key
            continue
        message = re.sub(rf"(?<![\w.-]){re.escape(key)}(?![\w])", flag, message)
    return message


def _refuse_ignored(cfg, card: dict, given: dict) -> None:
    """One-line ConfigError for an option given explicitly (``given``: config key -> how the user wrote it)
    that this run would silently ignore: a forcing interval for a method without one, the GTF alpha or the
    clip norm for another method, a forcing mode on a card that is not driven."""
    t = cfg.train
    if "train.gtf_alpha" in given and t.method != "gtf":
        raise ConfigError(f"{given['train.gtf_alpha']} applies only to --method gtf, not {t.method}: it would be "
                          f"ignored; drop it or use --method gtf")
    if "train.clip_norm" in given and t.method != "bptt-clip":
        raise ConfigError(f"--set train.clip_norm applies only to --method bptt-clip, not {t.method}: it would be "
                          f"ignored; drop it or use --method bptt-clip")
    if not uses_tau(t.method, t.gtf_alpha):
        why = ("a fixed --gtf-alpha needs no forcing interval (only --gtf-alpha auto uses tau, as its floor)"
               if t.method == "gtf" else f"--method {t.method} has no forcing interval")
        for key in ("train.tau", "train.tau_anneal"):
            if key in given:
                raise ConfigError(f"{given[key]} would be ignored: {why}; drop it")
    try:
        cfg.check_data(card)
    except ConfigError as err:
        raise ConfigError(_flag_names(str(err), given)) from None


def _one_value(args, typed: set, flagged, cfg) -> None:
    """One line when a flag and ``--set`` give one field two values (``--steps 5 --set train.steps=7``): which
    one wins is no answer the user gave. ``flagged``: the config from the flags alone; ``cfg``: with ``--set``
    applied. The same value twice is accepted."""
    for item in args.set:
        key = str(item).partition("=")[0].strip()
        flag = FIT_FLAGS.get(key)
        attr = None if flag is None else flag[2:].replace("-", "_")
        if attr not in typed:
            continue
        section, _, name = key.partition(".")
        if not _same(getattr(getattr(flagged, section), name), getattr(getattr(cfg, section), name)):
            shown = flag if isinstance(getattr(args, attr), bool) else f"{flag} {getattr(args, attr)}"
            raise ConfigError(f"{shown} and --set {item} give {key} two values; give it once")


def _cmd_fit(args) -> int:
    typed = {k for k, v in vars(args).items() if v not in (None, False)}   # what the user gave, before defaults
    given: dict = {}   # config key -> the flag or --set the user wrote it with (fills in below for a new fit)
    if args.resume is not None:
        cfg = _resume_config(args)
    for flag, value in (("model", ModelConfig().kind), ("method", TrainConfig().method), ("tau", "auto"),
                        ("device", "auto"), ("seed", 0)):
        if getattr(args, flag) is None:   # the parser leaves them None so that --resume sees what was given
            setattr(args, flag, value)
    if args.data_dir is not None:
        check_writable_dir(args.data_dir, "--data-dir", existing_ok=True)   # read-only with the recordings: fine
    if args.resume is None:
        if not args.dataset:
            raise ConfigError("fit needs a DATASET (e.g. `dsrecon fit lorenz`) or --resume RUN_DIR")
        card = data_mod.card(args.dataset)  # unknown names fail here, before any work
        tau = parse_tau(args.tau)
        train_kw = {"tau": tau, "seed": args.seed, "device": args.device,
                    "time_budget": parse_duration(args.time_budget)}
        if args.steps is not None:
            train_kw["steps"] = args.steps
        if args.ensemble is not None:
            train_kw["ensemble"] = args.ensemble
        train_kw["method"] = args.method
        for flag, key in (("gtf_alpha", "gtf_alpha"), ("floss", "floss_k"), ("floss_target", "floss_target"),
                          ("prefloss_epochs", "prefloss_epochs"), ("floss_every", "floss_every")):
            if getattr(args, flag) is not None:
                train_kw[key] = getattr(args, flag)
        model_kw = {"kind": args.model, "latent_dim": args.latent_dim}
        eval_kw = {} if args.t_gen is None else {"t_gen": args.t_gen}
        name = str(Path(args.dataset).resolve()) if data_mod.is_path(args.dataset) else args.dataset
        columns = None
        if args.columns is not None:
            if not all(c.strip() for c in args.columns.split(",")):
                raise ConfigError(f"--columns {args.columns!r} has an empty entry; list the columns by name or index, "
                                  f"separated by commas (e.g. --columns x,y)")
            columns = [int(c) if c.strip().lstrip("-").isdigit() else c.strip() for c in args.columns.split(",")]
        data_kw = dict(name=name, noise=args.noise, forcing=args.forcing, columns=columns, dt=args.dt,
                       embed=args.embed, interpolate=args.interpolate, data_dir=args.data_dir)
        try:   # every value is checked by the config; its message names the flag the user typed
            cfg = RunConfig(data=DataConfig(**data_kw), model=ModelConfig(**model_kw),
                            train=TrainConfig(**train_kw), eval=EvalConfig(**eval_kw))
        except ConfigError as err:
            raise ConfigError(_flag_names(str(err))) from None
        flagged, cfg = cfg, cfg.override(args.set)
        _one_value(args, typed, flagged, cfg)
        if cfg.data.name != name:   # the card was read for DATASET: a second name for the data would train on it unseen
            raise ConfigError(f"--set data.name={cfg.data.name} and DATASET {args.dataset!r} name two different data "
                              f"sources; give the data once, as DATASET")
        given = {key: flag for key, flag in FIT_FLAGS.items() if flag[2:].replace("-", "_") in typed}
        given.update({k: f"--set {k}" for k in (str(item).partition("=")[0].strip() for item in args.set)})
        if cfg.train.tau == "auto":
            given.pop("train.tau", None)   # the default, said aloud: nothing to ignore
        _refuse_ignored(cfg, card, given)
    check_threads(args.threads)   # at most OVERSUBSCRIBE per core of this machine
    torch.set_num_threads(args.threads)
    try:   # the checks that need the data (seq_len, batch_size, tau, the model) run in fit_run, before it writes
        experiment.fit_run(cfg, out=args.out, resume=args.resume, quiet=args.quiet, overwrite=args.overwrite)
    except ConfigError as err:
        raise ConfigError(_flag_names(str(err), given)) from None
    except Interrupted as err:
        if args.debug:
            raise
        where = f"`dsrecon fit --resume {err.run_dir}`" if err.run_dir is not None else "`dsrecon fit --resume RUN_DIR`"
        print(f"dsrecon: Interrupted: {err}; continue with {where}", file=sys.stderr)
        return 130
    return 0


# what may change when a run is resumed: its training budget and where it runs (the rest is its config.json)
RESUME_KEYS = ("train.steps", "train.time_budget", "train.device")


def _resume_config(args):
    """The config of ``fit --resume RUN_DIR`` with the allowed changes; one line for any option that would
    be silently ignored."""
    if args.dataset:
        raise ConfigError(f"--resume {args.resume} takes no DATASET (got {args.dataset!r}): the run's config.json "
                          "names its data; start a new fit for other data")
    if args.out is not None:
        raise ConfigError(f"--out with --resume: a resumed run continues in {args.resume} itself; drop --out (or "
                          "start a new fit with --out)")
    if args.steps is not None:
        raise ConfigError(f"--steps with --resume: to train the run longer use --set train.steps={args.steps}")
    if args.overwrite:
        raise ConfigError("--overwrite with --resume: resuming keeps the run; to start it again use "
                          f"`dsrecon fit ... --out {args.resume} --overwrite` without --resume")
    given = [f"--{k.replace('_', '-')}" for k in ("model", "method", "latent_dim", "tau", "gtf_alpha", "floss",
                                                   "floss_target", "prefloss_epochs", "floss_every", "noise",
                                                   "forcing", "columns", "dt", "embed", "seed", "ensemble", "t_gen",
                                                   "data_dir")
             if getattr(args, k) not in (None, False)]
    if args.interpolate:
        given.append("--interpolate")
    if given:
        raise ConfigError(f"{given[0]} with --resume: a resumed run keeps the settings of its config.json (only "
                          f"--set train.steps=N, --time-budget and --device may change); start a new fit for other "
                          f"settings")
    for item in args.set:
        key = str(item).partition("=")[0].strip()
        if key not in RESUME_KEYS:
            raise ConfigError(f"--set {item} with --resume: only {', '.join(RESUME_KEYS)} may change when a run is "
                              "resumed; start a new fit for other settings")
    flagged = {key: (f"{flag} {value}", parsed) for key, flag, value, parsed in (
        ("train.time_budget", "--time-budget", args.time_budget, parse_duration(args.time_budget)),
        ("train.device", "--device", args.device, args.device)) if value is not None}
    for item in args.set:   # one value per setting: a flag and --set that disagree are refused
        key, _, raw = str(item).partition("=")
        if key.strip() in flagged and not _same(parse_value(raw), flagged[key.strip()][1]):
            raise ConfigError(f"{flagged[key.strip()][0]} and --set {item} give {key.strip()} two values; give it once")
    cfg = runs.open(args.resume).config
    sets = list(args.set)
    if args.time_budget is not None:
        sets.append(f"train.time_budget={parse_duration(args.time_budget)}")
    if args.device is not None:
        sets.append(f"train.device={args.device}")
    return cfg.override(sets)


def _cmd_lyap(args) -> int:
    target = Path(args.target)
    if args.dt is not None and not args.dt > 0:
        raise ConfigError(f"--dt must be a positive number of time units per sample, got {args.dt}")
    is_run = target.is_dir() and ((target / "model.pt").exists() or (target / "config.json").exists())
    if target.is_dir() and not is_run:
        raise DataError(f"{target} is a folder but not a run directory (no config.json there); give a run directory "
                        "written by `dsrecon fit`, a dataset name or a .npy/.csv/.txt file")
    # each option belongs to one kind of TARGET: given to the other it would be ignored without a word
    wrong = [f for f, v, run_only in (("--k", args.k, True), ("--n-steps", args.n_steps, True), ("--dt", args.dt, False),
                                      ("--method", args.method, False)) if v is not None and run_only != is_run]
    if wrong:
        raise ConfigError(f"{wrong[0]} applies to " + ("a dataset or a file" if is_run else "a run directory")
                          + f"; {target} is " + ("a run directory" if is_run else "not one") + ": drop it")
    if not is_run:
        if args.plot is not None:
            check_not_in_run(args.plot, "--plot")   # a run's --overwrite deletes its .png files
            check_writable_file(args.plot, "--plot", suffix=".png")
        if target.suffix.lower() != ".toml" and (target.suffix.lower() in (".npy", ".csv", ".txt", ".dat")
                                                 or target.is_file()):
            x, _, info = data_mod.read_file(target, dt=args.dt, check=False)   # dt: --dt, a time column, EDF header, or 1
            series, name, ref, dt = (x[:, 0] if x.shape[1] == 1 else x), target.stem, None, info["dt"]
        else:
            data = data_mod.load(args.target)  # an unknown name fails here with the list of datasets
            series, _ = data_mod.train_test_split(data)
            name, dt = args.target, args.dt
            ref = f"{data.attrs['lambda_ref']} per time unit ({data.attrs['lambda_ref_source']})"
        try:
            lam = max_lyapunov(series, dt, method=args.method or "rosenstein")
        except DataError as err:   # the estimator calls its input x: name the user's data instead
            msg = str(err)
            raise DataError(f"{target}: " + (f"the series {msg[2:]}" if msg.startswith("x ") else msg)) from None
        print(lam)
        a, b = lam.fit_range
        print(f"fit: lags {a}..{b - 1} of {len(lam.curve) - 1}, slope {lam.per_step:.4g} ± {lam.stderr_per_step:.2g} "
              f"per step, {lam.n_pairs} pairs, state dimension {lam.dim}, Theiler window {lam.theiler} steps")
        try:   # the rule of `fit --tau auto`: ln2/lambda_max, or a fallback when divergence is weak
            print(f"`dsrecon fit --tau auto` would use {forcing_interval(series, dt)}")
        except DataError as err:
            print(f"`dsrecon fit --tau auto` would refuse: {err}")
        if ref is not None:
            print(f"reference: {ref}")
        print(f"divergence plot: {plot_lambda_max(lam, args.plot or f'lambda_max-{name}.png')}")
        return 0
    if args.plot is not None:
        raise ConfigError(f"--plot applies to a dataset or a file; {target} is a run directory (its spectrum is "
                          "printed, not plotted)")
    run = runs.open(target)
    model = run.model()
    data = run.data()   # refuses data changed since the run was trained
    try:   # the run's own recipe (eval.lyap_*), so that `dsrecon eval` reports the same model lambda_max
        ecfg = replace(run.config.eval, **{k: v for k, v in (("lyap_k", args.k), ("lyap_steps", args.n_steps))
                                           if v is not None})
    except ConfigError as err:
        raise ConfigError(str(err).replace("eval.lyap_k", "--k").replace("eval.lyap_steps", "--n-steps")) from None
    ly = evaluation.model_spectrum(model, data, ecfg)
    l1, spec = ly["lambda_max"], ly["spectrum"]
    if not np.isfinite(l1.value):
        raise DataError(f"{target}: {l1.reason or 'the model spectrum is not finite'}")
    values, se = spec.extra["model"], spec.extra["stderr"]
    v = l1.variant
    print(f"Lyapunov spectrum of the model ({v['method']}, first {len(values)} of {model.latent_dim} exponents, "
          f"{v['n_steps']} steps after {v['transient']}, QR every {v['qr_every']}, {l1.n_init} starts on the test "
          f"split; per time unit):")
    print("  " + ", ".join(f"{x:.4g} ± {e:.2g}" for x, e in zip(values, se)))
    print(f"  D_KY = {ly['D_KY'].value:.4g}" + (f" ({ly['D_KY'].reason})" if ly["D_KY"].reason else "")
          + f"; entropy rate (sum of the positive exponents) = {sum(x for x in values if x > 0):.4g} per time unit")
    saved = run.read("lambda_max.json") if (target / "lambda_max.json").exists() else None
    try:
        data_lam, data_se = float(saved["value"]), saved.get("stderr", float("nan"))
    except (KeyError, TypeError, ValueError):   # absent or damaged: estimate it again
        fresh = max_lyapunov(data_mod.train_test_split(data)[0])
        data_lam, data_se = fresh.value, fresh.stderr
    pm = f" ± {data_se:.2g}" if data_se is not None and np.isfinite(data_se) else ""
    spread = f" ± {l1.spread:.2g}" if l1.spread is not None else ""
    print(f"model lambda_max = {l1.value:.4g}{spread} per time unit (standard error over {l1.n_init} initial "
          f"conditions; the same recipe as `dsrecon eval`); data lambda_max = {data_lam:.4g}{pm} (Rosenstein); "
          f"reference {data.attrs.get('lambda_ref', '-')}")
    return 0


def _cmd_eval(args) -> int:
    if args.n_init < 1:
        raise ConfigError(f"--n-init must be a positive integer, got {args.n_init}")
    opened = runs.open(args.run_dir)
    run, cfg = opened.path, opened.config
    model = opened.model()
    try:   # eval.t_gen's range (>= 1000) is the config's; the message names the flag
        ecfg = cfg.eval if args.t_gen is None else replace(cfg.eval, t_gen=args.t_gen)
    except ConfigError as err:
        raise ConfigError(str(err).replace("eval.t_gen", "--t-gen")) from None
    data = opened.data()   # refuses data changed since the run was trained
    ref = None
    if args.true_spectrum:
        ref = true_spectrum(cfg.data.name, n_steps=1000, transient=300, n_init=1)  # DataError for a recording
    try:
        metrics, _ = evaluation.evaluate(model, data, ecfg, noise_floor_seed=int(data.attrs["seed"]) + 1, n_init=args.n_init,
                              reference_spectrum=ref)
    except ConfigError as err:   # the API's names, as the flags the user typed
        raise ConfigError(str(err).replace("n_init = ", "--n-init ").replace("t_gen = ", "--t-gen ")
                          .replace("shorter t_gen", "shorter --t-gen")) from None
    except KeyboardInterrupt:
        print(f"dsrecon: eval of {run} interrupted; nothing in it was changed: rerun `dsrecon eval {run}`",
              file=sys.stderr)
        raise
    if args.json:
        print(json.dumps(_json_safe({"run_dir": str(run), **metrics}), indent=2))
    else:
        print(f"{run}: {cfg.data.name} / {cfg.model.kind} ({cfg.train.method}), re-scored")
        print(score_table(metrics))
    return 0


def _cmd_compare(args) -> int:
    if args.plot:
        check_not_in_run(args.plot, "--plot")   # a run's --overwrite deletes its .png files
        check_writable_file(args.plot, "--plot", suffix=".png")
    print(compare_table(args.run_dirs))
    if args.plot:
        print(f"tau sweep: {plot_tau_sweep(args.run_dirs, args.plot)}")
    return 0


def _cmd_data(args) -> int:
    if args.action == "fetch":
        if not args.name:
            raise ConfigError("data fetch needs a NAME, e.g. `dsrecon data fetch jena` (see `dsrecon data list`)")
        print(data_mod.fetch(args.name, data_dir=args.data_dir))
        return 0
    if args.name:
        raise ConfigError(f"data list takes no NAME (got {args.name!r}); did you mean `dsrecon data fetch {args.name}`?")
    for name in data_mod.available():
        c = data_mod.card(name)
        ref = c.get("reference", {})
        print(f"{name:14s} {c.get('kind', '?'):9s} {c.get('description', '')}  (λ_max ref {ref.get('lambda_max', '?')} "
              f"{ref.get('lambda_units', '')})")
    return 0


def _cmd_task(args) -> int:
    for old, new in TASK_RENAMED.items():
        if getattr(args, f"renamed_{old[2:]}") is not None:
            raise ConfigError(f"{old} was renamed {new} (task and fit flags share their names): use {new} "
                              f"{getattr(args, f'renamed_{old[2:]}')}")
    try:
        floss_at = [int(e) for e in args.floss_at.split(",") if e.strip()]
    except ValueError:
        raise ConfigError(f"--floss-at must be comma-separated epochs, e.g. 0,100,200; got {args.floss_at!r}") from None
    floss_kw = {k: v for k, v in (("floss_k", args.floss), ("floss_epochs", args.floss_epochs),
                                  ("floss_lr", args.floss_lr)) if v is not None}
    if floss_kw and not (args.prefloss_epochs or floss_at):
        flags = {"floss_k": "--floss", "floss_epochs": "--floss-epochs", "floss_lr": "--floss-lr"}
        raise ConfigError(f"{flags[next(iter(floss_kw))]} would be ignored: no flossing is scheduled; add "
                          f"--prefloss-epochs E or --floss-at E1,E2,... (or drop it)")
    if "floss_epochs" in floss_kw and not floss_at:
        raise ConfigError("--floss-epochs sets the updates of the --floss-at episodes, and there are none (preflossing "
                          "takes --prefloss-epochs); drop it or add --floss-at E1,E2,...")
    try:   # every setting is checked before any work; the message names the flag the user typed
        task = Task(args.task, args.delay, T=args.seq_len)
        model = task_model(task, latent_dim=args.latent_dim, g=args.gain, seed=args.seed)
        result = train_task(model, task, epochs=args.steps, lr=args.lr, batch=args.batch_size,
                            prefloss_epochs=args.prefloss_epochs, floss_at=floss_at, seed=args.seed, progress=True,
                            **floss_kw)
    except ConfigError as err:
        raise ConfigError(_task_flag_names(str(err))) from None
    print(result)
    return 0


# train_task / task_model parameters -> the `dsrecon task` flags that set them
TASK_FLAGS = {"latent_dim": "--latent-dim", "g": "--gain", "seed": "--seed", "epochs": "--steps", "lr": "--lr",
              "batch": "--batch-size", "floss_k": "--floss", "prefloss_epochs": "--prefloss-epochs", "floss_at": "--floss-at",
              "floss_epochs": "--floss-epochs", "floss_lr": "--floss-lr"}


def _task_flag_names(message: str) -> str:
    """'train_task: lr must be ...' -> '--lr must be ...' (a message about another setting is kept)."""
    m = re.match(r"(?:train_task|task_model): (\w+)( = )?", message)
    if m and m.group(1) in TASK_FLAGS:
        return TASK_FLAGS[m.group(1)] + (" " if m.group(2) else "") + message[m.end():]
    return message


def _runtime_env_arg(text: str) -> dict:
    """--runtime-env: inline JSON, or the path of a .json file holding it."""
    source = text
    if not text.lstrip().startswith("{"):
        check_path(text, "--runtime-env", ConfigError)
        try:
            source = Path(text).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"--runtime-env {text!r}: neither a JSON object nor a readable .json file "
                              f"({getattr(err, 'strerror', None) or type(err).__name__})") from None
    try:
        env = json.loads(source)
    except ValueError as err:
        raise ConfigError(f"--runtime-env: not valid JSON ({err}); e.g. '{{\"working_dir\": \".\"}}'") from None
    return check_runtime_env(env, "--runtime-env")


def _cmd_sweep(args) -> int:
    sweep = load_sweep(args.config, out=args.out, max_runs=args.max_runs)   # a malformed config fails here, before any work
    check_path(sweep.out, "--out" if args.out else "the output folder ([sweep] out, else runs/sweeps/NAME)", ConfigError)
    check_out_dir(sweep.out, "--out" if args.out else "the output folder ([sweep] out or --out)")
    ray_flags = (args.runtime_env, args.address, args.connect_timeout, args.max_attempts)
    if args.backend != "ray" and any(v is not None for v in ray_flags):   # given at all: --address "" or 0 too
        raise ConfigError("--address, --runtime-env, --connect-timeout and --max-attempts apply to --backend ray only")
    if args.backend == "ray" and args.ensemble_jobs:
        raise ConfigError("--ensemble-jobs applies to --backend local only; on Ray every run is its own task")
    if args.backend == "ray" and args.workers is not None:
        raise ConfigError("--workers applies to --backend local only: on Ray the cluster's CPUs set how many runs "
                          "run at once; drop it")
    if args.address is not None:
        check_address(args.address, "--address")
    runtime_env = None if args.runtime_env is None else _runtime_env_arg(args.runtime_env)
    flags = {"connect_timeout": args.connect_timeout, "max_attempts": args.max_attempts}
    check_ray_options({k: v for k, v in flags.items() if v is not None},
                      "--connect-timeout/--max-attempts:")
    if args.dry_run:
        check_runs(sweep, here=args.backend != "ray", workers=args.workers)   # run_sweep's checks: a dry run promises no failure
        print(f"sweep {sweep.name}: {len(sweep.specs)} runs -> {sweep.out}")
        for s in sweep.specs:
            print(f"  {s['dataset']} {s['model']} {s['method']} tau={s['tau']} seed={s['seed']}  {s['key']}")
        return 0
    res = run_sweep(sweep, backend=args.backend, address=args.address, workers=args.workers, progress=not args.quiet,
                    retry_failed=args.retry_failed, runtime_env=runtime_env,
                    connect_timeout=args.connect_timeout, max_attempts=args.max_attempts,
                    ensemble_jobs=args.ensemble_jobs)
    print(f"sweep {sweep.name}: {res.ran} runs done, {res.skipped} skipped (already finished), {len(res.errors)} errors "
          f"in {res.seconds:.0f} s")
    if res.records:
        print(f"results: {res.out / 'results.nc'}; leaderboard: {res.out / 'leaderboard.md'}")
    return 1 if res.errors else 0


def _cmd_leaderboard(args) -> int:
    try:
        metrics = check_metrics(m.strip() for m in args.metrics.split(",") if m.strip())
    except ConfigError as err:
        raise ConfigError(f"--metrics {args.metrics!r}: {err}") from None
    md, page = write_leaderboard(args.results, args.out, metrics)   # refuses bad input before printing anything
    src = Path(args.results)
    print(to_markdown(read_results(src), metrics, expected_runs(src if src.is_dir() else src.parent)), end="")
    print(f"\nwritten: {md}, {page}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        _check_paths(args)
        return {"fit": _cmd_fit, "lyap": _cmd_lyap, "eval": _cmd_eval, "compare": _cmd_compare, "task": _cmd_task,
                "data": _cmd_data, "sweep": _cmd_sweep, "leaderboard": _cmd_leaderboard}[args.command](args)
    except DsreconError as err:
        if getattr(args, "debug", False):
            raise
        print(f"dsrecon: {type(err).__name__}: {err}", file=sys.stderr)
        # an interruption says itself what was kept (`fit` adds its resume command in _cmd_fit)
        return 130 if isinstance(err, Interrupted) else 2
    except KeyboardInterrupt:
        print("dsrecon: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug, not bad input: still one line for the user, the traceback on --debug
        if getattr(args, "debug", False):
            raise
        print(f"dsrecon: internal error: {type(err).__name__}: {err}".splitlines()[0]
              + " (rerun with --debug for the traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
