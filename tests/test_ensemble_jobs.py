"""Sweeps fold their seed and τ axes into ensemble jobs (issue 14 part 4): one τ per member in the forcing
and the training loop, and a sweep's runs trained as ensemble jobs equal the same runs trained one by one."""
import numpy as np
import pytest
import torch

import dsrecon as ds
from dsrecon.config import TrainConfig
from dsrecon.ensemble import Ensemble, sampling_seeds
from dsrecon.errors import ConfigError
from dsrecon.forcing import rollout
from dsrecon.train import fit

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
        # differences <= 7.5e-9 (the batched matmul rounds differently in the last bits); tolerances ~3x those
        assert np.max(np.abs(a - b) / a) < 3e-6, k
        assert mem.history["val_d_stsp"] == pytest.approx(one.history["val_d_stsp"], rel=1e-4)
        for name, v in one.model.state_dict().items():
            torch.testing.assert_close(mem.model.state_dict()[name], v, rtol=0, atol=3e-8)


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
