"""Short recordings of chaotic flows (issue 22, part 3): every default step of `dsrecon fit` works on 300-2000 samples.

The default method (GTF with a fixed α = 0.15) forces every step and uses no τ, so a λ_max estimate the data cannot
give (it needs 1000 state vectors; a 512-sample file has a 409-step training split) is reported in one line and
skipped, never a refusal. A method that needs τ (stf) is still refused in one line that says to pass --tau N, and
data without dynamics (white noise) are refused whatever the length.
"""
import json
import warnings

import numpy as np
import pytest

from dsrecon import cli
from dsrecon.errors import DataError
from dsrecon.systems import simulate
from dsrecon.tau import check_structure

# the cards' parameters and sampling intervals (datasets/lorenz.toml, datasets/rossler.toml)
FLOWS = {"lorenz": (dict(sigma=16.0, rho=45.92, beta=4.0), 0.01), "rossler": (dict(a=0.15, b=0.2, c=10.0), 0.1)}


def _flow(name: str, n: int) -> np.ndarray:
    params, dt = FLOWS[name]
    return simulate(name, params, dt=dt, n_samples=n, transient=2000, seed=0)


def _csv(path, name: str, n: int):
    """A recording as a user has it: a CSV with a time column at the card's dt."""
    x = _flow(name, n)
    t = np.arange(n) * FLOWS[name][1]
    np.savetxt(path, np.column_stack([t, x]), delimiter=",", header="time,x,y,z", comments="")
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("name, n", [("lorenz", 300), ("rossler", 512), ("lorenz", 1000), ("lorenz", 1028),
                                     ("lorenz", 2000)])
def test_default_fit_runs_on_a_short_recording(name, n, tmp_path, capsys):
    f = _csv(tmp_path / f"{name}{n}.csv", name, n)
    out = tmp_path / "run"
    with warnings.catch_warnings():   # the λ_max estimate's caveats go to the run's log, not to stderr
        warnings.simplefilter("error", RuntimeWarning)
        rc = cli.main(["fit", str(f), "--steps", "5", "--t-gen", "1000", "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 5 and metrics["tau"] is None
    assert (out / "report.html").exists() and (out / "generated.nc").exists()
    log = (out / "train.log").read_text()
    if int(0.8 * n) < 1000:   # a training split (80 %) too short for λ_max: said in one line, and the fit goes on
        skipped = [line for line in log.splitlines() if "lambda_max not estimated" in line]
        assert len(skipped) == 1 and "uses no tau" in skipped[0]
        assert metrics["lambda_max"] is None and not (out / "lambda_max.json").exists()
    else:                # long enough: λ_max is reported as before
        assert "lambda_max from the training data" in log and (out / "lambda_max.json").exists()


def test_pure_default_fit_on_a_512_sample_recording(tmp_path, capsys):
    # every default but the step count: T_gen = 100 000, ensemble "auto" (4 candidates), long-run validation
    f = _csv(tmp_path / "lorenz512.csv", "lorenz", 512)
    out = tmp_path / "run"
    assert cli.main(["fit", str(f), "--steps", "2", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["T_gen"] == 100_000 and metrics["ensemble"]["size"] == 4


def test_stf_on_a_short_recording_is_refused_with_the_way_out(tmp_path, capsys):
    # stf needs tau: --tau auto cannot estimate it from 409 steps, so one line says to pass --tau N ...
    f = _csv(tmp_path / "lorenz512.csv", "lorenz", 512)
    out = tmp_path / "run"
    assert cli.main(["fit", str(f), "--method", "stf", "--steps", "3", "--t-gen", "1000", "--out", str(out),
                     "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert "--tau auto" in err and "too short" in err and "--tau N" in err
    assert not out.exists()
    # ... and --tau N does it
    assert cli.main(["fit", str(f), "--method", "stf", "--tau", "10", "--steps", "3", "--t-gen", "1000", "--out",
                     str(out), "--quiet", "--ensemble", "1"]) == 0, capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text())["tau"] == 10


def test_short_white_noise_is_still_refused(tmp_path, capsys):
    # no dynamics to learn: refused whatever the method, also below the 1000 samples lambda_max needs
    np.savetxt(tmp_path / "noise.csv", np.random.default_rng(0).standard_normal((600, 3)), delimiter=",",
               header="a,b,c", comments="")
    out = tmp_path / "run"
    assert cli.main(["fit", str(tmp_path / "noise.csv"), "--steps", "3", "--t-gen", "1000", "--out", str(out),
                     "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert "white noise" in err and "--tau N" not in err
    assert not out.exists()


@pytest.mark.parametrize("n", [200, 240, 1000])
def test_structure_test_on_short_series(n):
    # 64 histogram bins put 200 samples of Lorenz only 4.5 null standard deviations above shuffled data (white
    # noise, refused); at most sqrt(T) bins keep the chi-square null valid and the test powerful
    check_structure(_flow("lorenz", n), dt=0.01)
    check_structure(_flow("rossler", n)[:, 0], dt=0.1)
    with pytest.raises(DataError, match="white noise"):
        check_structure(np.random.default_rng(1).standard_normal((n, 3)))
    with pytest.raises(DataError, match="constant"):
        check_structure(np.ones((n, 2)))
