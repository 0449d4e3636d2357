"""Ensembles (issue 14 part 1): K members trained in one batched pass equal K separate runs."""
import json

import numpy as np
import pytest
import torch

import dsrecon as ds
from dsrecon.config import TrainConfig
from dsrecon.ensemble import Ensemble
from dsrecon.errors import ConfigError
from dsrecon.models import free_run
from dsrecon.runs import load_torch
from dsrecon.train import Interrupted, train_loop
from hostile import assert_refused

TINY = dict(steps=30, batch_size=4, seq_len=30, checkpoint_every=10, validate_every=10, val_len=500,
            val_runs=2, device="cpu")


def _x(lorenz_data, n=5000):
    return ds.data.as_array(lorenz_data)[:n]


def _singles(cls, x, cfg, seeds, **kw):
    return [train_loop(cls(3, 12, seed=s, **kw), x, tau=10, config=TrainConfig(**{**cfg.__dict__, "seed": s}),
                progress=False) for s in seeds]


@pytest.mark.parametrize("cls,method,kw", [(ds.PLRNN, "stf", {}), (ds.ShallowPLRNN, "gtf", {"hidden_dim": 20}),
                                           (ds.PLRNN, "gtf", {}), (ds.ShallowPLRNN, "stf", {"hidden_dim": 20})],
                         ids=["plrnn-stf", "shplrnn-gtf-auto", "plrnn-gtf-auto", "shplrnn-stf"])
def test_ensemble_equals_separate_runs(lorenz_data, cls, method, kw):
    x = _x(lorenz_data)
    cfg = TrainConfig(**TINY, method=method, gtf_alpha="auto" if method == "gtf" else 0.15)
    singles = _singles(cls, x, cfg, range(3), **kw)
    ens = train_loop(Ensemble(cls(3, 12, seed=0, **kw), 3), x, tau=10, config=cfg, progress=False)
    assert len(ens.members) == 3
    for k, (one, mem) in enumerate(zip(singles, ens.members)):
        a, b = np.array(one.history["loss"]), np.array(mem.history["loss"])
        # the batched matmul rounds differently from the single one (measured: relative differences of the
        # losses <= 6e-7 over 30 steps, of the validation D_stsp <= 2e-7); chaos amplifies last bits, so the
        # early losses are compared tightly and the rest by what rounding can do in 30 steps
        assert np.max(np.abs(a[:10] - b[:10]) / a[:10]) < 1e-5, k
        assert np.max(np.abs(a - b) / a) < 1e-4, k
        np.testing.assert_allclose(mem.history["val_d_stsp"], one.history["val_d_stsp"], rtol=1e-4)
        assert mem.history["best_step"] == one.history["best_step"]
        if method == "gtf":
            np.testing.assert_allclose(mem.history["alpha"], one.history["alpha"], rtol=1e-5)
        for name, v in one.model.state_dict().items():
            torch.testing.assert_close(mem.model.state_dict()[name], v, rtol=1e-4, atol=1e-5)


def test_ensemble_members_score_like_separate_runs(lorenz_data):
    # the per-member metrics: D_stsp and D_H of a free run of each member against the data, as for the single
    # run with its seed. Short free runs from one start (1000 steps: chaos separates rounding-level differences
    # over longer runs, while 30 training steps leave the models near their start, where the runs stay close)
    x = _x(lorenz_data)
    cfg = TrainConfig(**TINY)
    singles = _singles(ds.PLRNN, x, cfg, range(3))
    ens = train_loop(Ensemble(ds.PLRNN(3, 12, seed=0), 3), x, tau=10, config=cfg, progress=False)
    z0 = torch.as_tensor(x[:1], dtype=torch.float32)
    for one, mem in zip(singles, ens.members):
        with torch.no_grad():
            g1 = free_run(one.model, one.model.force(z0), 1000)[:, 0].numpy()
            g2 = free_run(mem.model, mem.model.force(z0), 1000)[:, 0].numpy()
        for score in (ds.d_stsp, ds.hellinger_distance):
            a, b = score(x, g1).value, score(x, g2).value
            assert abs(a - b) <= 1e-3 * max(1.0, abs(a)), (score.__name__, a, b)


def test_one_member_diverging_leaves_the_others_alone(lorenz_data, monkeypatch):
    import dsrecon.train as train_mod

    x = _x(lorenz_data)
    cfg = TrainConfig(**{**TINY, "validate_every": 0})
    ref = train_loop(Ensemble(ds.PLRNN(3, 12, seed=0), 2), x, tau=10, config=cfg, progress=False)
    real, calls = train_mod.rollout, {"n": 0}

    def nan_for_member_1_at_step_12(*a, **k):
        calls["n"] += 1
        out = real(*a, **k)
        if calls["n"] == 13:
            out = out.clone()
            out[:, 1] = float("nan")
        return out

    monkeypatch.setattr(train_mod, "rollout", nan_for_member_1_at_step_12)
    res = train_loop(Ensemble(ds.PLRNN(3, 12, seed=0), 2), x, tau=10, config=cfg, progress=False)
    h0, h1 = res.members[0].history, res.members[1].history
    assert h0["loss"] == ref.members[0].history["loss"]          # member 0 never noticed
    assert h0["lr"] == ref.members[0].history["lr"]
    # step 12 (history index 12: its lr was set before the loss) was skipped by member 1 alone; from then on
    # only member 1's learning rate is halved
    assert h1["lr"][12] == ref.members[1].history["lr"][12]
    assert h1["lr"][13] == pytest.approx(0.5 * ref.members[1].history["lr"][13])
    assert np.isnan(h1["loss"][12]) and np.isfinite(h1["loss"][13:]).all()   # recorded, skipped, restored


def test_interrupted_ensemble_resumes_bit_identically(lorenz_data, tmp_path, ctrl_c_at):
    x = _x(lorenz_data)
    cfg = TrainConfig(**{**TINY, "steps": 20, "method": "gtf", "gtf_alpha": "auto"})
    ref = train_loop(Ensemble(ds.ShallowPLRNN(3, 12, hidden_dim=20, seed=0), 3), x, tau=10, config=cfg, progress=False)
    ck = tmp_path / "last.pt"
    # at the 16th rollout: the first call is the free rollout of the first adaptive alpha
    with ctrl_c_at(16), pytest.raises(Interrupted, match="checkpoint of step 10"):
        train_loop(Ensemble(ds.ShallowPLRNN(3, 12, hidden_dim=20, seed=0), 3), x, tau=10, config=cfg, checkpoint=ck,
            progress=False)
    assert load_torch(ck)["step"] == 10 and len(load_torch(ck)["members"]) == 3
    res = train_loop(Ensemble(ds.ShallowPLRNN(3, 12, hidden_dim=20, seed=0), 3), x, tau=10, config=cfg, checkpoint=ck,
              resume=True, progress=False)
    assert res.history["loss"] == ref.history["loss"]
    assert res.history["val_d_stsp"] == ref.history["val_d_stsp"]
    assert res.history["alpha"] == ref.history["alpha"]
    for a, b in zip(ref.members, res.members):
        for name, v in a.model.state_dict().items():
            assert torch.equal(v, b.model.state_dict()[name])
    # an ensemble checkpoint is not a single run's, nor one of another size
    with pytest.raises(ds.errors.DataError, match="cannot be resumed"):
        train_loop(Ensemble(ds.ShallowPLRNN(3, 12, hidden_dim=20, seed=0), 2), x, tau=10, config=cfg, checkpoint=ck,
            resume=True, progress=False)
    with pytest.raises(ds.errors.DataError, match="cannot be resumed"):
        train_loop(ds.ShallowPLRNN(3, 12, hidden_dim=20, seed=0), x, tau=10, config=cfg, checkpoint=ck, resume=True,
            progress=False)


def test_ensemble_refuses_what_it_cannot_batch():
    with pytest.raises(ConfigError, match="ensembles support PLRNN, ShallowPLRNN, RNN, LSTM"):
        Ensemble(ds.GRU(3, seed=0), 2)
    with pytest.raises(ConfigError, match="autonomous"):
        Ensemble(ds.PLRNN(3, 10, input_dim=1), 2)
    with pytest.raises(ConfigError, match="positive integer"):
        Ensemble(ds.PLRNN(3, 10), 0)
    with pytest.raises(ConfigError, match="share the architecture"):
        Ensemble([ds.PLRNN(3, 10, seed=0), ds.PLRNN(3, 12, seed=1)])
    with pytest.raises(ConfigError, match="flossing"):
        train_loop(Ensemble(ds.PLRNN(3, 10), 2), np.zeros((3000, 3)), tau=10, config=TrainConfig(floss_k=1))


@pytest.mark.parametrize("argv,match", [
    (["--ensemble", "0"], ["--ensemble", "auto or a positive integer <= 4096"]),
    (["--ensemble", "-3"], ["--ensemble", "auto or a positive integer <= 4096"]),
    (["--ensemble", "5000"], ["--ensemble", "auto or a positive integer <= 4096", "5000"]),
    (["--ensemble", "4000", "--set", "train.batch_size=2000"], ["--ensemble 4000 needs about", "GiB", "or fewer"]),
    (["--ensemble", "2", "--model", "gru"], ["ensembles support PLRNN, ShallowPLRNN, RNN, LSTM"]),
], ids=["zero", "negative", "over-the-cap", "more-than-memory", "gru"])
def test_bad_ensemble_refused(argv, match, tmp_path, capsys):
    assert_refused(["fit", "lorenz", "--steps", "5", "--out", tmp_path / "run", *argv], capsys,
                   watch=[tmp_path], match=match)


def test_cli_ensemble_keeps_the_best_member_and_reports_all(tmp_path, capsys):
    from dsrecon import cli

    out = tmp_path / "run"
    code = cli.main(["fit", "lorenz", "--ensemble", "2", "--steps", "20", "--method", "stf", "--tau", "10", "--t-gen", "1000",
                     "--set", "train.validate_every=10", "--set", "train.val_len=500", "--set", "train.seq_len=30",
                     "--set", "train.batch_size=4", "--out", str(out), "--quiet"])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert [r["seed"] for r in m["members"]] == [0, 1]
    kept = m["ensemble"]["kept_member"]
    assert m["members"][kept]["kept"] and m["members"][kept]["D_stsp"] == m["D_stsp"]
    vals = [float(r["val_d_stsp"]) for r in m["members"]]   # JSON keeps inf (a collapsed member) as "inf"
    assert vals[kept] == min(vals)
    assert set(m["ensemble"]["median_mad"]) >= {"D_stsp", "D_H", "PSC"}
    saved = load_torch(out / "model.pt")
    assert saved["config"]["hparams"]["seed"] == kept
    assert "median ± MAD over members" in (out / "train.log").read_text()
    # the whole ensemble trains on from its checkpoint
    assert cli.main(["fit", "--resume", str(out), "--set", "train.steps=30", "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps"] == 30 and len(m["members"]) == 2
    assert len(load_torch(out / "checkpoints" / "last.pt")["members"]) == 2


@pytest.mark.parametrize("method", ["id-tf", "window", "bptt-clip"])
@pytest.mark.parametrize("cls", [ds.PLRNN, ds.RNN], ids=["plrnn", "rnn"])
def test_other_methods_and_the_rnn_match_separate_runs(lorenz_data, method, cls):
    # every method runs batched (bptt-clip clips each member's gradient norm on its own); measured relative
    # loss differences <= 4e-7 over 6 steps
    x = _x(lorenz_data, 4000)
    cfg = TrainConfig(steps=6, batch_size=4, seq_len=30, validate_every=3, val_len=200, val_runs=2, method=method,
                      device="cpu")
    lo = method != "id-tf"
    singles = [train_loop(cls(3, 8, seed=s, learn_observation=lo), x, tau=5, progress=False,
                   config=TrainConfig(**{**cfg.__dict__, "seed": s})) for s in range(2)]
    ens = train_loop(Ensemble(cls(3, 8, seed=0, learn_observation=lo), 2), x, tau=5, config=cfg, progress=False)
    for one, mem in zip(singles, ens.members):
        np.testing.assert_allclose(mem.history["loss"], one.history["loss"], rtol=1e-5)
