"""Issue 26, parts 4 and 5: one value per setting, and bounds on work.

Part 4: a flag and ``--set`` (or two ``--set``, or a [per_model] and a [per_dataset] table of a sweep) giving one
field two values are refused in one line naming both (`--steps 5 --set train.steps=7` trained 7 without a word);
the same value twice is accepted. Part 5: a sweep's grid size (counted before it is expanded: a 10^6-run grid took
880 MB in 60 s, also with --dry-run), steps, T_gen against free memory and threads are checked before any work,
in a dry run as in a real one, with one line naming the limit. Each refusal keeps tests/hostile.py's contract:
exit 2, one line, nothing written.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile import assert_refused, run_cli

from dsrecon import backends as B, cli, config, evaluation, experiment, sweep as S, sweep_values
from dsrecon.config import RunConfig, TrainConfig
from dsrecon.errors import ConfigError

# cheap on the code before this change too (there each case trained instead of being refused)
FIT = ["fit", "lorenz", "--quiet", "--set", "train.validate_every=0"]
SHORT = ["--steps", "5", "--t-gen", "1000"]

FLAG_AND_SET = {
    "steps": (["--steps", "5", "--t-gen", "1000", "--set", "train.steps=7"],
              ["--steps 5 and --set train.steps=7 give train.steps two values"]),
    "t-gen": (["--steps", "5", "--t-gen", "1000", "--set", "eval.t_gen=2000"],
              ["--t-gen 1000 and --set eval.t_gen=2000 give eval.t_gen two values"]),
    "tau": ([*SHORT, "--method", "stf", "--tau", "30", "--set", "train.tau=40"], ["--tau 30", "--set train.tau=40"]),
    "tau-auto-against-a-number": ([*SHORT, "--method", "stf", "--tau", "auto", "--set", "train.tau=40"],
                                  ["--tau auto", "--set train.tau=40", "two values"]),
    "model": ([*SHORT, "--model", "plrnn", "--set", "model.kind=lstm"], ["--model plrnn", "--set model.kind=lstm"]),
    "method": ([*SHORT, "--method", "stf", "--set", "train.method=gtf"], ["--method stf", "--set train.method=gtf"]),
    "seed": ([*SHORT, "--seed", "1", "--set", "train.seed=2"], ["--seed 1", "--set train.seed=2", "two values"]),
    "ensemble": ([*SHORT, "--ensemble", "1", "--set", "train.ensemble=2"], ["--ensemble 1", "train.ensemble=2"]),
    "device": ([*SHORT, "--device", "cpu", "--set", "train.device=auto"], ["--device cpu", "train.device=auto"]),
    "time-budget": ([*SHORT, "--time-budget", "3m", "--set", "train.time_budget=60"],
                    ["--time-budget 3m", "--set train.time_budget=60", "two values"]),
    "noise": ([*SHORT, "--noise", "0.1", "--set", "data.noise=0.2"], ["--noise 0.1", "--set data.noise=0.2"]),
    "latent-dim": ([*SHORT, "--latent-dim", "12", "--set", "model.latent_dim=20"], ["--latent-dim 12"]),
    "set-twice": ([*SHORT, "--set", "train.lr=1e-3", "--set", "train.lr=3e-4"],
                  ["--set train.lr=1e-3 and --set train.lr=3e-4 give train.lr two values"]),
}


@pytest.mark.parametrize("case", list(FLAG_AND_SET))
def test_a_flag_and_set_giving_one_field_two_values_are_refused(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv, match = FLAG_AND_SET[case]
    assert_refused([*FIT, *argv], capsys, watch=tmp_path, match=match)


@pytest.mark.parametrize("argv, key, value", [
    (["--steps", "5", "--set", "train.steps=5"], ("train", "steps"), 5),
    (["--time-budget", "3m", "--set", "train.time_budget=180"], ("train", "time_budget"), 180.0),
    (["--set", "train.lr=1e-3", "--set", "train.lr=0.001"], ("train", "lr"), 1e-3),
], ids=["steps", "time-budget-in-other-units", "set-twice"])
def test_the_same_value_twice_is_accepted(argv, key, value, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    seen = []
    monkeypatch.setattr(experiment, "fit_run", lambda cfg, **kw: seen.append(cfg))
    code, _, err = run_cli([*FIT, *argv], capsys)
    assert code == 0 and len(seen) == 1, err
    assert getattr(getattr(seen[0], key[0]), key[1]) == value


def test_resume_flag_and_set_giving_one_field_two_values_are_refused(tmp_path, monkeypatch, capsys):
    # refused before the run is even opened: the folder need not hold a run (before: "not a run directory")
    monkeypatch.chdir(tmp_path)
    assert_refused(["fit", "--resume", tmp_path / "run", "--time-budget", "3m", "--set", "train.time_budget=60"],
                   capsys, watch=tmp_path, match=["--time-budget 3m and --set train.time_budget=60", "two values"])


def test_the_api_refuses_one_key_set_twice_with_two_values():
    with pytest.raises(ConfigError, match="train.steps two values"):
        RunConfig().override(["train.steps=5", "train.steps=7"])
    assert RunConfig().override(["train.steps=7", "train.steps=7.0"]).train.steps == 7


# ------------------------------------------------------------------ sweeps
SWEEP = """[sweep]
name = "s"
datasets = ["lorenz"]
models = ["plrnn"]
methods = [{methods}]
seeds = {seeds}
{extra}
[train]
steps = {steps}
[eval]
t_gen = {t_gen}
{tail}"""


def sweep_file(tmp_path, *, methods='"gtf"', seeds="[0, 1]", extra="", steps="12", t_gen="1000", tail="") -> Path:
    p = tmp_path / "s.toml"
    p.write_text(SWEEP.format(methods=methods, seeds=seeds, extra=extra, steps=steps, t_gen=t_gen, tail=tail))
    return p


@pytest.fixture
def stub_runs(monkeypatch):
    """Runs that 'train' instantly (on the code before, a refused case would otherwise train)."""
    monkeypatch.setattr(B, "_run_model", lambda spec, run_dir: ({"D_stsp": 1.0, "D_H": 0.1, "PSC": 0.9, "T_gen": 1000,
                                                                  "noise_floor": {}, "variants": {}}, None))


def _sweep(toml, tmp_path, dry, *extra):
    return ["sweep", toml, "--out", tmp_path / "out", "--workers", "1", "--quiet", *extra, *(["--dry-run"] if dry else [])]


DRY = pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])


@DRY
def test_per_model_and_per_dataset_giving_one_key_two_values_are_refused(dry, tmp_path, monkeypatch, capsys,
                                                                        stub_runs):
    monkeypatch.chdir(tmp_path)
    toml = sweep_file(tmp_path, tail="[per_model.plrnn.train]\nlr = 1e-3\n[per_dataset.lorenz.train]\nlr = 3e-4\n")
    assert_refused(_sweep(toml, tmp_path, dry), capsys, watch=tmp_path,
                   match=["[per_model.plrnn.train] lr = 0.001 and [per_dataset.lorenz.train] lr = 0.0003",
                          "runs of plrnn on lorenz two values"])


def test_per_model_and_per_dataset_with_the_same_value_are_accepted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    toml = sweep_file(tmp_path, tail="[per_model.plrnn.train]\nlr = 1e-3\n[per_dataset.lorenz.train]\nlr = 0.001\n")
    code, out, err = run_cli(_sweep(toml, tmp_path, True), capsys)
    assert code == 0 and "2 runs" in out, err


@DRY
def test_a_grid_above_the_limit_is_refused_before_it_is_expanded(dry, tmp_path, monkeypatch, capsys, stub_runs):
    # 12 seeds x 1 run each (gtf with a fixed alpha: the taus collapse) against a limit lowered to 10
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep_values, "MAX_RUNS", 10)
    toml = sweep_file(tmp_path, seeds=str(list(range(12))), extra="taus = [10, 20, 30]")
    assert_refused(_sweep(toml, tmp_path, dry), capsys, watch=tmp_path,
                   match=["the sweep has 12 runs (1 datasets x 1 models x 1 methods x 3 taus x 12 seeds)",
                          "more than the limit of 10", "--max-runs 12"])


def test_the_default_grid_limit_is_ten_thousand_runs(tmp_path, monkeypatch, capsys):
    # stf uses tau: 101 taus x 100 seeds = 10,100 runs > 10,000 (MAX_RUNS)
    monkeypatch.chdir(tmp_path)
    toml = sweep_file(tmp_path, methods='"stf"', seeds=str(list(range(100))), extra=f"taus = {list(range(10, 111))}")
    assert_refused(_sweep(toml, tmp_path, True), capsys, watch=tmp_path,
                   match=["the sweep has 10,100 runs", "limit of 10,000", "--max-runs 10100"])


def test_max_runs_raises_the_limit(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep_values, "MAX_RUNS", 10)
    toml = sweep_file(tmp_path, seeds=str(list(range(12))))
    code, out, err = run_cli(_sweep(toml, tmp_path, True, "--max-runs", "12"), capsys)
    assert code == 0 and "12 runs" in out, err
    with pytest.raises(ConfigError, match="limit of 11"):
        S.load_sweep(toml, max_runs=11)


@DRY
@pytest.mark.parametrize("steps, match", [
    ("1e308", "train.steps must be a positive integer <= 10,000,000, got 1e+308"),
    ("10_000_001", "got 10000001"),
], ids=["1e308", "one-above"])
def test_steps_beyond_the_bound_are_refused(steps, match, dry, tmp_path, monkeypatch, capsys, stub_runs):
    monkeypatch.chdir(tmp_path)
    assert_refused(_sweep(sweep_file(tmp_path, steps=steps), tmp_path, dry), capsys, watch=tmp_path, match=match)


def test_steps_beyond_the_bound_are_refused_by_fit_and_the_api(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(experiment, "fit_run", lambda cfg, **kw: None)   # the code before trained until killed
    assert_refused([*FIT, "--set", "train.steps=1e308"], capsys, watch=tmp_path,
                   match="train.steps must be a positive integer <= 10,000,000, got 1e+308")
    assert_refused([*FIT, "--steps", "10000001"], capsys, watch=tmp_path, match="--steps must be a positive integer <= 10,000,000, got 10000001")
    for kw in ({"steps": 1e308}, {"prefloss_epochs": 10**8, "floss_k": 1}, {"floss_epochs": 10**8, "floss_k": 1}):
        with pytest.raises(ConfigError, match="10,000,000"):
            TrainConfig(**kw)


@pytest.fixture
def one_gib_free(monkeypatch):
    """The machine has 1 GiB free (both the config's check and the evaluation's, which ran after training)."""
    monkeypatch.setattr(config, "host_available_bytes", lambda: 2**30)
    monkeypatch.setattr(evaluation, "available_bytes", lambda device: 2**30)


def test_t_gen_beyond_free_memory_is_refused_before_training(tmp_path, monkeypatch, capsys, one_gib_free):
    # lorenz: N = 3 channels, shPLRNN M = max(3, 10) = 10 latents: 4 x (3 + 10) + 16 x 3 = 100 bytes per step, so
    # 10^8 steps need 1e10 B = 9.3 GiB; 0.8 (MEMORY_SHARE) x 2^30 B / 100 B = 8,589,934 steps fit
    monkeypatch.chdir(tmp_path)
    assert_refused([*FIT, "--steps", "5", "--t-gen", "100000000"], capsys, watch=tmp_path,
                   match=["--t-gen = 100000000 generated steps need at least 9.3 GiB", "1.0 GiB free",
                          "use --t-gen <= 8589934"])


@DRY
def test_t_gen_beyond_free_memory_is_refused_in_a_sweep(dry, tmp_path, monkeypatch, capsys, one_gib_free, stub_runs):
    # plrnn without latent_dim: at least one latent per channel, 4 x (3 + 3) + 16 x 3 = 72 B per step: 6.7 GiB
    monkeypatch.chdir(tmp_path)
    toml = sweep_file(tmp_path, t_gen="100000000")
    assert_refused(_sweep(toml, tmp_path, dry), capsys, watch=tmp_path,
                   match=["run lorenz plrnn gtf", "eval.t_gen = 100000000 generated steps need at least 6.7 GiB"])


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


def test_threads_beyond_the_machine_are_refused_by_fit(tmp_path, monkeypatch, capsys, two_cores):
    # 4 threads per core (config.OVERSUBSCRIBE) x 2 cores = 8
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(experiment, "fit_run", lambda cfg, **kw: None)
    monkeypatch.setattr(cli.torch, "set_num_threads", lambda n: None)   # the code before set them
    assert_refused([*FIT, "--threads", "9"], capsys, watch=tmp_path,
                   match="--threads 9 exceeds this machine's limit of 8 threads (4 per core, 2 cores)")


@DRY
@pytest.mark.parametrize("extra, argv, match", [
    ("threads = 9", [], "[sweep] threads 9 exceeds this machine's limit of 8 threads"),
    ("threads = 4", ["--workers", "3"], "--workers 3 x [sweep] threads 4 = 12 threads exceed this machine's limit of 8"),
], ids=["threads", "workers-times-threads"])
def test_threads_beyond_the_machine_are_refused_by_a_sweep(extra, argv, match, dry, tmp_path, monkeypatch, capsys,
                                                           two_cores, stub_runs):
    monkeypatch.chdir(tmp_path)
    toml = sweep_file(tmp_path, seeds="[0, 1, 2]", extra=extra)
    args = [a for a in _sweep(toml, tmp_path, dry) if a not in ("--workers", "1")] + argv
    assert_refused(args, capsys, watch=tmp_path, match=match)
