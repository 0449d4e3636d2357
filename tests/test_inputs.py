"""Driven models on data with an external input s (the forced Duffing oscillator with forcing="input"):
rollouts, training, generation and evaluation read s_t in the step z_t -> z_{t+1}."""
import json

import numpy as np
import pytest
import torch

import dsrecon as ds
from dsrecon import cli
from dsrecon import data as data_mod
from dsrecon import experiment
from dsrecon import inputs as inputs_mod
from dsrecon import runs
from dsrecon.config import DataConfig, EvalConfig, ModelConfig, RunConfig, TrainConfig
from dsrecon.errors import DataError, DsreconError
from dsrecon.forcing import (free_rollout, generalized_teacher_forcing, gtf_alpha_from_jacobians,
                             gtf_alpha_from_lyapunov, rollout, sparse_teacher_forcing)
from dsrecon.models import free_run
from dsrecon.train import train_loop as train_fit

SMALL = dict(n_train=3000, n_test=1500, transient=500)
TINY = dict(steps=20, batch_size=4, seq_len=30, checkpoint_every=10, validate_every=10, val_len=300,
            val_runs=2, device="cpu")


@pytest.fixture(scope="module")
def duffing_input(_private_cache):
    return ds.load("duffing", forcing="input", **SMALL)


def _linear_plrnn(M=4, N=2, K=2, seed=0):
    """A PLRNN with W = 0 and h = 0: z_{t+1} = diag(A) z_t + C s_t, linear in z and s."""
    m = ds.PLRNN(N, M, input_dim=K, seed=seed).double()
    with torch.no_grad():
        m.W.zero_()
        m.h.zero_()
        m.A.copy_(torch.linspace(0.5, 0.95, M, dtype=torch.float64))
    return m


def _closed_form(A, C, z0, s):
    """z_n = A^n z_0 + sum_{k<n} A^{n-1-k} C s_k for diagonal A (vector), z0 (B, M), s (n, B, K) -> (n, B, M)."""
    n = s.shape[0]
    out = []
    for t in range(1, n + 1):
        z = A**t * z0
        for k in range(t):
            z = z + A ** (t - 1 - k) * (s[k] @ C.T)
        out.append(z)
    return torch.stack(out)


# -- (1) the linear oracle: rollouts and generation with inputs equal the closed-form recursion ---------
def test_linear_model_generate_and_free_rollout_equal_closed_form():
    m = _linear_plrnn()
    g = torch.Generator().manual_seed(1)
    B, T = 3, 12
    s = torch.randn(T, B, 2, generator=g, dtype=torch.float64)
    z0 = torch.randn(B, 4, generator=g, dtype=torch.float64)
    want = _closed_form(m.A.detach(), m.C.detach(), z0, s)
    got = free_run(m, z0, T, inputs=s)                                   # (T, B, N)
    with torch.no_grad():
        torch.testing.assert_close(got, m.observe(want))
    # free rollout from force(x_0): z_0 is the forced state, then the same recursion with s_0, s_1, ...
    x = torch.randn(T + 1, B, 2, generator=g, dtype=torch.float64)
    with torch.no_grad():
        zf = m.force(x[0], pinv=m.observation_pinv())
        pred = free_rollout(m, x, inputs=torch.cat([s, s[-1:]]))
        torch.testing.assert_close(pred, m.observe(_closed_form(m.A.detach(), m.C.detach(), zf, s)))


def test_inputs_change_the_rollout_and_none_reproduces_autonomous():
    m = ds.PLRNN(2, 6, seed=0)
    x = torch.randn(21, 3, 2, generator=torch.Generator().manual_seed(0))
    a = sparse_teacher_forcing(m, x, 5)
    b = sparse_teacher_forcing(m, x, 5, inputs=None)
    assert torch.equal(a, b)
    md = ds.PLRNN(2, 6, input_dim=2, seed=0)
    s = torch.randn(21, 3, 2)
    assert not torch.allclose(sparse_teacher_forcing(md, x, 5, inputs=s), sparse_teacher_forcing(md, x, 5, inputs=-s))


# -- (2) sparse forcing and GTF with inputs give the loss of a hand-written loop -----------------------
@pytest.mark.parametrize("kind", ["plrnn", "rnn", "lstm"])
def test_sparse_forcing_with_inputs_equals_hand_loop(kind):
    m = ds.MODELS[kind](2, 8, input_dim=2, seed=0)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(16, 4, 2, generator=g)
    s = torch.randn(16, 4, 2, generator=g)
    tau = 4
    loss = torch.mean((rollout(m, x, "stf", tau=tau, inputs=s) - x[1:]) ** 2)
    P = m.observation_pinv().detach() if hasattr(m, "observation_pinv") else None
    kw = {} if P is None else {"pinv": P}
    z = m.force(x[0], **kw).detach()
    preds = []
    for t in range(1, 16):
        z = m.step(z, s[t - 1])
        preds.append(m.observe(z))
        if t % tau == 0:
            z = m.force(x[t], z.detach(), **kw).detach()
    want = torch.mean((torch.stack(preds) - x[1:]) ** 2)
    torch.testing.assert_close(loss, want)


def test_gtf_with_inputs_equals_hand_loop():
    m = ds.PLRNN(2, 8, input_dim=2, seed=0)
    g = torch.Generator().manual_seed(3)
    x, s, a = torch.randn(12, 3, 2, generator=g), torch.randn(12, 3, 2, generator=g), 0.3
    got = generalized_teacher_forcing(m, x, a, inputs=s)
    P = m.observation_pinv().detach()
    z = m.force(x[0], pinv=P)
    preds = []
    for t in range(1, 12):
        z = m.step(z, s[t - 1])
        preds.append(m.observe(z))
        z = (1 - a) * z + a * (z.detach() + (x[t] - m.observe(z.detach())) @ P.T)
    torch.testing.assert_close(got, torch.stack(preds))


def test_adaptive_alpha_reads_inputs():
    m = ds.RNN(2, 8, input_dim=2, g=1.5, seed=0)
    x, s = torch.randn(31, 4, 2), torch.randn(31, 4, 2)
    states: list = []
    free_rollout(m, x, inputs=s, states_out=states)
    st = torch.stack(states)
    a1 = gtf_alpha_from_lyapunov(m, st, inputs=s, n_steps=10)
    a2 = gtf_alpha_from_jacobians(m, st, inputs=s)
    assert 0.0 <= a1 <= 1.0 and 0.0 <= a2 <= 1.0
    with pytest.raises(DsreconError):   # a driven model's Jacobian needs s
        gtf_alpha_from_jacobians(m, st)


# -- periodic continuation of the forcing ------------------------------------------------------------
def test_periodic_forcing_is_continued_exactly(duffing_input):
    s = duffing_input["s"].values
    half = len(s) // 2
    ext = inputs_mod.continue_periodic(s[:half], len(s))
    np.testing.assert_allclose(ext, s, atol=1e-8)
    noisy = s[:half] + 1e-3 * np.random.default_rng(0).standard_normal(s[:half].shape)
    assert inputs_mod.continue_periodic(noisy, len(s)) is None


def test_non_periodic_inputs_shorter_than_t_gen_give_one_line_error(duffing_input):
    _, test = data_mod.train_test_split(duffing_input)
    test = test.copy()
    test["s"] = test["s"] + 0.01 * np.random.default_rng(0).standard_normal(test["s"].shape)
    m = ds.PLRNN(2, 8, input_dim=2, seed=0)
    with pytest.raises(DataError, match=r"T_gen = 5000 steps is longer than the 1500 steps") as err:
        ds.generate(m, 5000, like=test)
    assert "\n" not in str(err.value) and "--t-gen 1500" in str(err.value)
    assert ds.generate(m, 1500, like=test).sizes["time"] == 1500   # within the inputs: fine


# -- (3) a tiny fit end to end through fit_run; generate uses the inputs ------------------------------
def test_fit_run_duffing_input_end_to_end(duffing_input, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data_mod, "load_for", lambda dc: ds.load("duffing", forcing="input", **SMALL))
    cfg = RunConfig(data=DataConfig(name="duffing", forcing="input"), model=ModelConfig(kind="plrnn", latent_dim=12),
                    train=TrainConfig(**{**TINY, "method": "stf", "steps": 200, "validate_every": 100, "checkpoint_every": 100,
                                         "lr": 3e-3}),
                    eval=EvalConfig(t_gen=3000))
    run = experiment.fit_run(cfg, out=tmp_path / "run", quiet=True)
    assert run.model.input_dim == 2 and run.tau is not None
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert np.isfinite(metrics["D_stsp"]) and np.isfinite(metrics["PE"]) and metrics["T_gen"] == 3000
    blob = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert blob["config"]["hparams"]["input_dim"] == 2
    model = runs.load_model(tmp_path / "run" / "model.pt")
    assert model.input_dim == 2
    gen = data_mod.read_netcdf(tmp_path / "run" / "generated.nc")
    assert "s" in gen and gen.sizes["time"] == 3000           # 3000 > 1500 test inputs: the phase was continued
    # generate reads the inputs: the same model and start with other inputs gives another run
    _, test = data_mod.train_test_split(duffing_input)
    a = ds.generate(model, 500, like=test)["x"].values
    b = ds.generate(model, 500, like=test)["x"].values
    shifted = test.copy()
    shifted["s"] = test["s"].roll(time=7, roll_coords=False)
    c = ds.generate(model, 500, like=shifted)["x"].values
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-3
    # dsrecon eval RUN_DIR reloads the driven model and re-scores it
    assert cli.main(["eval", str(tmp_path / "run"), "--t-gen", "2000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.isfinite(out["D_stsp"]) and out["T_gen"] == 2000
    # dsrecon lyap RUN_DIR drives the model's spectrum with the (continued) forcing
    monkeypatch.chdir(tmp_path)
    assert cli.main(["lyap", str(tmp_path / "run"), "--n-steps", "200", "--k", "2"]) == 0
    assert "model lambda_max" in capsys.readouterr().out


def test_evaluate_with_many_initial_conditions_and_lyapunov(duffing_input):
    m = ds.PLRNN(2, 8, input_dim=2, seed=0)
    metrics, gen = ds.evaluate(m, duffing_input, EvalConfig(t_gen=2000), n_init=3, lyapunov_k=2)
    assert metrics["initial_conditions"]["D_stsp"]["n_init"] == 3
    assert np.isfinite(metrics["model_lambda_max"]) and "s" in gen


# -- (4) bad input: inputs and model disagree -> one-line DsreconError --------------------------------
def test_data_with_inputs_and_model_without(duffing_input):
    with pytest.raises(DataError, match="input_dim=0; build it with input_dim=2") as err:
        ds.fit(ds.PLRNN(2, 8, seed=0), duffing_input, tau=5, config=TrainConfig(**TINY), progress=False)
    assert "\n" not in str(err.value)
    _, test = data_mod.train_test_split(duffing_input)
    with pytest.raises(DataError):
        ds.generate(ds.PLRNN(2, 8, seed=0), 100, like=test)


def test_model_with_inputs_and_data_without(lorenz_data):
    small = lorenz_data.isel(time=slice(0, 4000))
    small.attrs = {**lorenz_data.attrs, "n_train": 3000}
    m = ds.PLRNN(3, 8, input_dim=2, seed=0)
    with pytest.raises(DataError, match="carry no input variable s") as err:
        ds.fit(m, small, tau=5, config=TrainConfig(**TINY), progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(DsreconError, match="input_dim"):
        train_fit(m, data_mod.as_array(small)[:3000], tau=5, config=TrainConfig(**TINY), progress=False)
    with pytest.raises(DsreconError, match="input_dim=0"):
        train_fit(ds.PLRNN(3, 8, seed=0), data_mod.as_array(small)[:3000], inputs=np.zeros((3000, 2)), tau=5,
                     config=TrainConfig(**TINY), progress=False)


def test_phase_observed_duffing_stays_autonomous(_private_cache):
    d = ds.load("duffing", **SMALL)       # s is a copy of the observed cos/sin channels
    assert "s" in d and inputs_mod.external_inputs(d) is None
    inputs_mod.model_inputs(ds.PLRNN(4, 8, seed=0), d)   # no error: an autonomous model fits it


def test_tau_auto_of_a_driven_dataset_estimates_lambda_on_the_state_with_its_forcing():
    """Duffing with the forcing as input observes (x, v) and drives the model with (cos ωt, sin ωt); the
    phase-observed variant observes all four. Both hold the same state, so --tau auto must find the same
    λ_max (on x, v alone Rosenstein gives ≈ 0.67 per time unit, five times the QR value 0.128 of the card)."""
    from dsrecon import data as D
    from dsrecon.experiment import choose_tau

    lams = []
    for forcing in ("input", "phase"):
        train, _ = D.train_test_split(D.load("duffing", forcing=forcing))
        tau, fi = choose_tau("auto", train, "stf")
        lams.append(fi.lam.value)
    assert lams[0] == pytest.approx(lams[1], rel=1e-9)
    assert 0.05 < lams[0] < 0.2
