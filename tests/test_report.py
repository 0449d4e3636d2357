"""Run-directory outputs of issue 5: report.html (self-contained, built from disk), the figures, the
tau-sweep plot, and the CLI's `dsrecon eval` / `dsrecon compare`.

One tiny run (5 training steps, T_gen = 1000) is written once per module by `dsrecon fit`.
"""
import base64
import json
import math
import re
import shutil
import subprocess

import pytest

from dsrecon import cli, report


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, _private_cache):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    rc = cli.main(["fit", "lorenz", "--method", "stf", "--tau", "20", "--steps", "5", "--t-gen", "1000", "--latent-dim", "10",
                   "--out", str(out), "--quiet"])
    assert rc == 0
    return out


def _pngs_in_html(text):
    return re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)


def test_report_html_is_self_contained(run_dir):
    text = (run_dir / "report.html").read_text()
    figures = sorted(p.name for p in run_dir.glob("*.png"))
    # every figure of the run directory is embedded, and each embedded blob is a PNG (its 8-byte signature)
    for name in ("attractor.png", "timeseries.png", "spectra.png", "prediction.png", "lyapunov.png", "loss.png"):
        assert name in figures
    blobs = _pngs_in_html(text)
    assert len(blobs) == len(figures)
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in blobs)
    # offline: no reference to anything outside the file
    assert not re.search(r"(src|href)=['\"](https?:|//|file:)", text)
    # the numbers, the variants and the config are there
    m = json.loads((run_dir / "metrics.json").read_text())
    for key in ("D_stsp", "D_H", "PSC", "D_stsp_legacy", "D_H_legacy", "PE", "VPT", "model_lambda_max"):
        assert f"<td>{key}</td>" in text
    assert "box=±2sd about 0 (ddof=1), bin 0 dropped" in text and "method=bins" in text
    assert f"{float(m['noise_floor']['D_stsp']):.4g}" in text
    assert "&quot;tau&quot;: 20" in text or "&quot;tau&quot;: &quot;20&quot;" in text


def test_report_html_is_built_from_disk(run_dir, tmp_path):
    rd = tmp_path / "copy"
    shutil.copytree(run_dir, rd)
    m = json.loads((rd / "metrics.json").read_text())
    m["scores"]["D_stsp"]["value"] = 123.456  # a number only the file on disk holds
    (rd / "metrics.json").write_text(json.dumps(m))
    (rd / "loss.png").unlink()
    text = report.write_html(rd).read_text()
    assert "<td>123.5</td>" in text
    assert len(_pngs_in_html(text)) == len(list(rd.glob("*.png")))


def test_cli_eval_rescores_without_touching_the_run(run_dir, capsys):
    before = (run_dir / "metrics.json").read_bytes()
    assert cli.main(["eval", str(run_dir), "--t-gen", "1000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["T_gen"] == 1000 and out["scores"]["D_stsp"]["variant"]["method"] == "bins"
    assert out["scores"]["D_stsp_legacy"]["variant"]["method"] == "legacy"
    assert set(out["noise_floor"]) >= {"D_stsp", "D_H", "PSC", "D_stsp_legacy", "D_H_legacy", "seed"}
    # the same model, data and T_gen as the fit's own evaluation: the same free run, the same D_stsp
    saved = json.loads(before)
    assert out["D_stsp"] == pytest.approx(float(saved["D_stsp"]), rel=1e-9) or (
        math.isinf(float(saved["D_stsp"])) and out["D_stsp"] == "inf")
    assert (run_dir / "metrics.json").read_bytes() == before
    assert cli.main(["eval", str(run_dir), "--t-gen", "1000", "--n-init", "2"]) == 0
    table = capsys.readouterr().out
    assert "noise floor" in table and "D_H_legacy" in table and "D_stsp_ics" in table
    # two initial conditions: the floor is the median ± MAD of two independent trajectories
    d_stsp_row = next(line for line in table.splitlines() if line.startswith("D_stsp "))
    assert d_stsp_row.split()[3] == "±"  # columns: metric, value (one initial condition), floor ± MAD


def test_cli_eval_and_compare_errors(tmp_path, capsys):
    assert cli.main(["eval", str(tmp_path)]) == 2
    assert "no config.json there" in capsys.readouterr().err
    assert cli.main(["compare", str(tmp_path)]) == 2
    assert "no metrics.json" in capsys.readouterr().err


def test_cli_compare_one_table(run_dir, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    assert cli.main(["compare", str(run_dir), str(other)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4  # header, rule, two runs
    assert lines[0].split()[:3] == ["run", "dataset", "model"]
    assert lines[2].startswith("tiny") and lines[3].startswith("other") and "lorenz" in lines[3]


def test_cli_compare_plot(run_dir, tmp_path, capsys):
    assert cli.main(["compare", str(run_dir), "--plot", str(tmp_path / "sweep.png")]) == 0
    assert "tau sweep:" in capsys.readouterr().out and (tmp_path / "sweep.png").stat().st_size > 1000


@pytest.mark.slow
def test_cli_eval_true_spectrum(run_dir, capsys):
    # Lorenz (sigma 16, rho 45.92, beta 4): D_KY of the true equations is about 2.07 ("Lyapunov spectra of
    # chaotic RNNs" Eq. 3 on (1.50, 0, -22.46): 2 + 1.50/22.46 = 2.067); 1000 QR steps: within 0.05
    assert cli.main(["eval", str(run_dir), "--t-gen", "1000", "--true-spectrum", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scores"]["model_D_KY"]["reference"] == pytest.approx(2.067, abs=0.05)
    assert len(out["scores"]["model_spectrum"]["extra"]["reference"]) == 3


def test_tau_sweep_plot(run_dir, tmp_path):
    dirs = []
    for tau, d in [(10, 5.0), (20, 2.0), (40, float("inf"))]:
        rd = tmp_path / f"tau{tau}"
        shutil.copytree(run_dir, rd)
        c = json.loads((rd / "config.json").read_text())
        c["tau_steps"] = tau
        (rd / "config.json").write_text(json.dumps(c))
        m = json.loads((rd / "metrics.json").read_text())
        m["D_stsp"], m["D_H"] = str(d), 0.1 * tau
        (rd / "metrics.json").write_text(json.dumps(m))
        dirs.append(rd)
    path = report.plot_tau_sweep(dirs, tmp_path / "sweep.png")
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.shape[0] > 100 and img[..., :3].std() > 0.05  # a drawn figure, not an empty canvas


@pytest.mark.slow
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    shot = tmp_path / "shot.png"
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1200,1600", (run_dir / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]
    # non-blank: a white page has std 0 and no dark pixels; text, tables and figures give both
    assert img.std() > 0.05
    assert (img.mean(axis=2) < 0.5).mean() > 0.005
