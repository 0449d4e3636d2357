"""The Python API under hostile arguments: one of dsrecon's own errors with one line naming the argument, raised
before any work, never a TypeError, KeyError or matrix-shape error from inside numpy, xarray or torch; and never
a finished run replaced because a flag was truthy by accident (found by probing the API)."""
import numpy as np
import pytest

import dsrecon as ds
from dsrecon.data import train_test_split

SMALL = dict(n_train=1500, n_test=1000, transient=500, cache=False)


@pytest.fixture(scope="module")
def lorenz():
    return ds.load("lorenz", **SMALL)


def _no_attrs(d):
    bare = d.copy()
    bare.attrs = {}
    return train_test_split(bare)


def _cases(d):
    test = train_test_split(d)[1]
    m = ds.PLRNN(3, 10, seed=0)
    return {
        "fit-an-array": (lambda: ds.fit(m, d["x"].values, tau=10), ds.DataError, ["data must be a dataset from ds.load",
                                                                                  "got ndarray", "ds.load('x.npy')"]),
        "fit-a-dataarray": (lambda: ds.fit(m, d["x"], tau=10), ds.DataError, ["got DataArray"]),
        "fit-config-a-dict": (lambda: ds.fit(m, d, tau=10, config={"steps": 2}), ds.ConfigError,
                              ["config must be a TrainConfig or a RunConfig, got dict"]),
        "fit-overwrite-a-string": (lambda: ds.fit(m, d, tau=10, run_dir="r", overwrite="no"), ds.ConfigError,
                                   ["overwrite must be True or False, got 'no'"]),
        "fit-run-dir-a-number": (lambda: ds.fit(m, d, tau=10, run_dir=5), ds.ConfigError,
                                 ["run_dir must be a folder path", "got int"]),
        "generate-other-channels": (lambda: ds.generate(ds.PLRNN(2, 10), 100, like=test), ds.DataError,
                                    ["like: 3 channels, but the model observes 2"]),
        "generate-x0-other-size": (lambda: ds.generate(m, 100, like=test, x0=np.zeros(7)), ds.DataError,
                                   ["x0 must be one observation of the model's 3 channels", "(7,)"]),
        "generate-n-steps-a-float": (lambda: ds.generate(m, 2.5, like=test), ds.ConfigError,
                                     ["n_steps must be an integer >= 1, got 2.5"]),
        "generate-beyond-memory": (lambda: ds.generate(m, 10**13, like=test), ds.ConfigError,
                                   ["n_steps = 10000000000000 generated steps need about", "GiB free"]),
        "generate-like-an-array": (lambda: ds.generate(m, 100, like=np.zeros((10, 3))), ds.DataError,
                                   ["like must be a dataset from ds.load"]),
        "generate-an-ensemble": (lambda: ds.generate(ds.Ensemble(m, 2), 100, like=test), ds.ConfigError,
                                 ["an Ensemble is K models", "ens.members[k]"]),
        "generate-not-a-model": (lambda: ds.generate(None, 100, like=test), ds.ConfigError,
                                 ["model must be a dsrecon model", "NoneType"]),
        "evaluate-other-channels": (lambda: ds.evaluate(ds.PLRNN(2, 10), d), ds.DataError,
                                    ["data: 3 channels, but the model observes 2"]),
        "evaluate-config-a-dict": (lambda: ds.evaluate(m, d, {"t_gen": 1000}), ds.ConfigError,
                                   ["config must be an EvalConfig, got dict"]),
        "evaluate-n-init-zero": (lambda: ds.evaluate(m, d, ds.EvalConfig(t_gen=1000), n_init=0), ds.ConfigError,
                                 ["n_init must be an integer >= 1, got 0"]),
        "model-spectrum-an-ensemble": (lambda: ds.model_spectrum(ds.Ensemble(m, 2), d), ds.ConfigError,
                                       ["an Ensemble is K models"]),
        "to-physical-an-array": (lambda: ds.to_physical(np.zeros(3)), ds.DataError,
                                 ["data must be a dataset from ds.load"]),
        "split-an-xarray-without-the-split": (lambda: _no_attrs(d), ds.DataError,
                                              ["without 'n_train'", "load the data with ds.load"]),
    }


IDS = ["fit-an-array", "fit-a-dataarray", "fit-config-a-dict", "fit-overwrite-a-string", "fit-run-dir-a-number",
       "generate-other-channels", "generate-x0-other-size", "generate-n-steps-a-float", "generate-beyond-memory",
       "generate-like-an-array", "generate-an-ensemble", "generate-not-a-model", "evaluate-other-channels",
       "evaluate-config-a-dict", "evaluate-n-init-zero", "model-spectrum-an-ensemble", "to-physical-an-array",
       "split-an-xarray-without-the-split"]


@pytest.mark.parametrize("case", IDS)
def test_api_argument_refused(case, lorenz, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call, error, match = _cases(lorenz)[case]
    with pytest.raises(error) as info:
        call()
    line = str(info.value)
    assert "\n" not in line and all(m in line for m in match), line
    assert list(tmp_path.iterdir()) == []          # refused before any work: nothing written


def test_every_case_is_listed(lorenz):
    assert sorted(_cases(lorenz)) == sorted(IDS)


def test_overwrite_must_be_a_bool_not_truthy(lorenz, tmp_path):
    """overwrite="no" used to replace a finished run (any truthy value counted as yes)."""
    run_dir = tmp_path / "run"
    cfg = ds.RunConfig(train=ds.TrainConfig(method="stf", steps=2, validate_every=0), eval=ds.EvalConfig(t_gen=1000))
    ds.fit(ds.PLRNN(3, 10, seed=0), lorenz, tau=10, config=cfg, run_dir=run_dir, progress=False)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    for flag in ("no", 0, 1, None):
        with pytest.raises(ds.ConfigError, match="overwrite must be True or False"):
            ds.fit(ds.PLRNN(3, 20, seed=1), lorenz, tau=10, config=cfg, run_dir=run_dir, overwrite=flag,
                   progress=False)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
