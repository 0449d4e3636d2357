"""Training loop, run directory and CLI, on tiny budgets."""
import json
import math

import numpy as np
import pytest
import torch
import xarray as xr

import dsrecon as ds
from dsrecon import cli, cli_parser
from dsrecon.config import TrainConfig
from dsrecon.errors import DivergenceError
from dsrecon.runs import load_torch
from dsrecon.train import Interrupted, train_loop

TINY = dict(steps=20, batch_size=4, seq_len=30, checkpoint_every=10, validate_every=10, val_len=300,
            val_runs=2, device="cpu")


def _x(lorenz_data, n=5000):
    return ds.data.as_array(lorenz_data)[:n]


def test_same_seed_same_result(lorenz_data):
    a = train_loop(ds.PLRNN(3, 9, seed=0), _x(lorenz_data), tau=10, config=TrainConfig(**TINY), progress=False)
    b = train_loop(ds.PLRNN(3, 9, seed=0), _x(lorenz_data), tau=10, config=TrainConfig(**TINY), progress=False)
    assert a.history["loss"] == b.history["loss"]
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])


def test_loss_decreases(lorenz_data):
    cfg = TrainConfig(**{**TINY, "steps": 300, "validate_every": 0, "batch_size": 8, "lr": 3e-3, "lr_end": 1e-3})
    res = train_loop(ds.PLRNN(3, 20, seed=0), _x(lorenz_data), tau=5, config=cfg, progress=False)
    assert np.mean(res.history["loss"][-30:]) < 0.3 * np.mean(res.history["loss"][:10])


def test_interrupt_then_resume_equals_uninterrupted(lorenz_data, tmp_path, ctrl_c_at):
    x = _x(lorenz_data)
    cfg = TrainConfig(**TINY)
    ref = train_loop(ds.PLRNN(3, 9, seed=0), x, tau=10, config=cfg, progress=False)
    ck = tmp_path / "last.pt"
    with ctrl_c_at(15), pytest.raises(Interrupted, match="checkpoint of step 10"):
        train_loop(ds.PLRNN(3, 9, seed=0), x, tau=10, config=cfg, checkpoint=ck, progress=False)
    assert load_torch(ck)["step"] == 10
    res = train_loop(ds.PLRNN(3, 9, seed=0), x, tau=10, config=cfg, checkpoint=ck, resume=True, progress=False)
    assert res.history["loss"] == ref.history["loss"]
    for k, v in ref.model.state_dict().items():
        assert torch.allclose(v, res.model.state_dict()[k])


def test_resume_after_a_divergence_recovery_equals_uninterrupted(lorenz_data, tmp_path, monkeypatch):
    # the checkpoint keeps the recovery's halved learning rate and its count: a resumed run trains on at the
    # same rate as the uninterrupted one (it trained at twice the rate before)
    import dsrecon.train as train_mod

    x = _x(lorenz_data)
    cfg = TrainConfig(**{**TINY, "steps": 30})
    real = train_mod.rollout

    def patched(interrupt_at=None):
        calls = {"n": 0}

        def rollout(*a, **k):
            calls["n"] += 1
            if calls["n"] == interrupt_at:
                raise KeyboardInterrupt
            out = real(*a, **k)
            return out * float("nan") if calls["n"] == 13 else out   # one non-finite loss at step 12

        return rollout

    monkeypatch.setattr(train_mod, "rollout", patched())
    ref = train_loop(ds.PLRNN(3, 9, seed=0), x, tau=10, config=cfg, checkpoint=tmp_path / "ref.pt", progress=False)
    ref_ck = load_torch(tmp_path / "ref.pt")
    assert ref_ck["recoveries"] == 1 and ref_ck["lr_scale"] == 0.5
    ck = tmp_path / "last.pt"
    monkeypatch.setattr(train_mod, "rollout", patched(interrupt_at=25))   # step 23, after the checkpoint of step 20
    with pytest.raises(Interrupted, match="checkpoint of step 20"):
        train_loop(ds.PLRNN(3, 9, seed=0), x, tau=10, config=cfg, checkpoint=ck, progress=False)
    monkeypatch.setattr(train_mod, "rollout", real)
    res = train_loop(ds.PLRNN(3, 9, seed=0), x, tau=10, config=cfg, checkpoint=ck, resume=True, progress=False)
    assert res.history["lr"] == ref.history["lr"]
    assert res.history["loss"] == ref.history["loss"]
    for k, v in ref.model.state_dict().items():
        assert torch.allclose(v, res.model.state_dict()[k])


def test_validation_is_scored_on_a_held_out_segment(lorenz_data, monkeypatch):
    import dsrecon.train as train_mod

    x = _x(lorenz_data)
    seen, real_validate, real_rollout = [], train_mod.validation_score, train_mod.rollout
    n_val = round(TrainConfig().val_fraction * len(x))
    held_out = torch.as_tensor(x[-n_val:], dtype=torch.float32)

    def validate(model, x_val, *a, **k):
        seen.append(x_val)
        return real_validate(model, x_val, *a, **k)

    def rollout(model, batch, *a, **k):   # no training batch reaches into the held-out segment
        assert not any(torch.equal(batch[0, b], held_out[0]) for b in range(batch.shape[1]))
        return real_rollout(model, batch, *a, **k)

    monkeypatch.setattr(train_mod, "validation_score", validate)
    monkeypatch.setattr(train_mod, "rollout", rollout)
    train_loop(ds.PLRNN(3, 9, seed=0), x, tau=10, config=TrainConfig(**TINY), progress=False)
    assert seen and all(torch.equal(v, held_out) for v in seen)


def test_non_finite_loss_stops_with_message_and_keeps_checkpoint(lorenz_data, tmp_path):
    x = _x(lorenz_data)
    model = ds.PLRNN(3, 9, seed=0)
    ck = tmp_path / "last.pt"
    cfg = TrainConfig(**{**TINY, "steps": 40})
    train_loop(model, x, tau=10, config=cfg, checkpoint=ck, progress=False)  # a good checkpoint exists
    good = load_torch(ck)["model"]
    bad = x.copy()
    bad[:] = 1e30  # squares overflow float32: every loss is inf
    with pytest.raises(DivergenceError, match="non-finite"):
        train_loop(model, bad, tau=10, config=cfg, checkpoint=ck, progress=False)
    kept = load_torch(ck)["model"]
    assert all(torch.isfinite(v).all() for v in kept.values())
    assert set(kept) == set(good)


def _run_cli(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_end_to_end_writes_every_file(tmp_path, capsys, lorenz_data):
    out = tmp_path / "run"
    code, stdout, err = _run_cli(
        ["fit", "lorenz", "--tau", "auto", "--steps", "30", "--t-gen", "3000", "--out", str(out), "--quiet"], capsys)
    assert code == 0, err
    for name in ["config.json", "model.pt", "metrics.json", "generated.nc", "train.log", "attractor.png",
                 "spectra.png", "loss.png", "lambda_max.png", "lambda_max.json", "checkpoints/last.pt"]:
        assert (out / name).exists(), name
    m = json.loads((out / "metrics.json").read_text())
    for key in ["D_stsp", "D_H", "PSC", "T_gen", "lambda_max", "tau", "noise_floor"]:
        assert key in m
    assert m["T_gen"] == 3000 and set(m["noise_floor"]) >= {"D_stsp", "D_H"}
    # the default gtf with a fixed alpha uses no tau, but --tau auto still estimates lambda_max (it refuses data
    # without structure) and reports tau_pred = round(ln 2 / lambda_step) ("How to train RNNs on chaotic data" Eq. 17)
    assert m["tau"] is None and m["lambda_max_per_step"] > 0
    lam = json.loads((out / "lambda_max.json").read_text())
    assert lam["tau_steps"] == round(math.log(2) / m["lambda_max_per_step"])
    blob = torch.load(out / "model.pt", weights_only=True)
    assert set(blob) == {"state_dict", "config"}
    gen = xr.open_dataset(out / "generated.nc")
    assert gen["x"].dims == ("time", "channel") and gen.sizes["time"] == 3000
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["train"]["steps"] == 30 and "torch" in cfg["versions"]
    ds.runs.load_model(out / "model.pt")  # loadable without pickled code


def test_cli_resume_continues(tmp_path, capsys, lorenz_data):
    out = tmp_path / "run"
    argv = ["fit", "lorenz", "--method", "stf", "--tau", "20", "--steps", "20", "--t-gen", "2000", "--out", str(out), "--quiet"]
    assert _run_cli(argv, capsys)[0] == 0
    cfg = json.loads((out / "config.json").read_text())
    cfg["config"]["train"]["steps"] = 30  # ask for more steps, as after an interruption
    (out / "config.json").write_text(json.dumps(cfg))
    code, _, err = _run_cli(["fit", "--resume", str(out), "--quiet"], capsys)
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["steps"] == 30


def test_cli_resume_with_set_steps_trains_longer(tmp_path, capsys, lorenz_data):
    out = tmp_path / "run"
    argv = ["fit", "lorenz", "--method", "stf", "--tau", "20", "--steps", "20", "--t-gen", "2000", "--out", str(out), "--quiet"]
    assert _run_cli(argv, capsys)[0] == 0
    code, _, err = _run_cli(["fit", "--resume", str(out), "--quiet"], capsys)
    assert code == 2 and "finished" in err and "--set train.steps=N" in err
    code, _, err = _run_cli(["fit", "--resume", str(out), "--quiet", "--set", "train.steps=30"], capsys)
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["steps"] == 30
    assert load_torch(out / "checkpoints" / "last.pt")["step"] == 30


@pytest.mark.parametrize("tau", ["0", "-3", "2.5", "abc"])
def test_cli_bad_tau(tau, capsys):
    code, _, err = _run_cli(["fit", "lorenz", "--tau", tau], capsys)
    assert code == 2
    assert "--tau must be 'auto' or a positive integer" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_unknown_dataset_lists_available(capsys):
    code, _, err = _run_cli(["fit", "lorenzz"], capsys)
    assert code == 2
    assert "unknown dataset 'lorenzz'; available: " in err
    available = err.split("available: ")[1].split(" (or")[0].split(", ")
    assert {"lorenz", "rossler", "duffing", "mackey-glass"} <= set(available)
    assert len(err.strip().splitlines()) == 1


def test_cli_help_lists_every_option(capsys):
    # every option of the fit parser, read from the parser itself (argparse never breaks an option string
    # across lines), not a hand-kept list that misses the next one
    import argparse
    import re

    with pytest.raises(SystemExit):
        cli.main(["fit", "--help"])
    text = capsys.readouterr().out
    sub = next(a for a in cli_parser.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = [o for a in sub.choices["fit"]._actions if a.help != argparse.SUPPRESS for o in a.option_strings]
    assert len(options) > 10 and "--time-budget" in options and "--resume" in options
    listed = set(re.findall(r"(?<![\w-])(--?[\w][\w-]*)", text))     # whole option strings, so --floss != --floss-k
    missing = [o for o in options if o not in listed]
    assert not missing, f"fit --help does not list {missing}"


def test_cli_bad_time_budget(capsys):
    code, _, err = _run_cli(["fit", "lorenz", "--time-budget", "3 minutes"], capsys)
    assert code == 2 and "--time-budget" in err


@pytest.mark.parametrize("argv, message", [
    (["--latent-dim", "2", "--method", "id-tf"], "smaller than the number of channels"),
    (["--model", "transformer"], "unknown model 'transformer'"),
    (["--steps", "0"], "--steps must be a positive integer"),
])
def test_cli_bad_settings_are_one_line(argv, message, capsys):
    code, _, err = _run_cli(["fit", "lorenz", *argv], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_lyap_dataset_and_run(tmp_path, capsys, lorenz_data):
    png = tmp_path / "lam.png"
    code, out, err = _run_cli(["lyap", "lorenz", "--plot", str(png)], capsys)
    assert code == 0, err
    assert "per time unit" in out and png.exists()
    run = tmp_path / "run"
    assert _run_cli(["fit", "lorenz", "--method", "stf", "--tau", "20", "--steps", "10", "--t-gen", "2000", "--out", str(run),
                     "--quiet"], capsys)[0] == 0
    code, out, err = _run_cli(["lyap", str(run), "--k", "3", "--n-steps", "200"], capsys)
    assert code == 0, err
    assert "D_KY" in out and "model lambda_max" in out
    code, _, err = _run_cli(["lyap", "nosuchdata"], capsys)
    assert code == 2 and "unknown dataset" in err


def test_fit_a_csv_with_columns_and_rescore_it(tmp_path):
    # `dsrecon fit FILE --columns a` must keep its load options in config.json, so that the report and
    # `dsrecon eval` see the same single channel (they reload the data from the run directory)
    t = np.arange(3000) * 0.05
    np.savetxt(tmp_path / "rec.csv", np.c_[t, np.sin(t), np.cos(1.3 * t)], delimiter=",", header="time,a,b",
               comments="")
    out = tmp_path / "run"
    argv = ["fit", str(tmp_path / "rec.csv"), "--columns", "a", "--method", "stf", "--tau", "5", "--steps", "3", "--t-gen", "1000",
            "--quiet", "--out", str(out), "--set", "train.seq_len=50", "--set", "train.validate_every=0"]
    assert cli.main(argv) == 0
    data_cfg = json.loads((out / "config.json").read_text())["config"]["data"]
    assert data_cfg["columns"] == ["a"] and data_cfg["name"] == str((tmp_path / "rec.csv").resolve())
    assert xr.open_dataset(out / "generated.nc").sizes["channel"] == 1
    assert cli.main(["eval", str(out), "--t-gen", "1000", "--json"]) == 0


def test_val_fraction_is_a_config_field_with_a_range(lorenz_data):
    from dsrecon.errors import ConfigError

    with pytest.raises(ConfigError, match="train.val_fraction"):
        TrainConfig(val_fraction=0.6)
    # 0: no held-out segment; validation free runs are then scored against the training data itself
    cfg = TrainConfig(**{**TINY, "val_fraction": 0.0})
    res = train_loop(ds.PLRNN(3, 9, seed=0), _x(lorenz_data, 2000), tau=10, config=cfg, progress=False)
    assert res.steps_done == TINY["steps"] and res.history["val_step"] == [10, 20]


def test_a_collapsed_validation_run_scores_inf(lorenz_data, monkeypatch):
    # issue 15: a free run that collapsed to a fixed point (while the data do not) is a failed model whatever its
    # D_stsp, so validation scores it inf and never keeps it as the best model. A PLRNN with A = 0.5 I and W = 0
    # (and no bias) contracts every state to 0 within a few steps: its validation D_stsp must be inf.
    from dsrecon.validation import validation_score

    model = ds.PLRNN(3, 9, seed=0)
    with torch.no_grad():
        model.A.fill_(0.5)
        model.W.zero_()
        model.h.zero_()
    x = torch.as_tensor(_x(lorenz_data, 3000), dtype=torch.float32)
    cfg = TrainConfig(**{**TINY, "val_len": 500})
    assert validation_score(model, x, cfg, torch.Generator().manual_seed(0)) == math.inf
