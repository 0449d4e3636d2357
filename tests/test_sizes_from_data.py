"""Sizes from the data (issue 22, part 2): fewer latents than channels with a learned (affine) observation, the
default latent size from the data's linear dimension, and the observation of M < N latents started at the data's
principal directions.

The asserted numbers are analytic: forcing through B (N x M, full column rank) is the least-squares solution, so
B B⁺ x is the orthogonal projection of x on range(B) (computed here independently, from a QR factorisation); the
ridge inverse (BᵀB + λI)⁻¹Bᵀ is the least-squares solution of [B; √λ I] z = [x; 0]; a mixture of 3 independent
sources into 64 channels with 5 % noise has 3 principal components holding 1 / (1 + 0.05²) = 99.75 % of each
channel's variance; data lying in a 3-dimensional subspace are reproduced exactly by a 3-latent observation whose
range is that subspace.
"""
import numpy as np
import pytest
import torch

from dsrecon import cli
from dsrecon.config import ModelConfig, RunConfig, TrainConfig, model_sizes, sizes_note
from dsrecon.dimension import init_observation, linear_dimension
from dsrecon.ensemble import Ensemble
from dsrecon.errors import ConfigError, DataError
from dsrecon.experiment import build_model
from dsrecon.models import MODELS, observation as obs

N, M = 5, 2


def _mixture(n_channels=64, n_sources=3, noise=0.05, T=4000, seed=0):
    """3 sinusoids of incommensurate frequencies (nearly uncorrelated, equal variance) mixed into ``n_channels``
    channels, plus independent noise of ``noise`` times each channel's std."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    S = np.stack([np.sin(2 * np.pi * t / p + rng.uniform(0, 6)) for p in (17.3, 41.9, 97.1)[:n_sources]], 1)
    X = S @ rng.standard_normal((n_sources, n_channels))
    X += noise * X.std(0) * rng.standard_normal(X.shape)
    return (X - X.mean(0)) / X.std(0)


def _projection(B: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    Q, _ = torch.linalg.qr(B)          # orthonormal basis of range(B)
    return x @ Q @ Q.T


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("ridge", [0.0, 0.3])
def test_fewer_latents_than_channels_run_force_and_learn(name, ridge):
    m = MODELS[name](N, M, ridge=ridge, seed=1).double()
    x = torch.randn(7, N, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    z = m.force(x)
    assert z.shape == (7, m.latent_dim) and m.B.shape == (N, M)   # the LSTM's state is [h, c]: 2M
    B = m.B.detach()
    if ridge == 0:   # the least-squares solution: B B⁺ x is the projection of x on range(B)
        torch.testing.assert_close(m.observe(z), _projection(B, x), rtol=1e-12, atol=1e-12)
    else:            # the ridge solution: least squares of [B; √λ I] z = [x; 0]
        A = torch.cat([B, ridge**0.5 * torch.eye(M, dtype=B.dtype)])
        want = torch.linalg.lstsq(A, torch.cat([x.T, torch.zeros(M, 7, dtype=x.dtype)])).solution.T
        torch.testing.assert_close(z[:, :M], want, rtol=1e-10, atol=1e-12)
    for keep in (False, True) if ridge == 0 else ():   # B⁺B = I for M < N: keeping the unobserved part changes nothing
        m.keep_unobserved = keep
        torch.testing.assert_close(m.force(x, z=torch.randn_like(z))[:, :M], z[:, :M], rtol=1e-10, atol=1e-10)
    zz = z
    for _ in range(3):
        zz = m.step(zz)
    assert zz.shape == z.shape
    (m.observe(zz) - x).pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    assert float(m.B.grad.abs().max()) > 0


def test_ridge_inverse_uses_the_well_conditioned_side():
    # float32, M < N, a tiny ridge: (BᵀB + λI)⁻¹Bᵀ is the pseudo-inverse to float32 rounding; Bᵀ(BBᵀ + λI)⁻¹ solves
    # with the singular N x N B Bᵀ (rank M) and is off by orders of magnitude
    B = torch.randn(7, 3, generator=torch.Generator().manual_seed(2))
    P = obs.observation_pinv(B, 1e-9)
    torch.testing.assert_close(P, torch.linalg.pinv(B.double()).float(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(P @ B, torch.eye(3), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(MODELS))
def test_identity_observation_still_needs_one_latent_per_channel(name):
    with pytest.raises(ConfigError) as err:
        MODELS[name](N, M, learn_observation=False)
    assert "identity observation" in str(err.value) and len(str(err.value).splitlines()) == 1


def test_id_tf_with_fewer_latents_is_refused_in_one_line():
    cfg = RunConfig().replace(model=ModelConfig(latent_dim=2), train=TrainConfig(method="id-tf", tau=5))
    with pytest.raises(ConfigError) as err:
        cfg.check_series(5000, 3)
    assert "identity observation" in str(err.value) and len(str(err.value).splitlines()) == 1
    RunConfig().replace(model=ModelConfig(latent_dim=2)).check_series(5000, 3)   # gtf, learned B: fine
    with pytest.raises(ConfigError, match="identity observation"):
        build_model(ModelConfig(latent_dim=2), 3, method="id-tf")


def test_a_mixture_of_three_sources_has_linear_dimension_three():
    x = _mixture()
    ld = linear_dimension(x)
    assert ld.value == 3 and ld.explained[2] >= 1 / (1 + 0.05**2) - 1e-3 and ld.explained[1] < 0.99
    # the noise-free mixture: rank 3 exactly, so 3 components hold all of it
    assert linear_dimension(_mixture(noise=0.0)).explained[2] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(DataError):
        linear_dimension(np.ones((100, 4)))


def test_sixty_four_channels_of_three_sources_get_ten_latents():
    x = _mixture()
    m = build_model(ModelConfig(), 64, method="gtf", data=x)
    assert (m.latent_dim, m.hidden_dim) == (10, 300)   # max(10, min(64, 3, 16)), L = 30 M: not 64 and 1920
    assert model_sizes(ModelConfig(), 64) == (64, 1920)   # without the data: M = max(N, 10), as before
    note = sizes_note(ModelConfig(), 64, linear_dimension(x))
    assert "M = max(10, min(N = 64, d = 3, 16)) = 10" in note and "3 principal components" in note
    assert len(note.splitlines()) == 1


@pytest.mark.parametrize("n, d, sizes", [(3, 3, (10, 300)), (10, 10, (10, 300)), (12, 12, (12, 360)),
                                         (12, 5, (10, 300)), (64, 3, (10, 300)), (64, 40, (16, 480)),
                                         (64, 64, (16, 480))])
def test_the_rule_for_the_latent_size(n, d, sizes):
    assert model_sizes(ModelConfig(), n, d) == sizes
    assert model_sizes(ModelConfig(latent_dim=7), n, d) == (7, 210)        # the config's own size wins
    assert model_sizes(ModelConfig(kind="plrnn"), n, d) == (None, None)    # other architectures: their defaults


def test_lorenz_keeps_ten_latents_and_the_identity_observation(lorenz_data):
    from dsrecon.data import as_array, train_test_split
    x = as_array(train_test_split(lorenz_data)[0])
    with_data = build_model(ModelConfig(), 3, method="gtf", data=x)
    without = build_model(ModelConfig(), 3, method="gtf")
    assert (with_data.latent_dim, with_data.hidden_dim) == (10, 300)
    sd, sd0 = with_data.state_dict(), without.state_dict()
    assert sd.keys() == sd0.keys() and all(torch.equal(sd[k], sd0[k]) for k in sd)   # the same model, weight by weight


def test_the_observation_of_fewer_latents_starts_at_the_principal_directions():
    x = _mixture(noise=0.0)      # rank 3: the data lie in a 3-dimensional subspace of the 64 channels
    m = build_model(ModelConfig(latent_dim=3), 64, method="gtf", data=x).double()
    xt = torch.as_tensor(x)
    torch.testing.assert_close(m.observe(m.force(xt)), xt, rtol=0, atol=1e-6)   # exactly, to float32 B
    plain = build_model(ModelConfig(latent_dim=3), 64, method="gtf").double()      # [I 0]: 3 channels kept
    assert float((plain.observe(plain.force(xt)) - xt).pow(2).mean().detach()) > 0.1
    ens = init_observation(Ensemble(build_model(ModelConfig(latent_dim=3), 64), 2), x)   # every member
    assert all(torch.equal(e.B, ens.members[0].B) for e in ens.members)
    torch.testing.assert_close(ens.members[1].B.double(), m.B.detach(), rtol=1e-6, atol=1e-6)
    with pytest.raises(DataError, match=r"shape \(T, 64\)"):
        init_observation(build_model(ModelConfig(latent_dim=3), 64), x[:, :5])


def test_latent_dim_below_the_channel_count_trains(tmp_path, capsys, lorenz_data):
    f = tmp_path / "lorenz3.npy"
    np.save(f, lorenz_data["x"].values[:3000])
    out = tmp_path / "run"
    code = cli.main(["fit", str(f), "--latent-dim", "2", "--steps", "5", "--t-gen", "2000", "--ensemble", "1",
                     "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    import json
    hp = json.loads((out / "config.json").read_text())["config"]["model"]
    assert hp["latent_dim"] == 2 and (out / "model.pt").exists()
