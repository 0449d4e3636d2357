"""Sweeps fold their seed and τ axes into ensemble jobs (issue 14 part 4): one τ per member in the forcing
and the training loop, and a sweep's runs trained as ensemble jobs equal the same runs trained one by one."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import dsrecon as ds
from dsrecon.config import TrainConfig
from dsrecon.ensemble import Ensemble, sampling_seeds
from dsrecon.errors import ConfigError
from dsrecon.forcing import rollout
from dsrecon.train import train_loop as fit

TINY = dict(steps=30, batch_size=4, seq_len=60, checkpoint_every=10, validate_every=10, val_len=500,
            val_runs=2, device="cpu")


@pytest.mark.parametrize("method", ["stf", "window"])
def test_equal_member_taus_are_bit_identical_to_one_tau(method, one_torch_thread):
    net = Ensemble([ds.PLRNN(3, 12, seed=s) for s in range(3)]).stacked()
    x = torch.randn(61, 3, 4, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rollout(net, x, method, tau=7), rollout(net, x, method, tau=[7, 7, 7]))


@pytest.mark.parametrize("method", ["stf", "window"])
def test_member_taus_equal_single_runs(lorenz_data, method, one_torch_thread):
    # an ensemble of 3 members with tau = 5, 20, 50 (seeds 0, 1, 2) against 3 single runs with those settings
    x = ds.data.as_array(lorenz_data)[:5000]
    cfg = TrainConfig(**TINY, method=method)
    seeds, taus = [0, 1, 2], [5, 20, 50]
    singles = [fit(ds.PLRNN(3, 12, seed=s), x, tau=t, config=TrainConfig(**{**cfg.__dict__, "seed": s}),
                   progress=False) for s, t in zip(seeds, taus)]
    ens = fit(Ensemble([ds.PLRNN(3, 12, seed=s) for s in seeds]), x, tau=taus, config=cfg, progress=False)
    for k, (one, mem) in enumerate(zip(singles, ens.members)):
        assert mem.tau == taus[k]
        a, b = np.array(one.history["loss"]), np.array(mem.history["loss"])
        # measured on this machine (1 thread, 30 steps): relative loss differences <= 8.5e-7 and parameter
        # differences <= 6e-8, one float32 ulp of a weight near 1 (the batched matmuls and the fused rollout's
        # per-member sums round differently in the last bits); tolerances ~3x those
        assert np.max(np.abs(a - b) / a) < 3e-6, k
        assert mem.history["val_d_stsp"] == pytest.approx(one.history["val_d_stsp"], rel=1e-4)
        for name, v in one.model.state_dict().items():
            torch.testing.assert_close(mem.model.state_dict()[name], v, rtol=0, atol=2e-7)


@pytest.mark.parametrize("method,tau", [("stf", [5, 20, 50]), ("gtf", 10)])
def test_lstm_members_equal_single_runs(lorenz_data, method, tau, one_torch_thread):
    # the LSTM batches too (its gates slice the last axis, its weights broadcast over the member axis)
    x = ds.data.as_array(lorenz_data)[:5000]
    cfg = TrainConfig(**{**TINY, "seq_len": 30}, method=method, gtf_alpha="auto")
    taus = tau if isinstance(tau, list) else [tau] * 3
    singles = [fit(ds.LSTM(3, 8, seed=s), x, tau=t, config=TrainConfig(**{**cfg.__dict__, "seed": s}), progress=False)
               for s, t in zip(range(3), taus)]
    ens = fit(Ensemble([ds.LSTM(3, 8, seed=s) for s in range(3)]), x, tau=tau, config=cfg, progress=False)
    for one, mem in zip(singles, ens.members):
        # measured (1 thread, 30 steps): relative loss differences <= 2.9e-7, weights <= 3.0e-8 apart; ~3x those
        np.testing.assert_allclose(mem.history["loss"], one.history["loss"], rtol=1e-6)
        if method == "gtf":
            np.testing.assert_allclose(mem.history["alpha"], one.history["alpha"], rtol=1e-6)
        for name, v in one.model.state_dict().items():
            torch.testing.assert_close(mem.model.state_dict()[name], v, rtol=0, atol=1e-7)


def test_member_taus_refused_in_one_line(lorenz_data):
    x = ds.data.as_array(lorenz_data)[:5000]
    cfg = TrainConfig(**TINY)
    two = lambda: Ensemble([ds.PLRNN(3, 12, seed=s) for s in range(2)])  # noqa: E731
    with pytest.raises(ConfigError, match="ensemble of 3 members"):
        fit(two(), x, tau=[5, 10, 20], config=cfg, progress=False)
    with pytest.raises(ConfigError, match="a single PLRNN"):
        fit(ds.PLRNN(3, 12), x, tau=[5, 10], config=cfg, progress=False)
    with pytest.raises(ConfigError, match="positive integer for every member"):
        fit(two(), x, tau=[5, 0], config=cfg, progress=False)
    with pytest.raises(ConfigError, match="one shared tau"):
        fit(two(), x, tau=[5, 10], config=TrainConfig(**TINY, method="gtf", gtf_alpha="auto"), progress=False)


def test_members_sample_with_their_own_seeds():
    # Ensemble(model, K) keeps seed..seed+K-1; given members (a sweep job over seeds x tau) sample with their own
    assert sampling_seeds(Ensemble(ds.PLRNN(3, 8, seed=5), 3), 5) == [5, 6, 7]
    assert sampling_seeds(Ensemble([ds.PLRNN(3, 8, seed=s) for s in (0, 0, 1, 1)]), 0) == [0, 0, 1, 1]


# ------------------------------------------------------------------------------ sweeps: runs folded into jobs
SWEEP = """
[sweep]
name = "jobs"
datasets = ["lorenz"]
models = ["plrnn"]
methods = ["stf"]
seeds = {seeds}
taus = [5, 20]
{extra}
[model]
latent_dim = 6
[train]
steps = 30
validate_every = 10
val_len = 500
val_runs = 2
checkpoint_every = 10
batch_size = 4
seq_len = 40
[eval]
t_gen = 1000
"""


def _sweep(tmp_path, seeds="[0, 1]", extra=""):
    p = tmp_path / f"jobs-{abs(hash((seeds, extra)))}.toml"
    p.write_text(SWEEP.format(seeds=seeds, extra=extra))
    return p


def _spec(model="plrnn", method="stf", tau="5", seed=0, steps=30, run_dir="/o/runs/x", kind="rnn", **train):
    return {"kind": kind, "dataset": "lorenz", "model": model, "method": method, "tau": tau, "seed": seed,
            "key": f"{model}{method}{tau}{seed}{steps}{sorted(train.items())}", "run_dir": run_dir, "threads": 1,
            "config": {"data": {"name": "lorenz"}, "model": {"kind": model},
                       "train": {"method": method, "tau": tau, "seed": seed, "steps": steps, **train}}}


def test_plan_groups_seeds_and_taus_and_keeps_workers_busy():
    from dsrecon.jobs import plan_jobs

    grid = [_spec(tau=t, seed=s) for t in ("5", "20") for s in (0, 1)]
    others = [_spec(model="gru"), _spec(method="bptt-clip", tau=None, seed=0), _spec(method="bptt-clip", tau=None,
              seed=1), _spec(steps=40), _spec(floss_k=1), _spec(ensemble=2), _spec(kind="baseline")]
    items = plan_jobs(grid + others, workers=1)
    jobs = [i for i in items if i["kind"] == "job"]
    # the 4 stf runs (seeds x tau) are one job, the 2 bptt-clip seeds another; the rest run alone (another
    # architecture, other steps, flossing, an --ensemble run, a baseline)
    assert sorted(len(j["members"]) for j in jobs) == [2, 4] and len(items) == 2 + 5
    assert {s["key"] for s in jobs[0]["members"]} == {s["key"] for s in grid}
    assert plan_jobs(grid, workers=1)[0]["key"] == plan_jobs(list(grid), workers=1)[0]["key"]   # same runs, same job
    # with more workers than items the largest job is halved; max_members caps a job
    assert sorted(len(i.get("members", [i])) for i in plan_jobs(grid, workers=2)) == [2, 2]
    assert sorted(len(i.get("members", [i])) for i in plan_jobs(grid, workers=4)) == [1, 1, 1, 1]
    assert sorted(len(i.get("members", [i])) for i in plan_jobs(grid, workers=1, max_members=3)) == [2, 2]


def _history(rec):
    return json.loads((Path(rec["run_dir"]) / "history.json").read_text())


def _weights(rec):
    return torch.load(Path(rec["run_dir"]) / "model.pt", weights_only=True)["state_dict"]


def test_sweep_with_ensemble_jobs_equals_the_sweep_without(tmp_path, ctrl_c_at, one_torch_thread):
    from dsrecon import sweep as S

    quiet = dict(workers=1, progress=False, echo=lambda *a: None)
    ref = S.run_sweep(S.load_sweep(_sweep(tmp_path), out=tmp_path / "off"), ensemble_jobs=False, **quiet)
    assert ref.ran == 4 and not ref.errors

    # a job interrupted mid-training (Ctrl-C at its 15th step; checkpoint at 10) leaves no finished run ...
    out = tmp_path / "on"
    with ctrl_c_at(15):
        cut = S.run_sweep(S.load_sweep(_sweep(tmp_path, "[0]"), out=out), ensemble_jobs=True, **quiet)
    assert len(cut.errors) == 2 and not list(out.glob("runs/*/result.json"))
    assert len(list(out.glob("jobs/job-*/last.pt"))) == 1
    # ... and resumes from the ensemble's checkpoint; then seeds 0-1 train only the two unfinished runs
    lines = []
    first = S.run_sweep(S.load_sweep(_sweep(tmp_path, "[0]"), out=out), ensemble_jobs=True, workers=1,
                        progress=False, echo=lines.append)
    assert first.ran == 2 and "2 of them in 1 ensemble jobs" in lines[0]
    assert "resumed from" in (Path(first.records[0]["run_dir"]) / "train.log").read_text()
    assert not list(out.glob("jobs/*"))   # the job's checkpoint is gone once its runs are written
    lines = []
    rest = S.run_sweep(S.load_sweep(_sweep(tmp_path), out=out), ensemble_jobs=True, workers=1, progress=False,
                       echo=lines.append)
    assert rest.skipped == 2 and rest.ran == 2 and "2 of them in 1 ensemble jobs" in lines[0]

    a = {r["key"]: r for r in ref.records}
    b = {r["key"]: r for r in first.records + rest.records}
    assert a.keys() == b.keys()
    for k in a:   # the same run keys, folders and files; the numbers equal up to float rounding
        assert Path(a[k]["run_dir"]).name == Path(b[k]["run_dir"]).name and b[k]["status"] == a[k]["status"]
        assert {p.name for p in Path(a[k]["run_dir"]).iterdir()} == {p.name for p in Path(b[k]["run_dir"]).iterdir()}
        ha, hb = _history(a[k]), _history(b[k])
        # measured (1 thread, 30 steps): relative loss differences <= 6.7e-7, weights <= 1.1e-8 apart; ~3x those
        np.testing.assert_allclose(hb["loss"], ha["loss"], rtol=2e-6)
        assert hb["best_step"] == ha["best_step"]
        for name, v in _weights(a[k]).items():
            torch.testing.assert_close(_weights(b[k])[name], v, rtol=0, atol=3e-8)
        # after 30 steps every model's free run has collapsed to a fixed point (status "failed": not chaotic, so
        # the scores do not amplify rounding): measured relative differences <= 4.7e-8 (D_H), 2.5e-8 (PSC),
        # 1.6e-8 (PE), 0 (D_stsp); ~3x the largest
        for m in ("D_stsp", "D_H", "PSC", "PE"):
            assert b[k]["metrics"][m] == pytest.approx(a[k]["metrics"][m], rel=1.5e-7), (k, m)


def test_ensemble_jobs_option_is_checked_in_one_line(tmp_path, capsys):
    from dsrecon import sweep as S
    from dsrecon.cli import main

    with pytest.raises(ConfigError, match=r"\[sweep\] ensemble must be true or false, got 'yes'"):
        S.load_sweep(_sweep(tmp_path, extra='ensemble = "yes"'))
    assert S.load_sweep(_sweep(tmp_path, extra="ensemble = false")).ensemble is False
    out = tmp_path / "never"
    assert main(["sweep", str(_sweep(tmp_path)), "--backend", "ray", "--ensemble-jobs", "--out", str(out)]) == 2
    assert "--ensemble-jobs applies to --backend local only" in capsys.readouterr().err
    assert not out.exists()
