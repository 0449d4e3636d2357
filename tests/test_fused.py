"""The fused rollouts of dsrecon.fused (issue 14 part 2) against their oracle: autograd through the eager rollout.

For every fused architecture (PLRNN, shPLRNN, clipped shPLRNN), every training method, one model and the stacked
view of an ensemble (with one τ or one α per member), the fused states must equal the eager ones and every
parameter's gradient must equal autograd's. Both are computed here in float64 from the same parameters, so the
only difference is the order of the sums (the fused backward sums each parameter's gradient in one product over
all time steps instead of step by step): agreement to 1e-10 relative is ~10^5 x the float64 rounding of these
sums and far below any real error (a missing term, a wrong transpose, an off-by-one in time is O(1)).
"""
import pytest
import torch

import dsrecon as ds
from dsrecon import fused
from dsrecon.ensemble import Ensemble
from dsrecon.forcing import rollout

T, BATCH = 40, 5


def _model(arch, seed=0, obs=3, latent=None, **kw):
    if arch == "plrnn":
        m = ds.PLRNN(obs, latent or 12, seed=seed, **kw)
    else:
        m = ds.ShallowPLRNN(obs, latent or 8, hidden_dim=16, clipped=arch == "clipped", seed=seed, **kw)
    m = m.double()
    with torch.no_grad():   # away from the initialisation's symmetric values, so every term of the gradient matters
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + p.numel()),
                                      dtype=p.dtype))
        if hasattr(m, "offdiag"):
            m.W.mul_(m.offdiag)
    return m


def _data(members=None, seed=1, steps=T, obs=3):
    g = torch.Generator().manual_seed(seed)
    shape = (steps + 1, BATCH, obs) if members is None else (steps + 1, members, BATCH, obs)
    return torch.cumsum(0.3 * torch.randn(shape, generator=g, dtype=torch.float64), 0)


def _is_fused(state: torch.Tensor) -> bool:
    return any("Rollout" in type(f).__name__ for f, _ in state.grad_fn.next_functions if f is not None)


def _loss_and_grads(model, params, x, method, monkeypatch, engine, **kw):
    monkeypatch.setenv("DSRECON_ROLLOUT", engine)
    for p in params:
        p.grad = None
    states = []
    pred = rollout(model, x, method, states_out=states, **kw)
    assert _is_fused(states[0]) == (engine == "fused")
    Z = torch.stack(states)
    # a loss that reads every prediction and every state (the latent regulariser's path), with weights that
    # differ per time step, so a gradient delivered to the wrong step shows
    n = pred.shape[0]
    w = torch.linspace(0.5, 1.5, n, dtype=x.dtype).view(n, *([1] * (pred.dim() - 1)))
    loss = (w * (pred - x[1:]) ** 2).mean() + 0.01 * (w * Z ** 2).mean()
    loss.backward()
    return pred.detach(), Z.detach(), [None if p.grad is None else p.grad.clone() for p in params]


CASES = [("stf", {"tau": 7}), ("id-tf", {"tau": 5}), ("gtf", {"alpha": 0.2}), ("gtf", {"alpha": 0.0}), ("gtf", {"alpha": 1.0}),
         ("bptt-clip", {}), ("window", {"tau": 9})]


def _compare(model, params, x, method, kw, monkeypatch, nonzero=True):
    assert fused.supports(model, method, None)
    pe, Ze, ge = _loss_and_grads(model, params, x, method, monkeypatch, "eager", **kw)
    pf, Zf, gf = _loss_and_grads(model, params, x, method, monkeypatch, "fused", **kw)
    torch.testing.assert_close(Zf, Ze, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(pf, pe, rtol=1e-12, atol=1e-12)
    for (name, _), a, b in zip(model.named_parameters(), gf, ge):
        assert (a is None) == (b is None), name
        if b is not None:
            assert not nonzero or float(b.abs().max()) > 0, f"{name}: the oracle's gradient is zero, so the " \
                                                                "comparison says nothing"
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("arch", ["plrnn", "shallow", "clipped"])
@pytest.mark.parametrize("method,kw", CASES, ids=[f"{m}-{'-'.join(f'{k}{v}' for k, v in kw.items())}" for m, kw in CASES])
def test_fused_equals_eager_autograd(arch, method, kw, monkeypatch):
    model = _model(arch, learn_observation=method != "id-tf")
    _compare(model, list(model.parameters()), _data(), method, kw, monkeypatch)


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_fused_short_windows(steps, monkeypatch):
    """Windows of 1-3 steps and forcing at every step (τ = 1): the loops' edges. Some gradients are exactly zero
    here (the window baseline's first step starts from z = 0), so zero oracles are allowed."""
    for arch in ("plrnn", "clipped"):
        model = _model(arch)
        for method, kw in (("stf", {"tau": 1}), ("gtf", {"alpha": 0.3}), ("window", {"tau": 2}), ("bptt-clip", {})):
            _compare(model, list(model.parameters()), _data(steps=steps), method, kw, monkeypatch, nonzero=False)


@pytest.mark.parametrize("arch", ["plrnn", "clipped"])
def test_fused_keeps_unobserved_and_ridge(arch, monkeypatch):
    """The other forcing rules of the observation model: z + B⁺(x − Bz) and the ridge inverse."""
    for kw in ({"keep_unobserved": True}, {"ridge": 0.3}):
        model = _model(arch, **kw)
        for method, mkw in (("stf", {"tau": 6}), ("gtf", {"alpha": 0.3})):
            _compare(model, list(model.parameters()), _data(), method, mkw, monkeypatch)


@pytest.mark.parametrize("arch", ["plrnn", "shallow", "clipped"])
def test_fused_fewer_latents_than_channels(arch, monkeypatch):
    """M = 4 latents observed through B (7 x 4), issue 22: forcing by least squares, (BᵀB)⁻¹Bᵀ or the ridge
    (BᵀB + λI)⁻¹Bᵀ; GTF's B⁺B is then the identity, so ẑ = B⁺x and B's gradient comes from −B⁺B z alone."""
    for kw in ({}, {"ridge": 0.3}, {"keep_unobserved": True}):
        model = _model(arch, obs=7, latent=4, **kw)
        for method, mkw in (("stf", {"tau": 6}), ("gtf", {"alpha": 0.3}), ("bptt-clip", {}), ("window", {"tau": 9})):
            _compare(model, list(model.parameters()), _data(obs=7), method, mkw, monkeypatch)
    ens = Ensemble([_model(arch, seed=s, obs=7, latent=4) for s in range(3)])
    params = list(ens.parameters())
    out = {}
    for engine in ("eager", "fused"):
        monkeypatch.setenv("DSRECON_ROLLOUT", engine)
        for p in params:
            p.grad = None
        pred = rollout(ens.stacked(), _data(3, obs=7), "gtf", alpha=[0.1, 0.3, 0.5])
        (pred ** 2).mean().backward()
        out[engine] = pred.detach(), [p.grad.clone() for p in params]
    torch.testing.assert_close(out["fused"][0], out["eager"][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(out["fused"][1], out["eager"][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("arch", ["plrnn", "clipped"])
@pytest.mark.parametrize("method,kw", [("stf", {"tau": [4, 7, 4]}), ("gtf", {"alpha": [0.1, 0.0, 0.4]}), ("gtf", {"alpha": [0.3, 1.0, 0.5]}),
                                       ("window", {"tau": [3, 8, 5]}), ("stf", {"tau": 6})],
                         ids=["stf-per-member", "gtf-per-member", "gtf-one-fully-forced", "window-per-member", "stf-shared"])
def test_fused_ensemble_equals_eager(arch, method, kw, monkeypatch):
    """The stacked view of an ensemble: members (K, ...) parameters, per-member τ or α; gradients reach every
    member's own leaves (through torch.stack, and the PLRNN's off-diagonal hook of W)."""
    ens = Ensemble([_model(arch, seed=s) for s in range(3)])
    params = list(ens.parameters())

    def run(engine):
        monkeypatch.setenv("DSRECON_ROLLOUT", engine)
        for p in params:
            p.grad = None
        view = ens.stacked()
        pred = rollout(view, _data(3), method, **kw)
        (pred ** 2).mean().backward()
        return pred.detach(), [p.grad.clone() for p in params]

    pe, ge = run("eager")
    pf, gf = run("fused")
    torch.testing.assert_close(pf, pe, rtol=1e-12, atol=1e-12)
    for (name, _), a, b in zip(ens.named_parameters(), gf, ge):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=lambda m: f"{name}: {m}")
    if arch == "plrnn":   # the hook kept W's diagonal out of every member's gradient
        assert all(float(m.W.grad.diagonal().abs().max()) == 0 for m in ens.members)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device (benchmarks/gpu_check.sh runs this on a GPU)"))])
def test_fused_equals_eager_on_device(device, monkeypatch):
    """The fused rollout on the training device (CUDA where there is one): states and gradients as the eager ones."""
    for arch, method, kw in (("plrnn", "stf", {"tau": 7}), ("clipped", "gtf", {"alpha": 0.2})):
        model = _model(arch).to(device)
        _compare(model, list(model.parameters()), _data().to(device), method, kw, monkeypatch)


def test_fused_only_where_it_applies(monkeypatch):
    """Driven models, other architectures and the eager switch run the eager rollout."""
    x = _data()
    plrnn = _model("plrnn")
    assert fused.supports(plrnn, "gtf", None)
    assert not fused.supports(plrnn, "gtf", torch.zeros(T + 1, BATCH, 1))
    assert not fused.supports(ds.RNN(3, 8).double(), "stf", None)
    assert not fused.supports(ds.PLRNN(3, 8, input_dim=1), "stf", None)
    monkeypatch.setenv("DSRECON_ROLLOUT", "eager")
    assert not fused.supports(plrnn, "gtf", None)
    states = []
    rollout(plrnn, x, "stf", tau=5, states_out=states)
    assert not _is_fused(states[0])


def test_big_plrnn_ensembles_stay_eager(monkeypatch):
    """A PLRNN ensemble with more than EAGER_ABOVE_BYTES of states per rollout runs eager (measured faster there);
    smaller ones, and shPLRNN ensembles of any size, run fused."""
    monkeypatch.setenv("DSRECON_ROLLOUT", "fused")
    for K, expected in ((4, True), (8, False)):   # M = 100, batch 32, 200 steps, float32: 10 and 20 MiB of states
        view = Ensemble(ds.PLRNN(3, 100), K).stacked()
        assert fused.supports(view, "stf", None, torch.empty(201, K, 32, 3)) is expected
    view = Ensemble(ds.ShallowPLRNN(3, 100, hidden_dim=8), 8).stacked()
    assert fused.supports(view, "stf", None, torch.empty(201, 8, 32, 3))


def test_fused_refuses_bad_settings_like_eager(monkeypatch):
    """The one-line errors of the eager rollout (τ < 1, α outside [0, 1]) hold on the fused path too."""
    from dsrecon.errors import ConfigError
    model = _model("plrnn")
    monkeypatch.setenv("DSRECON_ROLLOUT", "fused")
    with pytest.raises(ConfigError, match="tau"):
        rollout(model, _data(), "stf", tau=0)
    with pytest.raises(ConfigError, match="alpha"):
        rollout(model, _data(), "gtf", alpha=1.5)
