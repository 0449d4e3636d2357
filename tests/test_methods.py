"""Training methods (dsrecon.forcing.rollout) against hand-computed rollouts, and the training engine's
method-specific behaviour (clipping, adaptive GTF α, early stop, explosion guard, flossing schedule)."""
import numpy as np
import pytest
import torch

import dsrecon as ds
from dsrecon import cli, forcing
from dsrecon.config import ModelConfig, RunConfig, TrainConfig
from dsrecon.errors import ConfigError, DivergenceError
from dsrecon.experiment import build_model
from dsrecon.models import MODELS, PLRNN
from dsrecon.train import train_loop

TINY = dict(steps=20, batch_size=4, seq_len=30, checkpoint_every=10, validate_every=10, val_len=300,
            val_runs=2, device="cpu")


def _linear_plrnn(a=0.8, h=0.1):
    """W = 0, B = I (M = N = 2): z -> a z + h, force(x) = x. Every method can be rolled out by hand."""
    m = PLRNN(2, 2, learn_observation=False, seed=0).double()
    with torch.no_grad():
        m.W.zero_()
        m.A.fill_(a)
        m.h.fill_(h)
    return m


def _x(T=13, B=3, seed=0):
    return torch.randn(T, B, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_gtf_is_the_convex_mixture_rolled_out_by_hand():
    # Hess et al. 2023 Eq. 5-7: z~_t = (1 - alpha) z_t + alpha x_t (B = I, M = N), z_{t+1} = a z~_t + h
    m, x, alpha = _linear_plrnn(), _x(), 0.3
    pred = forcing.generalized_teacher_forcing(m, x, alpha)
    z, expected = x[0], []
    for t in range(1, x.shape[0]):
        z = 0.8 * z + 0.1
        expected.append(z)
        z = (1 - alpha) * z + alpha * x[t]
    assert torch.allclose(pred, torch.stack(expected), atol=1e-12)


def test_gtf_pulls_only_the_observed_subspace():
    # M > N: z~ = z + alpha B+(x - B z): the observed part moves towards the data, the null space of B keeps the
    # model's own value (generalized_teacher_forcing docstring)
    m, x, alpha = PLRNN(2, 5, seed=4).double(), _x(T=2, B=4, seed=4), 0.3
    z1 = m.step(m.force(x[0]))
    P = m.observation_pinv()
    expected = z1 + alpha * (x[1] - m.observe(z1)) @ P.T
    pred = forcing.generalized_teacher_forcing(m, torch.stack([x[0], x[1], x[1]]), alpha)
    assert torch.allclose(pred[1], m.observe(m.step(expected)))
    null = torch.eye(5, dtype=torch.float64) - P @ m.B    # projector onto the null space of B
    assert torch.allclose(expected @ null.T, z1 @ null.T)


def test_gtf_limits_are_teacher_forcing_and_free_bptt():
    # alpha = 1 is teacher forcing every step with the model's unobserved latents kept; alpha = 0 free BPTT
    m, x = PLRNN(2, 5, seed=1, keep_unobserved=True).double(), _x(seed=1)
    assert torch.allclose(forcing.generalized_teacher_forcing(m, x, 1.0), forcing.sparse_teacher_forcing(m, x, 1))
    assert torch.allclose(forcing.generalized_teacher_forcing(m, x, 0.0), forcing.free_rollout(m, x))


def test_gtf_damps_the_gradient_by_one_minus_alpha_per_step():
    # d z_T / d z_1 = ((1 - alpha) a)^(T-1) for the scalar linear map (the mechanism of GTF, Hess et al. §3)
    m, alpha, T = _linear_plrnn(a=1.5), 0.4, 9
    x = _x(T=T + 1, B=1)
    z1 = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    z = z1
    for t in range(1, T):
        z = (1 - alpha) * z + alpha * x[t]
        z = m.step(z)
    z[0, 0].backward()
    assert z1.grad[0, 0].item() == pytest.approx(((1 - alpha) * 1.5) ** (T - 1))


def test_adaptive_alpha_from_jacobian_norms():
    # J = a I everywhere: G = a, alpha* = 1 - 1/a for a > 1 and 0 for a <= 1
    z = torch.randn(50, 2, dtype=torch.float64)
    assert forcing.gtf_alpha_from_jacobians(_linear_plrnn(a=2.5), z) == pytest.approx(1 - 1 / 2.5)
    assert forcing.gtf_alpha_from_jacobians(_linear_plrnn(a=0.7), z) == 0.0


def test_lyapunov_alpha_is_one_minus_exp_minus_lambda_1():
    # J = a I: lambda_1 = log a per step, so alpha* = 1 - 1/a exactly (a > 1), 0 for a contracting map
    z = torch.randn(20, 2, dtype=torch.float64)
    assert forcing.gtf_alpha_from_lyapunov(_linear_plrnn(a=1.25, h=0.0), z) == pytest.approx(1 - 1 / 1.25)
    assert forcing.gtf_alpha_from_lyapunov(_linear_plrnn(a=0.7), z) == 0.0


def test_window_resets_the_state_to_zero_every_tau_steps():
    # App. A.6.4: every window starts from z = 0, so predictions 1, tau+1, 2 tau+1 are all observe(step(0))
    m, x = PLRNN(2, 6, seed=2).double(), _x(T=13)
    with torch.no_grad():
        m.h.fill_(0.5)  # the default h = 0 makes z = 0 a fixed point
    pred = forcing.windowed_rollout(m, x, 4)
    first = m.observe(m.step(torch.zeros(3, 6, dtype=torch.float64)))
    for t in (0, 4, 8):
        assert torch.allclose(pred[t], first)
    assert not torch.allclose(pred[1], first)


def test_free_rollout_is_forced_only_at_the_start():
    m, x = PLRNN(2, 6, seed=3).double(), _x()
    pred = forcing.free_rollout(m, x)
    z = m.force(x[0])
    for t in range(x.shape[0] - 1):
        z = m.step(z)
        assert torch.allclose(pred[t], m.observe(z))


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("method", ["stf", "gtf", "id-tf", "bptt-clip", "window"])
def test_every_model_trains_with_every_method(lorenz_data, kind, method):
    x = ds.data.as_array(lorenz_data)[:3000]
    model = build_model(ModelConfig(kind=kind, latent_dim=8), 3, seed=0, method=method)
    res = train_loop(model, x, tau=10, config=TrainConfig(**{**TINY, "steps": 6, "validate_every": 3, "method": method}),
              progress=False)
    assert res.steps_done == 6 and np.all(np.isfinite(res.history["loss"]))
    if method == "gtf":
        assert 0.0 <= res.history["alpha"][-1] <= 1.0


def test_bptt_clip_clips_the_gradient_norm(lorenz_data, monkeypatch):
    seen = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        params = list(params)
        out = real(params, max_norm, *a, **k)
        seen.append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in params))))
        return out

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    cfg = TrainConfig(**{**TINY, "steps": 5, "validate_every": 0, "method": "bptt-clip", "clip_norm": 1.0})
    train_loop(PLRNN(3, 10, seed=0), ds.data.as_array(lorenz_data)[:3000], config=cfg, progress=False)
    assert len(seen) == 5 and max(seen) <= 1.0 + 1e-5


def test_resume_reproduces_an_adaptive_gtf_run(lorenz_data, tmp_path, ctrl_c_at):
    from dsrecon.train import Interrupted

    x = ds.data.as_array(lorenz_data)[:3000]
    cfg = TrainConfig(**{**TINY, "method": "gtf", "gtf_alpha": "auto"})
    ref = train_loop(PLRNN(3, 9, seed=0), x, config=cfg, progress=False)
    ck = tmp_path / "last.pt"
    with ctrl_c_at(15), pytest.raises(Interrupted):
        train_loop(PLRNN(3, 9, seed=0), x, config=cfg, checkpoint=ck, progress=False)
    res = train_loop(PLRNN(3, 9, seed=0), x, config=cfg, checkpoint=ck, resume=True, progress=False)
    assert res.history["loss"] == ref.history["loss"] and res.history["alpha"] == ref.history["alpha"]


def test_early_stop(lorenz_data, monkeypatch):
    import dsrecon.train as train_mod

    monkeypatch.setattr(train_mod, "validation_score", lambda *a, **k: 1.0)  # never improves after the first
    cfg = TrainConfig(**{**TINY, "steps": 100, "validate_every": 5, "early_stop": 2})
    res = train_loop(PLRNN(3, 9, seed=0), ds.data.as_array(lorenz_data)[:3000], tau=10, config=cfg, progress=False)
    assert res.stopped == "early stop" and res.steps_done == 15


def test_exploding_loss_counts_as_divergence(lorenz_data):
    cfg = TrainConfig(**{**TINY, "explode_loss": 1e-9, "max_recoveries": 1})
    with pytest.raises(DivergenceError, match="exploding"):
        train_loop(PLRNN(3, 9, seed=0), ds.data.as_array(lorenz_data)[:3000], tau=10, config=cfg, progress=False)


def test_preflossing_and_episodes_are_recorded(lorenz_data):
    cfg = TrainConfig(**{**TINY, "floss_k": 2, "prefloss_epochs": 3, "floss_every": 8, "floss_epochs": 2,
                         "floss_steps": 20, "validate_every": 0})
    res = train_loop(PLRNN(3, 9, seed=0), ds.data.as_array(lorenz_data)[:3000], tau=10, config=cfg, progress=False)
    assert res.history["floss_step"] == [0, 8, 16]
    assert all(len(lam) == 2 for lam in res.history["floss_lambda"])


def test_weighted_flossing_term_changes_the_training(lorenz_data):
    x = ds.data.as_array(lorenz_data)[:3000]
    base = dict(TINY, steps=4, validate_every=0)
    a = train_loop(PLRNN(3, 9, seed=0), x, tau=10, config=TrainConfig(**base), progress=False)
    b = train_loop(PLRNN(3, 9, seed=0), x, tau=10, config=TrainConfig(**base, floss_k=1, floss_weight=1.0, floss_steps=10),
            progress=False)
    assert b.history["loss"][0] > a.history["loss"][0]   # the same first batch plus a positive flossing term


# ------------------------------------------------------------------------------------------ bad input
def test_config_errors_name_the_bad_value():
    with pytest.raises(ConfigError, match="unknown method 'sgd'; available: stf, gtf"):
        TrainConfig(method="sgd")
    with pytest.raises(ConfigError, match="unknown model 'transformer'"):
        ModelConfig(kind="transformer")
    with pytest.raises(ConfigError, match="gtf_alpha"):
        TrainConfig(gtf_alpha=1.5)
    with pytest.raises(ConfigError, match="floss_k = 0"):
        TrainConfig(prefloss_epochs=10)
    with pytest.raises(ConfigError, match="does not apply to --model lstm"):
        build_model(ModelConfig(kind="lstm", clipped=True), 3)
    with pytest.raises(ConfigError, match="--floss 20 exceeds the model's state dimension 10"):
        train_loop(PLRNN(3, 10), np.zeros((500, 3)), tau=5, config=TrainConfig(floss_k=20))
    with pytest.raises(ConfigError, match="id-tf"):
        train_loop(PLRNN(3, 10), np.zeros((500, 3)), tau=5, config=TrainConfig(method="id-tf"))


def test_set_overrides():
    cfg = RunConfig().override(["train.lr=3e-4", "model.kind=lstm", "train.gtf_alpha=auto"])
    assert cfg.train.lr == 3e-4 and cfg.model.kind == "lstm" and cfg.train.gtf_alpha == "auto"
    with pytest.raises(ConfigError, match="unknown key 'lrr' in \\[train\\]"):
        RunConfig().override(["train.lrr=1"])
    with pytest.raises(ConfigError, match="section.key=value"):
        RunConfig().override(["lr=1"])


@pytest.mark.parametrize("argv, message", [
    (["fit", "lorenz", "--method", "sgd"], "unknown method 'sgd'"),
    (["fit", "lorenz", "--model", "transformer"], "unknown model 'transformer'"),
    (["fit", "lorenz", "--floss", "500"], "--floss 500 exceeds"),
    (["fit", "lorenz", "--gtf-alpha", "x"], "gtf_alpha must be one of auto, auto-norm or a number in [0, 1]"),
    (["fit", "lorenz", "--set", "train.nope=1"], "unknown key 'nope'"),
])
def test_cli_one_line_errors(argv, message, capsys, tmp_path):
    assert cli.main(argv + ["--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_tau_auto_on_a_periodic_series_is_not_lambda_max(lorenz_data):
    # a sine has lambda_max = 0, so tau_pred = ln2/lambda is meaningless: --tau auto must not use it, and falls
    # back to a decorrelation time (dsrecon.lyapunov.forcing_interval, issue 15 part 1: refuse only no structure)
    from dsrecon.experiment import choose_tau

    periodic = lorenz_data.isel(time=slice(0, 20_000)).copy(deep=True)
    t = np.arange(periodic.sizes["time"]) * 0.01
    periodic["x"].values[:] = np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t), np.sin(4 * np.pi * t)], 1)
    tau, fi = choose_tau("auto", periodic)
    assert not fi.lam.chaotic and fi.source in ("mutual_information", "divergence_saturation")
    assert tau == fi.tau_steps >= 1 and "no clear exponential divergence" in fi.reason
    # a fixed alpha needs no tau, but --tau auto still estimates it (reported; structureless data are refused)
    tau, fi = choose_tau("auto", periodic, method="gtf", gtf_alpha=0.1)
    assert tau is None and fi is not None and fi.tau_steps >= 1
    assert choose_tau(None, periodic, method="gtf") == (None, None)


def test_auto_alpha_has_the_data_floor(lorenz_data):
    # a contracting model has lambda_1 < 0, so alpha* = 0; the floor keeps (1 - alpha)^tau = 5 %
    x = ds.data.as_array(lorenz_data)[:3000]
    res = train_loop(_linear_plrnn(a=0.5).float(), x[:, :2], tau=20,
              config=TrainConfig(**{**TINY, "steps": 3, "validate_every": 0, "method": "gtf", "gtf_alpha": "auto"}),
              progress=False)
    assert res.history["alpha"][-1] == pytest.approx(1 - 0.05 ** (1 / 20))


def test_validation_of_a_ten_dimensional_series_uses_gaussian_mixtures(monkeypatch):
    # 30 bins per dimension in 10-d would need 30^10 cells (the Mackey-Glass embedding crashed this way);
    # validation uses d_stsp(method="auto"), i.e. Gaussian mixtures from 6 dimensions on: every validation
    # score must come from the GMM variant (Score.variant["method"]), not only be finite
    import dsrecon.validation as validation_mod

    real, variants = validation_mod.d_stsp, []

    def spy(*a, **k):
        score = real(*a, **k)
        variants.append(score.variant.get("method"))
        return score

    monkeypatch.setattr(validation_mod, "d_stsp", spy)
    # a 4-step model's free runs collapse, which validation scores inf before any D_stsp (tested in
    # test_train_cli.py); here every run counts as alive, so that the D_stsp variant is what is tested
    alive = type("Alive", (), {"verdict": "irregular"})()
    monkeypatch.setattr(validation_mod, "dynamics_verdict", lambda *a, **k: alive)
    t = np.arange(4000) * 0.05
    x = np.stack([np.sin(t + 0.3 * k) + 0.1 * np.sin(3.1 * t + k) for k in range(10)], 1)
    x = (x - x.mean(0)) / x.std(0)
    res = train_loop(PLRNN(10, 12, seed=0), x, tau=10, config=TrainConfig(**{**TINY, "steps": 4, "validate_every": 2}),
              progress=False)
    assert len(res.history["val_d_stsp"]) == 2 and all(np.isfinite(res.history["val_d_stsp"]))
    assert len(variants) >= 2 and set(variants) == {"gmm"}, variants
