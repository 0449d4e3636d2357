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
    assert d["x"].dims == ("time", "dim")
    assert list(d["dim"].values) == ["x", "y", "z"]
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
