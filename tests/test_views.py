"""Figures that scale with the channels (issue 22, part 6): dsrecon.views' choices on analytic cases, and the
figures of a 64-channel run (its timeseries.png was 64 stacked panels, 12 760 pixels tall; its attractor showed
channels 0-2 under the file's absolute path)."""
import numpy as np
import pytest

from dsrecon import views
from hostile import run_cli


def _sources(n: int = 2000) -> np.ndarray:
    t = np.arange(n) * 0.05
    return np.column_stack([np.sin(t), np.cos(0.7 * t), np.sin(1.9 * t + 0.3)])


def test_projection_keeps_the_generated_run_on_the_true_axes():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((64, 3)))   # orthonormal loadings: the variances are the sources'
    true = _sources() * [3.0, 2.0, 1.0] @ q.T
    true -= true.mean(0)
    p_true, p_gen, labels = views.principal_projection(true, 0.5 * true)
    # a copy at half size projects to exactly half the true coordinates on the same axes (a linear map, centre 0)
    np.testing.assert_allclose(p_gen, 0.5 * p_true, atol=1e-12)
    np.testing.assert_allclose(np.std(p_true, axis=0), [3 / np.sqrt(2), 2 / np.sqrt(2), 1 / np.sqrt(2)], rtol=0.05)
    assert labels[0].startswith("PC1 (64 %")   # 4.5 / (4.5 + 2 + 0.5): sin² averages 1/2


def test_chosen_channels_follow_the_leading_components():
    rng = np.random.default_rng(1)
    true = 0.01 * rng.standard_normal((2000, 64))
    for c, src in zip((40, 5, 17), _sources().T):
        true[:, c] += src
    assert views.chosen_channels(true, k=3) == [5, 17, 40]
    assert views.chosen_channels(true[:, :2], k=4) == [0, 1]   # never more channels than there are


def test_shared_limits_and_display_name():
    assert views.shared_limits(np.array([[0.0, -1.0], [4.0, 1.0]])) == [(-1.0, 5.0), (-1.5, 1.5)]
    assert views.display_name("/home/me/data/rec.npy") == "rec.npy"
    assert views.display_name("lorenz") == "lorenz"


@pytest.mark.parametrize("n_channels", [64])
def test_a_many_channel_run_gets_figures_of_bounded_size(n_channels, tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    x = _sources(3000) @ rng.standard_normal((3, n_channels)) + 0.05 * rng.standard_normal((3000, n_channels))
    np.save(tmp_path / "rec.npy", x)
    code, _, err = run_cli(["fit", tmp_path / "rec.npy", "--dt", "0.05", "--steps", "3", "--t-gen", "1000",
                            "--ensemble", "1", "--quiet", "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    sizes = {f: Image.open(tmp_path / "run" / f"{f}.png").size for f in ("timeseries", "attractor", "spectra")}
    assert sizes["timeseries"][1] < 1500, sizes   # 4 chosen channels + 2 channel x time images, not 64 panels
    assert sizes["spectra"][0] < 2000, sizes      # 4 chosen channels, not 64 panels of 4 inches
