"""`dsrecon lyap FILE`: λ_max of a user's series from .npy / .csv / .txt, the chaotic flag, one-line errors."""
import numpy as np
import pytest
from scipy.integrate import odeint

from dsrecon.cli import main


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def lorenz_x():
    def rhs(u, t):
        return [16.0 * (u[1] - u[0]), u[0] * (45.92 - u[2]) - u[1], u[0] * u[1] - 4.0 * u[2]]

    return odeint(rhs, [1.0, 1.0, 20.0], np.arange(12_000) * 0.01, rtol=1e-10, atol=1e-10)[2_000:, 0]


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".txt"])
def test_lyap_file(tmp_path, capsys, lorenz_x, suffix):
    path = tmp_path / f"series{suffix}"
    if suffix == ".npy":
        np.save(path, lorenz_x)
    else:   # a header line, as spreadsheets write it
        np.savetxt(path, lorenz_x, delimiter="," if suffix == ".csv" else " ", header="x", comments="")
    png = tmp_path / "div.png"
    code, out, err = _run(["lyap", str(path), "--dt", "0.01", "--plot", str(png)], capsys)
    assert code == 0, err
    # Lorenz sigma=16, rho=45.92, beta=4: 1.50 per time unit (Wolf et al. 1985); 10^4 samples, so loose: from the
    # initial states (1, 1, 20), (2, -1, 25), (-3, 0.5, 30), (0.5, 2, 15) measured -5.8 % .. +8.3 % (this one +4.9 %);
    # 20 % is 2.4x the worst (3x would loosen it). Deterministic data (odeint at 1e-10, numpy only).
    lam = float(out.split("lambda_max = ")[1].split()[0])
    assert lam == pytest.approx(1.50, rel=0.2)
    assert "chaotic:" in out and "fit: lags" in out and png.exists()
    assert "`dsrecon fit --tau auto` would use tau = " in out and "from lambda_max: tau = ln2/lambda_max" in out


def test_lyap_periodic_file_is_not_chaotic(tmp_path, capsys):
    path = tmp_path / "sine.npy"
    np.save(path, np.sin(np.arange(5_000) * 0.125))
    code, out, err = _run(["lyap", str(path), "--plot", str(tmp_path / "s.png")], capsys)
    assert code == 0, err
    # lambda_max = 0: `fit --tau auto` falls back to a decorrelation time and says so (forcing_interval)
    assert "NOT chaotic" in out and "`dsrecon fit --tau auto` would use tau = " in out
    assert "no clear exponential divergence" in out and "from lambda_max" not in out


@pytest.mark.parametrize("content, argv, message", [
    (None, [], "no such file"),
    ("1,2\n3,x\n", [], "cannot read a numeric array"),
    ("1\n2\n", ["--dt", "-1"], "--dt must be a positive number"),
    ("1\n2\n", [], "too short"),
])
def test_lyap_file_errors_are_one_line(tmp_path, capsys, content, argv, message):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    code, _, err = _run(["lyap", str(path), *argv], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
