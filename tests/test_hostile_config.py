"""Issue 12: every config value is validated, with its allowed range, before anything is created on disk.

One parametrised ``test_..._refused`` per area (see tests/hostile.py): each case is run through the CLI in an
empty working directory that must stay empty, and must end in one line naming the key as the user wrote it.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
from hostile import assert_refused

from dsrecon.config import DataConfig, EvalConfig, ModelConfig, Range, RunConfig, TrainConfig
from dsrecon.errors import ConfigError

FIT = ["fit", "lorenz", "--quiet"]


FIT_CASES = [
    # seeds: [0, 2^32) (numpy's legacy range; torch's is [0, 2^64), but seeds get offsets added)
    (["--seed", str(2**63)], ["--seed", "[0, 2^32)", str(2**63)]),
    (["--seed", str(2**64)], ["--seed", "[0, 2^32)"]),
    (["--seed", "-1"], ["--seed", "got -1"]),
    (["--set", "train.seed=-5"], ["train.seed", "got -5"]),
    (["--set", "data.seed=4294967296"], ["data.seed", "[0, 2^32)"]),
    # numbers out of range, NaN and inf anywhere
    (["--set", "train.lr=-1"], ["train.lr must be a number > 0, got -1"]),
    (["--set", "train.lr=nan"], ["train.lr must be a finite number > 0, got nan"]),
    (["--set", "train.lr=inf"], ["train.lr", "finite", "inf"]),
    (["--set", "train.lr=fast"], ["train.lr", "'fast'"]),
    (["--set", "train.lr_end=0"], ["train.lr_end", "> 0"]),
    (["--set", "train.floss_lr=-1e-3"], ["train.floss_lr", "> 0"]),
    (["--set", "train.explode_loss=Infinity"], ["train.explode_loss", "finite"]),
    (["--set", "train.clip_norm=0", "--method", "bptt-clip"], ["train.clip_norm", "> 0"]),
    (["--set", "train.obs_noise=-0.1"], ["train.obs_noise", "in [0, 10]"]),
    (["--set", "train.obs_noise=1e308"], ["train.obs_noise", "in [0, 10]"]),
    (["--set", "train.tau_anneal=1.5"], ["train.tau_anneal", "[0, 1]"]),
    (["--set", "model.a_init=nan"], ["model.a_init", "finite"]),
    (["--set", "model.ridge=-1"], ["model.ridge", ">= 0"]),
    (["--noise", "nan"], ["--noise", "finite"]),
    (["--noise", "-0.5"], ["--noise", "in [0, 10]"]),
    (["--time-budget", "0"], ["--time-budget", "positive"]),
    # integers that must be positive (or >= 0), and integral floats
    (["--set", "train.checkpoint_every=0"], ["train.checkpoint_every must be a positive integer, got 0"]),
    (["--set", "train.steps=1.5"], ["train.steps", "1.5"]),
    (["--steps", "0"], ["--steps must be a positive integer"]),
    (["--set", "train.val_runs=0"], ["train.val_runs", "got 0"]),
    (["--set", "train.max_recoveries=-1"], ["train.max_recoveries", ">= 0"]),
    (["--set", "train.early_stop=-2"], ["train.early_stop", ">= 0"]),
    (["--set", "model.latent_dim=0"], ["model.latent_dim", "got 0"]),
    (["--latent-dim", "1000000"], ["--latent-dim", "10,000"]),
    # probabilities outside [0, 1]
    (["--method", "gtf", "--gtf-alpha", "1.5"], ["gtf_alpha", "[0, 1]", "1.5"]),
    (["--method", "gtf", "--gtf-alpha", "nan"], ["gtf_alpha", "finite"]),
    # the batch: an absolute cap, then the windows the training split offers
    (["--set", "train.batch_size=1e8"], ["train.batch_size", "100000000", "10,000,000"]),
    (["--set", "train.batch_size=99999", "--set", "train.seq_len=10"], ["train.batch_size = 99999", "windows"]),
    (["--set", "train.seq_len=300000"], ["train.seq_len = 300000", "100000"]),
    # eval: the t_gen >= 1000 rule lives in the config, so --set gets it too
    (["--set", "eval.t_gen=5"], ["eval.t_gen", "1000", "got 5"]),
    (["--t-gen", "5"], ["--t-gen", "1000", "got 5"]),
    (["--set", "eval.n_bins=0"], ["eval.n_bins", "got 0"]),
    (["--set", "eval.sigma=-1"], ["eval.sigma must be a number > 0, got -1"]),
    (["--set", "eval.alpha=0"], ["eval.alpha", "got 0"]),
    # choices
    (["--set", "train.device=tpu"], ["device", "'tpu'", "cpu"]),
    (["--set", "train.tau=soon"], ["train.tau", "auto", "'soon'"]),
    (["--set", "train.tau=2.5"], ["train.tau", "2.5"]),
    (["--set", "data.forcing=both"], ["forcing", "'both'", "phase"]),
    # tau longer than the training series (stf: the default gtf with a fixed alpha uses no tau, see below)
    (["--tau", "1e9", "--method", "stf"], ["--tau", "1000000000", "100000 steps"]),
    (["--set", "train.tau=1000000", "--method", "stf"], ["train.tau", "100000 steps"]),
    # options this run would silently ignore
    (["--gtf-alpha", "0.3", "--method", "stf"], ["--gtf-alpha", "--method gtf"]),
    (["--gtf-alpha", "0.3", "--method", "bptt-clip"], ["--gtf-alpha", "bptt-clip"]),
    (["--set", "train.gtf_alpha=0.3", "--method", "window"], ["--set train.gtf_alpha", "window"]),
    (["--tau", "30"], ["--tau", "--gtf-alpha auto"]),   # the default method is gtf with a fixed alpha
    (["--tau", "30", "--method", "bptt-clip"], ["--tau", "bptt-clip", "drop it"]),
    (["--tau", "30", "--method", "gtf"], ["--tau", "--gtf-alpha auto"]),
    (["--set", "train.tau_anneal=0.5", "--method", "bptt-clip"], ["train.tau_anneal", "bptt-clip"]),
    (["--set", "train.clip_norm=2"], ["train.clip_norm", "bptt-clip"]),
    (["--forcing", "input"], ["--forcing", "'lorenz'", "driven"]),
    (["--set", "train.floss_target=0.1"], ["floss_target", "floss_k = 0"]),
    # settings the model cannot take, refused before the run directory exists
    (["--floss", "500"], ["--floss 500 exceeds"]),
    (["--set", "train.floss_k=50", "--latent-dim", "10"], ["train.floss_k = 50", "latent_dim = 10"]),
    (["--model", "lstm", "--set", "model.a_init=0.5"], ["model.a_init", "lstm"]),
]


@pytest.mark.parametrize("argv, match", FIT_CASES, ids=[" ".join(a) for a, _ in FIT_CASES])
def test_fit_config_value_refused(argv, match, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert_refused(FIT + argv, capsys, watch=tmp_path, match=match)


TASK_CASES = [
    (["--lr", "-1"], ["--lr must be a finite number > 0, got -1"]),
    (["--lr", "nan"], ["--lr", "got nan"]),
    (["--gain", "nan"], ["--gain", "finite", "got nan"]),
    (["--gain", "-1"], ["--gain", "[0, 100]"]),
    (["--latent-dim", "0"], ["--latent-dim", "got 0"]),
    (["--batch-size", "100000000"], ["--batch-size", "100000000", "steps per batch"]),
    (["--seed", str(2**63)], ["--seed", "[0, 2^32)"]),
    (["--seed", "-1"], ["--seed", "got -1"]),
    (["--steps", "-3"], ["--steps", "got -3"]),
    (["--seq-len", "100000000"], ["T = 100000000", "1,000,000"]),
    (["--floss-lr", "nan", "--prefloss-epochs", "2"], ["--floss-lr", "got nan"]),
    (["--floss", "500", "--prefloss-epochs", "2"], ["--floss 500", "80 units"]),
    (["--floss", "5"], ["--floss would be ignored", "--prefloss-epochs"]),
    (["--floss-lr", "0.1"], ["--floss-lr would be ignored"]),
    (["--floss-epochs", "3", "--prefloss-epochs", "2"], ["--floss-epochs", "--floss-at"]),
    # the former flag names (before they matched `dsrecon fit`'s): one line naming the new one
    (["--T", "20"], ["--T was renamed --seq-len", "--seq-len 20"]),
    (["--units", "8"], ["--units was renamed --latent-dim"]),
    (["--g", "1"], ["--g was renamed --gain"]),
    (["--epochs", "2"], ["--epochs was renamed --steps"]),
    (["--batch", "4"], ["--batch was renamed --batch-size"]),
]


@pytest.mark.parametrize("argv, match", TASK_CASES, ids=[" ".join(a) for a, _ in TASK_CASES])
def test_task_setting_refused(argv, match, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert_refused(["task", "copy", "--delay", "4", "--seq-len", "20", "--steps", "2", *argv], capsys, watch=tmp_path,
                   match=match)


SWEEP = """[sweep]
datasets = ["lorenz"]
models = ["plrnn"]
methods = ["stf", "bptt-clip"]
taus = [20]
{extra}
"""


@pytest.mark.parametrize("extra, match", [
    ("[train]\nlr = -1", ["train.lr must be a number > 0, got -1"]),
    ("[train]\nbatch_size = 100000000", ["train.batch_size"]),
    ("[eval]\nt_gen = 5", ["eval.t_gen", "got 5"]),
    ("[eval]\nsigma = nan", ["eval.sigma", "finite"]),
], ids=["train.lr=-1", "train.batch_size=1e8", "eval.t_gen=5", "eval.sigma=nan"])
def test_sweep_config_value_refused(extra, match, capsys, monkeypatch, tmp_path):
    # sweeps build the same dataclasses, so they get every bound for free
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(SWEEP.format(extra=extra))
    assert_refused(["sweep", "bad.toml", "--dry-run"], capsys, watch=tmp_path, match=["bad.toml", *match])


def test_sweep_with_a_tau_grid_and_bptt_clip_still_loads(tmp_path):
    # the "options that would be ignored" rule is the CLI's: a sweep's tau grid over bptt-clip collapses instead
    from dsrecon.sweep import load_sweep

    (tmp_path / "ok.toml").write_text(SWEEP.format(extra="[train]\nsteps = 5"))
    assert len(load_sweep(tmp_path / "ok.toml", out=tmp_path / "out").specs) == 2


@pytest.mark.parametrize("kind", [DataConfig, ModelConfig, TrainConfig, EvalConfig])
def test_every_numeric_field_declares_its_range(kind):
    for f in dataclasses.fields(kind):
        if any(t in str(f.type) for t in ("int", "float")):
            assert isinstance(f.metadata.get("range"), Range), f"{kind.__name__}.{f.name} has no range"


@pytest.mark.parametrize("kind", [DataConfig, ModelConfig, TrainConfig, EvalConfig])
def test_every_float_field_refuses_nan_and_inf(kind):
    section = kind.__name__.replace("Config", "").lower()
    for f in dataclasses.fields(kind):
        if "float" not in str(f.type):
            continue
        for bad in (math.nan, math.inf, -math.inf):
            with pytest.raises(ConfigError, match=rf"{section}\.{f.name} must be .*finite"):
                kind(**{f.name: bad})


def test_the_python_api_gets_the_same_checks():
    with pytest.raises(ConfigError, match="train.lr must be a number > 0, got -1"):
        TrainConfig(lr=-1)
    with pytest.raises(ConfigError, match=r"eval.n_bins must be an integer in \[2, 1000\], got 0"):
        EvalConfig(n_bins=0)
    with pytest.raises(ConfigError, match="eval.t_gen"):
        dataclasses.replace(EvalConfig(), t_gen=999)
    with pytest.raises(ConfigError, match="train.floss_k = 20 exceeds model.latent_dim = 10"):
        RunConfig(model=ModelConfig(latent_dim=10), train=TrainConfig(floss_k=20))
    with pytest.raises(ConfigError, match="at most 99"):
        TrainConfig(batch_size=1000, seq_len=100).check_series(200)
    with pytest.raises(ConfigError, match="train.tau = 500 steps is not shorter"):
        TrainConfig(tau=500).check_series(500, "x")
    TrainConfig(tau=400, seq_len=200).check_series(100_000)   # tau > seq_len stays allowed (the tau-sweep's 400)


def test_values_written_as_strings_or_integral_floats_are_converted():
    cfg = RunConfig().override(["train.steps=1e3", "train.lr=3e-4", "train.tau=30", "train.gtf_alpha=0.25"])
    assert cfg.train.steps == 1000 and isinstance(cfg.train.steps, int) and cfg.train.lr == 3e-4
    assert cfg.train.tau == 30 and cfg.train.gtf_alpha == 0.25
    assert TrainConfig(gtf_alpha="auto").gtf_alpha == "auto" and TrainConfig(tau="12").tau == 12
    assert RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()
