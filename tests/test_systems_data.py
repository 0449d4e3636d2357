import json

import numpy as np
import pytest
import torch

import dsrecon as ds
from dsrecon import systems
from dsrecon.errors import DataError

PAPER = dict(sigma=16.0, rho=45.92, beta=4.0)  # "How to train RNNs on chaotic data" App. A.4


def test_simulate_is_deterministic_per_seed():
    a = systems.simulate("lorenz", PAPER, dt=0.01, n_samples=500, transient=100, seed=3)
    b = systems.simulate("lorenz", PAPER, dt=0.01, n_samples=500, transient=100, seed=3)
    c = systems.simulate("lorenz", PAPER, dt=0.01, n_samples=500, transient=100, seed=4)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_lorenz_phase_space_contraction_is_exact():
    # div f = -(sigma + 1 + beta) = -21 everywhere (Lorenz 1963), so the one-step map of an accurate
    # integrator has log|det J| = -21 dt up to the integrator's error.
    flow = systems.FlowModel("lorenz", PAPER, dt=0.01)
    z = torch.tensor(systems.simulate("lorenz", PAPER, dt=0.01, n_samples=50, transient=500, seed=0))
    logdet = torch.linalg.slogdet(flow.jacobian(z)).logabsdet / 0.01
    assert torch.allclose(logdet, torch.full_like(logdet, -21.0), rtol=1e-6)


def test_rk4_model_agrees_with_adaptive_integrator():
    # Two independent integrators (LSODA at 1e-10 and RK4 at dt/10) over 0.5 time units from the same
    # state: chaos amplifies errors by about exp(1.5 * 0.5), so agreement to 1e-4 checks both.
    x = systems.simulate("lorenz", PAPER, dt=0.01, n_samples=51, transient=300, seed=1)
    flow = systems.FlowModel("lorenz", PAPER, dt=0.01)
    z = torch.tensor(x[:1], dtype=torch.float64)
    for _ in range(50):
        z = flow.step(z)
    assert np.allclose(z[0].numpy(), x[50], atol=1e-4)


def test_dataset_layout_and_standardization(lorenz_data):
    d = lorenz_data
    assert d["x"].dims == ("time", "channel")
    assert list(d["channel"].values) == ["x", "y", "z"]
    assert d.attrs["dt"] == 0.01
    assert json.loads(d.attrs["parameters"]) == PAPER
    train, test = ds.train_test_split(d)
    assert train.sizes["time"] == d.attrs["n_train"] == 100_000
    assert test.sizes["time"] == 100_000
    # standardized on the training split: mean 0, std 1 there (by construction)
    assert np.allclose(train["x"].mean("time"), 0, atol=1e-10)
    assert np.allclose(train["x"].std("time"), 1, atol=1e-10)
    phys = ds.to_physical(train)
    assert np.allclose(phys["x"].mean("time"), d.attrs["mean"])
    # the time axis is k * dt exactly
    assert np.allclose(np.diff(d["time"].values), 0.01)
    steps = [p["step"] for p in json.loads(d.attrs["provenance"])]
    assert steps == ["simulate", "standardize"]


def test_netcdf_round_trip_and_cache(lorenz_data, tmp_path):
    path = tmp_path / "l.nc"
    ds.data.write_netcdf(lorenz_data, path)
    back = ds.data.read_netcdf(path)
    assert np.array_equal(back["x"].values, lorenz_data["x"].values)
    assert back.attrs["mean"] == pytest.approx(lorenz_data.attrs["mean"])
    assert ds.load("lorenz").identical(lorenz_data)  # second load comes from the cache


def test_a_cache_entry_written_before_the_channel_rename_is_read(tmp_path, monkeypatch):
    # a cache entry of an earlier version names its channel dimension "dim"; it is read (not regenerated) as "channel"
    monkeypatch.setenv("DSRECON_CACHE_DIR", str(tmp_path))
    opts = dict(n_train=1000, n_test=200, transient=500)
    new = ds.load("lorenz", **opts)
    [path] = tmp_path.glob("lorenz-*.nc")
    new.rename({"channel": "dim"}).assign_attrs(source="written before the rename").to_netcdf(path)
    back = ds.load("lorenz", **opts)
    assert back.attrs["source"] == "written before the rename"       # from the cache, not integrated again
    assert back["x"].dims == ("time", "channel") and "dim" not in back.variables
    assert back.assign_attrs(source=new.attrs["source"]).identical(new)


def test_unknown_dataset_lists_available():
    with pytest.raises(DataError, match="available: .*lorenz"):
        ds.load("lorenzz")


def test_nan_in_array_is_a_clear_error():
    x = np.ones((100, 3))
    x[7, 1] = np.nan
    with pytest.raises(DataError, match="NaN.*first at time index 7"):
        ds.data.as_array(x)


def test_independent_trajectory_differs_but_shares_statistics(lorenz_data):
    ref = ds.independent_trajectory(lorenz_data, 20_000, seed=99)
    _, test = ds.train_test_split(lorenz_data)
    assert not np.allclose(ref["x"].values[:100], test["x"].values[:100])
    assert np.allclose(ref["x"].values.std(0), 1.0, atol=0.15)  # same attractor, same scaling


# ------------------------------------------------------------------ the remaining simulated systems
SMALL = dict(n_train=2000, n_test=500, transient=1000, cache=False)   # short runs: the tests stay fast


def test_dde_integrator_on_a_known_solution():
    # x'(t) = -(pi/2) x(t - 1) has the exact solution sin(pi t / 2) (e^{i w t} with i w = -(pi/2) e^{-i w},
    # w = pi/2: the critical case of the linear delay equation, Hale & Verduyn Lunel 1993, ch. 5). Started from
    # that history, the method of steps must follow it; RK4 with cubic history interpolation is 4th order, so
    # halving h divides the error by about 2^4 = 16.
    def err(h):
        x = systems.integrate_dde(lambda x, xd: -np.pi / 2 * xd, lambda t: np.sin(np.pi * t / 2), delay=1.0, h=h,
                                  n_steps=int(round(20 / h)))
        return np.abs(x - np.sin(np.pi * np.arange(len(x)) * h / 2)).max()

    e1, e2 = err(0.1), err(0.05)
    assert e2 < 2e-5                       # measured 9.3e-6
    assert 12 < e1 / e2 < 20               # measured 16.0


def test_mackey_glass_converges_at_fourth_order():
    # Same smooth history (a fine run on the attractor) at steps h, h/2; the error at t = 10 against a run with
    # h/16 must shrink by about 16 per halving (4th order, Bellen & Zennaro 2003 ch. 4).
    p = dict(beta=2.0, gamma=1.0, n=9.65, delay=2.0)
    f = lambda x, xd: systems.mackey_glass(x, xd, **p)  # noqa: E731
    hf = 0.0025
    fine = systems.integrate_dde(f, lambda t: 1.2, delay=2.0, h=hf, n_steps=int(60 / hf))

    def run(h):
        k = int(round(h / hf))
        N = int(round(2.0 / h))
        hist = fine[len(fine) - 1 - k * (N + 1):: k]
        return systems.integrate_dde(f, hist, delay=2.0, h=h, n_steps=int(round(10 / h)))[-1]

    ref = run(hf)
    e1, e2 = abs(run(0.04) - ref), abs(run(0.02) - ref)
    assert e1 / e2 > 10


def test_delay_map_is_the_same_scheme_as_the_integrator():
    p = dict(beta=2.0, gamma=1.0, n=9.65, delay=2.0)
    x = systems.simulate_delay("mackey_glass", p, dt=0.01, substeps=1, n_samples=600, transient=500, seed=0)[:, 0]
    m = systems.DelayMap("mackey_glass", p, dt=0.04, substeps=4)
    z = torch.tensor(systems.delay_state(x[:300], delay=2.0, h=0.01))[None]
    for k in range(1, 6):
        z = m.step(z)
        assert float(m.observe(z)[0, 0]) == pytest.approx(x[299 + 4 * k], abs=1e-12)


def test_duffing_phase_space_contraction_is_minus_delta():
    # div f = d(v)/dx + d(-delta v - ...)/dv + d(omega)/dtheta = -delta (the forcing phase is neutral), so
    # log|det J| of the one-sample map is -delta * dt up to the RK4 error.
    p = dict(alpha=1.0, beta=-1.0, delta=0.1, gamma=0.35, omega=1.4)
    flow = systems.FlowModel("duffing", p, dt=0.17)
    z = torch.tensor(systems.simulate("duffing", p, dt=0.17, n_samples=20, transient=200, seed=0))
    logdet = torch.linalg.slogdet(flow.jacobian(z)).logabsdet / 0.17
    assert torch.allclose(logdet, torch.full_like(logdet, -0.1), rtol=1e-6)


@pytest.mark.parametrize("name", ["rossler", "duffing", "lorenz-yz", "mackey-glass"])
def test_simulated_cards_load(name):
    d = ds.load(name, **SMALL)
    c = ds.data.card(name)
    assert list(map(str, d["channel"].values)) == c["dims"]
    assert d["x"].shape == (2500, len(c["dims"]))
    assert np.allclose(np.diff(d["time"].values), c["sampling"]["dt"])
    train, _ = ds.train_test_split(d)
    assert np.allclose(train["x"].std("time"), 1, atol=1e-10)
    assert np.isfinite(d.attrs["lambda_ref"]) and d.attrs["lambda_ref_source"]
    assert json.loads(d.attrs["provenance"])[0]["step"] == "simulate"


def test_duffing_forcing_as_phase_channels_and_as_input():
    d = ds.load("duffing", **SMALL)
    phys = ds.to_physical(d)
    s = d["s"].values
    assert np.allclose((s ** 2).sum(1), 1.0)                          # cos^2 + sin^2
    assert np.allclose(phys["x"].sel(channel=["cos_wt", "sin_wt"]).values, s)
    # the phase advances by omega * dt = 1.4 * 0.17 per sample
    th = np.unwrap(np.arctan2(s[:, 1], s[:, 0]))
    assert np.allclose(np.diff(th), 1.4 * 0.17)
    drv = ds.load("duffing", forcing="input", **SMALL)
    assert list(drv["channel"].values) == ["x", "v"] and np.array_equal(drv["s"].values, s)
    assert np.allclose(ds.to_physical(drv)["x"].values, phys["x"].sel(channel=["x", "v"]).values)
    ref = ds.independent_trajectory(drv, 300, seed=5)
    assert list(ref["channel"].values) == ["x", "v"] and ref["s"].shape == (300, 2)


def test_partially_observed_lorenz_is_lorenz_y_z():
    d = ds.to_physical(ds.load("lorenz-yz", **SMALL))
    full = systems.simulate("lorenz", PAPER, dt=0.01, n_samples=2500, transient=1000, seed=0)
    assert np.allclose(d["x"].values, full[:, 1:], atol=1e-8)


def test_mackey_glass_is_a_10d_delay_embedding():
    d = ds.to_physical(ds.load("mackey-glass", **SMALL))
    x = d["x"].values
    assert np.allclose(x[:-5, 1], x[5:, 0]) and np.allclose(x[:-45, 9], x[45:, 0])   # delay 5 samples
    assert 0.2 < x.min() and x.max() < 1.6        # the attractor's range for these parameters (positive)


def test_observation_noise_option():
    clean = ds.to_physical(ds.load("rossler", **SMALL))
    noisy = ds.to_physical(ds.load("rossler", noise=0.1, **SMALL))
    ratio = (noisy["x"] - clean["x"]).std("time") / clean["x"].std("time")
    assert np.allclose(ratio, 0.1, rtol=0.1)           # noise std = 10 % of each channel's std
    assert noisy.attrs["noise"] == 0.1
    assert {"step": "observation_noise", "std_fraction": 0.1, "seed": [0, 1]} in json.loads(noisy.attrs["provenance"])
    for bad in (-1, 11, 1e308, float("nan")):   # beyond 10x the signal's spread: refused, not an overflow warning
        with pytest.raises(ds.ConfigError, match="noise must be a number in \\[0, 10\\]"):
            ds.load("rossler", noise=bad, **SMALL)


def test_noisy_dataset_is_cached_separately(_private_cache):
    a = ds.load("mackey-glass", n_train=1000, n_test=200, transient=500, noise=0.05)
    names = sorted(p.name for p in _private_cache.iterdir())
    version = ds.data.card("mackey-glass")["version"]
    assert f"mackey-glass-v{version}-seed0-1000+200-noise0.05-tr500.nc" in names
    assert ds.load("mackey-glass", n_train=1000, n_test=200, transient=500, noise=0.05).identical(a)


def test_delay_system_is_not_a_flow():
    with pytest.raises(DataError, match="delay-differential equation.*DelayMap"):
        systems.FlowModel("mackey_glass", {}, dt=0.04)


@pytest.mark.slow
@pytest.mark.parametrize("name, tol", [("rossler", 0.015), ("duffing", 0.015)])
def test_card_lambda_is_reproduced_by_the_qr_method(name, tol):
    # The cards' lambda_max come from true_spectrum(name, n_steps=20000, n_init=4); a shorter run must land
    # within a few standard errors (their stderr over 4 initial conditions: 0.0022 and 0.0018).
    spec = ds.data.true_spectrum(name, n_steps=5000, n_init=2)
    assert spec.per_time[0] == pytest.approx(ds.data.card(name)["reference"]["lambda_max"], abs=tol)
    if name == "duffing":   # the exponents sum to div f = -delta = -0.1 (the phase exponent is 0)
        assert spec.per_time.sum() == pytest.approx(-0.1, rel=1e-4)


def test_file_options_on_a_simulated_card_are_refused_before_any_work(_private_cache):
    # issue 12: `--embed auto` on a simulated card failed late; it is a file option, refused at load
    from dsrecon.errors import ConfigError

    before = sorted(p.name for p in _private_cache.rglob("*"))
    with pytest.raises(ConfigError, match=r"embed do\(es\) not apply to dataset 'lorenz'.*recordings take .*embed"):
        ds.load("lorenz", embed="auto", n_train=1000, n_test=100)
    assert sorted(p.name for p in _private_cache.rglob("*")) == before
