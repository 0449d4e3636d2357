"""Figures of a run, built from its run directory (never from memory), saved next to the metrics.

- ``attractor.png``: true test data against the generated free run (3-d projection or pairs)
- ``spectra.png``: smoothed, normalised power spectra per dimension (the spectra D_H and PSC compare)
- ``loss.png``: training loss and validation D_stsp against steps
- ``lambda_max.png``: the mean log-divergence curve with the fitted region and slope
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_run(run_dir) -> list[Path]:
    from . import data as data_mod
    from .metrics import smoothed_spectrum
    from .runs import read_json

    run_dir = Path(run_dir)
    plt = _plt()
    cfg = read_json(run_dir / "config.json")["config"]
    metrics = read_json(run_dir / "metrics.json")
    data = data_mod.load(cfg["data"]["name"], seed=cfg["data"]["seed"])
    _, test = data_mod.train_test_split(data)
    true = data_mod.as_array(data_mod.to_physical(test))
    gen = data_mod.read_netcdf(run_dir / "generated.nc")["x"].values
    names = [str(d) for d in data["dim"].values]
    written = []

    # attractor
    n = min(20_000, len(true), len(gen))
    fig = plt.figure(figsize=(10, 4.5))
    for i, (arr, title) in enumerate([(true[:n], "true (test split)"), (gen[:n], "generated (free run)")]):
        if arr.shape[1] >= 3:
            ax = fig.add_subplot(1, 2, i + 1, projection="3d")
            ax.plot(arr[:, 0], arr[:, 1], arr[:, 2], lw=0.3, color="C0" if i == 0 else "C3")
            ax.set_xlabel(names[0]); ax.set_ylabel(names[1]); ax.set_zlabel(names[2])
        else:
            ax = fig.add_subplot(1, 2, i + 1)
            ax.plot(arr[:, 0], arr[:, -1], lw=0.3, color="C0" if i == 0 else "C3")
            ax.set_xlabel(names[0]); ax.set_ylabel(names[-1])
        ax.set_title(f"{title}, {n} steps")
    fig.suptitle(f"{cfg['data']['name']} / {cfg['model']['kind']}: D_stsp = {float(metrics['D_stsp']):.3g}")  # 'inf' for a diverged model
    written.append(_save(fig, run_dir / "attractor.png", plt))

    # spectra
    dims = true.shape[1]
    fig, axes = plt.subplots(1, dims, figsize=(4 * dims, 3.2), squeeze=False)
    sigma = cfg["eval"]["sigma"]
    m = min(len(true), len(gen))
    for d in range(dims):
        ax = axes[0, d]
        for arr, label, c in [(true[:m, d], "true", "C0"), (gen[:m, d], "generated", "C3")]:
            if np.all(np.isfinite(arr)) and np.std(arr) > 0:
                s = smoothed_spectrum(arr, sigma)
                n_show = max(10, len(s) // 20)  # the low-frequency part holds nearly all the power
                freq = np.arange(n_show) / (m * float(data.attrs["dt"]))
                ax.semilogy(freq, s[:n_show], label=label, color=c)
        ax.set_title(f"{names[d]}"); ax.set_xlabel("frequency (1 / time unit)")
        if d == 0:
            ax.set_ylabel("normalised power"); ax.legend()
    fig.suptitle(f"smoothed power spectra (sigma = {sigma} bins): D_H = {float(metrics['D_H']):.3g}, PSC = {float(metrics['PSC']):.3g}")
    written.append(_save(fig, run_dir / "spectra.png", plt))

    # loss
    hist_path = run_dir / "history.json"
    if hist_path.exists():
        h = read_json(hist_path)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.semilogy(h["step"], h["loss"], lw=0.5, label="training loss (MSE)")
        ax.set_xlabel("step"); ax.set_ylabel("loss")
        if h.get("val_step"):
            ax2 = ax.twinx()
            ax2.plot(h["val_step"], [float(v) for v in h["val_d_stsp"]], "o-", color="C3", ms=3,
                     label="validation D_stsp")
            ax2.set_ylabel("validation D_stsp"); ax2.set_yscale("log")
            ax2.legend(loc="upper right")
        ax.legend(loc="upper left")
        written.append(_save(fig, run_dir / "loss.png", plt))

    # lambda_max divergence curve
    lam_path = run_dir / "lambda_max.json"
    if lam_path.exists():
        lam = read_json(lam_path)
        lags, curve = np.asarray(lam["lags"]), np.asarray(lam["curve"])
        a, b = lam["fit_range"]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(lags, curve, ".-", ms=2, lw=0.8, label="mean log divergence")
        sel = lags[a:b]
        ax.plot(sel, lam["intercept"] + lam["per_step"] * sel, "r-", lw=2,
                label=f"fit: {lam['value']:.3g} per time unit ({lam['per_step']:.3g}/step)")
        ax.axvspan(lags[a], lags[b - 1], color="r", alpha=0.1)
        ax.set_xlabel("lag (steps)"); ax.set_ylabel("<ln d>"); ax.legend()
        written.append(_save(fig, run_dir / "lambda_max.png", plt))
    return written


def plot_lambda_max(lam, path) -> Path:
    """Save the divergence curve of a :class:`dsrecon.lyapunov.MaxLyapunov` (its own ``plot``) as PNG."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    lam.plot(ax=ax)
    return _save(fig, Path(path), plt)


def _save(fig, path: Path, plt) -> Path:
    from .runs import atomic_write_bytes
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
