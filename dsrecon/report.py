"""Figures and the HTML report of a run, built from its run directory (never from memory).

Saved next to the metrics by :func:`plot_run`:
- ``attractor.png``: true test data against the generated free run, on shared axes (the channels, or for more
  than 3 the true data's leading principal components with the free run on the same axes: :mod:`dsrecon.views`)
- ``timeseries.png``: the first steps of the free run against the test data it started from (of more than 6
  channels a few chosen ones, then every channel as a channel x time image)
- ``spectra.png``: smoothed, normalised power spectra per dimension (the spectra D_H and PSC compare)
- ``prediction.png``: PE(n) against n and the median normalised error of the VPT runs (if scored)
- ``lyapunov.png``: the model's Lyapunov exponents ± standard error against the reference (if scored)
- ``loss.png``: training loss and validation D_stsp against steps
- ``lambda_max.png``: the mean log-divergence curve with the fitted region and slope
- ``report.html`` (:func:`write_html`): one self-contained, offline page: every figure embedded as a
  base64 PNG, every score with its variant and noise floor, the configuration.

Across runs: :func:`plot_tau_sweep` (D_stsp / D_H against τ), :func:`compare_table` (one text table),
:func:`score_table` (the scores of one metrics dict).
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np

from . import data as data_mod
from .fileio import atomic_write_bytes
from .metrics import median_mad, smoothed_spectrum
from .views import MANY_CHANNELS, chosen_channels, display_name, principal_projection, shared_limits
from . import runs


def _plt():
    # matplotlib is imported here, on the first figure, so that `import dsrecon` and the CLI start fast
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_run(run_dir, data=None) -> list[Path]:
    """Draw the figures of a run directory and write its report.html (:func:`write_html`); returns their paths.

    ``data``: the dataset the run was fitted on, when the caller holds it (the fit that just wrote the run);
    None reads it through :func:`dsrecon.runs.open` (with its fingerprint check)."""
    run = runs.open(run_dir)
    run_dir, cfg = run.path, run.config_dict
    plt = _plt()
    metrics = run.metrics()
    if data is None:
        data = run.data()
    _, test = data_mod.train_test_split(data)
    true = data_mod.as_array(data_mod.to_physical(test))
    gen = run.generated()["x"].values
    names = [str(d) for d in data["channel"].values]
    written = []

    many = true.shape[1] > MANY_CHANNELS
    title_name = display_name(cfg["data"]["name"])

    # attractor: the channels themselves (3 or fewer), or the true data's leading principal components with the
    # free run projected on the same axes; both panels on the true data's limits
    n = min(20_000, len(true), len(gen))
    if true.shape[1] > 3:
        shown_true, shown_gen, axis_names = principal_projection(true[:n], gen[:n])
    else:
        shown_true, shown_gen, axis_names = true[:n], gen[:n], names
    lims = shared_limits(shown_true)
    fig = plt.figure(figsize=(10, 4.5))
    for i, (arr, title) in enumerate([(shown_true, "true (test split)"), (shown_gen, "generated (free run)")]):
        cols = [0, 1, 2] if arr.shape[1] >= 3 else [0, arr.shape[1] - 1]
        ax = fig.add_subplot(1, 2, i + 1, **({"projection": "3d"} if len(cols) == 3 else {}))
        ax.plot(*(arr[:, c] for c in cols), lw=0.3, color="C0" if i == 0 else "C3")
        for c, setter, limiter in zip(cols, ("set_xlabel", "set_ylabel", "set_zlabel"),
                                      ("set_xlim", "set_ylim", "set_zlim")):
            getattr(ax, setter)(axis_names[c])
            getattr(ax, limiter)(*lims[c])
        ax.set_title(f"{title}, {n} steps")
    verdict = metrics.get("dynamics", {}).get("verdict") if isinstance(metrics.get("dynamics"), dict) else None
    mark = (" (FAILED: " if metrics.get("status") == "failed" else " (") + verdict + ")" if verdict else ""
    fig.suptitle(f"{title_name} / {cfg['model']['kind']}: D_stsp = {float(metrics['D_stsp']):.3g}"  # 'inf' for a diverged model
                 + mark)
    written.append(_save(fig, run_dir / "attractor.png", plt))

    # spectra: every channel, or a few chosen ones of many (the scores average over all of them)
    shown = chosen_channels(true) if many else list(range(true.shape[1]))
    fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.2), squeeze=False)
    sigma = cfg["eval"]["sigma"]
    m = min(len(true), len(gen))
    for j, d in enumerate(shown):
        ax = axes[0, j]
        for arr, label, c in [(true[:m, d], "true", "C0"), (gen[:m, d], "generated", "C3")]:
            if np.all(np.isfinite(arr)) and np.std(arr) > 0:
                s = smoothed_spectrum(arr, sigma)
                n_show = max(10, len(s) // 20)  # the low-frequency part holds nearly all the power
                freq = np.arange(n_show) / (m * float(data.attrs["dt"]))
                ax.semilogy(freq, s[:n_show], label=label, color=c)
        ax.set_title(f"{names[d]}"); ax.set_xlabel("frequency (1 / time unit)")
        if j == 0:
            ax.set_ylabel("normalised power"); ax.legend()
    some = f" ({len(shown)} of {true.shape[1]} channels shown)" if many else ""
    fig.suptitle(f"smoothed power spectra (sigma = {sigma} bins){some}: D_H = {float(metrics['D_H']):.3g}, "
                 f"PSC = {float(metrics['PSC']):.3g}")
    written.append(_save(fig, run_dir / "spectra.png", plt))

    # time-series snippet: generated row i continues the test sample i (row 0 is one step after test[0]); of many
    # channels a few chosen ones, and every channel as a channel x time image (true and generated, one colour scale)
    n_ts = min(1500, len(gen), len(true) - 1)
    dt = float(data.attrs["dt"])
    images = 2 if many else 0
    fig, axes = plt.subplots(len(shown) + images, 1, figsize=(10, 1.8 * (len(shown) + images) + 0.8), sharex=True,
                             squeeze=False)
    tt = np.arange(1, n_ts + 1) * dt
    lims = shared_limits(true[1:n_ts + 1])
    for j, d in enumerate(shown):
        ax = axes[j, 0]
        ax.plot(tt, true[1:n_ts + 1, d], color="C0", lw=0.9, label="true (test split)")
        ax.plot(tt, gen[:n_ts, d], color="C3", lw=0.9, ls="--", label="generated (free run from test[0])")
        ax.set_ylabel(names[d]); ax.set_ylim(*lims[d])
    if many:
        scale = np.nanmax(np.abs(true[1:n_ts + 1]))
        for ax, arr, what in ((axes[-2, 0], true[1:n_ts + 1], "true"), (axes[-1, 0], gen[:n_ts], "generated")):
            ax.imshow(arr.T, aspect="auto", cmap="RdBu_r", vmin=-scale, vmax=scale, interpolation="nearest",
                      extent=(tt[0], tt[-1], arr.shape[1] - 0.5, -0.5))
            ax.set_ylabel(f"{what}: channel")
    axes[-1, 0].set_xlabel("time (time units)")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    lam_ref = float(data.attrs.get("lambda_ref", float("nan")))
    extra = f"; Lyapunov time 1/lambda = {1 / lam_ref:.3g}" if np.isfinite(lam_ref) and lam_ref > 0 else ""
    fig.suptitle(f"{title_name}: first {n_ts} steps{extra}" + (f" ({len(shown)} of {true.shape[1]} channels, "
                                                               "then all of them)" if many else ""))
    written.append(_save(fig, run_dir / "timeseries.png", plt))

    scores = metrics.get("scores", {})
    if "PE" in scores or "VPT" in scores:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), squeeze=False)
        pe = scores.get("PE", {}).get("extra", {}).get("curve")
        if pe:
            axes[0, 0].semilogy(np.arange(1, len(pe) + 1), [float(v) for v in pe], "o-", ms=3)
            axes[0, 0].set_xlabel("n (steps ahead)"); axes[0, 0].set_ylabel("PE(n), MSE")
            axes[0, 0].set_title("n-step prediction error from forced states")
        vc = scores.get("VPT", {}).get("extra", {}).get("median_error_curve")
        if vc:
            v = scores["VPT"]
            lam, thr = float(v["variant"]["lambda_max"]), float(v["variant"]["threshold"])
            k = np.arange(1, len(vc) + 1) * float(v["variant"]["dt"]) * lam
            axes[0, 1].plot(k, [float(e) for e in vc], lw=1)
            axes[0, 1].axhline(thr, color="k", ls=":", label=f"threshold {thr}")
            axes[0, 1].axvline(float(v["value"]), color="C3", ls="--", label=f"median VPT {float(v['value']):.3g}")
            axes[0, 1].set_xlabel("Lyapunov times"); axes[0, 1].set_ylabel("median normalised error")
            axes[0, 1].legend(fontsize=8); axes[0, 1].set_title("valid prediction time")
        written.append(_save(fig, run_dir / "prediction.png", plt))

    spec = scores.get("model_spectrum", {}).get("extra", {})
    if spec.get("model"):
        vals = np.asarray([float(v) for v in spec["model"]])
        se = np.asarray([float(v) for v in spec.get("stderr", [np.nan] * len(vals))])
        fig, ax = plt.subplots(figsize=(6, 3.5))
        i = np.arange(1, len(vals) + 1)
        ax.errorbar(i, vals, yerr=np.where(np.isfinite(se), se, 0), fmt="o", color="C3", capsize=3,
                    label="model (± s.e. over initial conditions)")
        if spec.get("reference"):
            ref = np.asarray([float(v) for v in spec["reference"]])
            ax.plot(np.arange(1, len(ref) + 1), ref, "s", mfc="none", color="C0", label="reference spectrum")
        lref = scores.get("model_lambda_max", {}).get("reference")
        if lref is not None and np.isfinite(float(lref)):
            ax.axhline(float(lref), color="C0", ls="--", lw=1, label=f"reference lambda_max {float(lref):.3g}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("exponent index"); ax.set_ylabel("lambda (per time unit)")
        dky = scores.get("model_D_KY", {})
        ax.set_title(f"Lyapunov spectrum of the model; D_KY = {float(dky.get('value', np.nan)):.3g}")
        ax.legend(fontsize=8)
        written.append(_save(fig, run_dir / "lyapunov.png", plt))

    # loss
    h = run.read("history.json")
    if h is not None:
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
    lam = run.read("lambda_max.json")
    if lam is not None:
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
    written.append(write_html(run))
    return written


def plot_lambda_max(lam, path) -> Path:
    """Save the divergence curve of a :class:`dsrecon.lyapunov.MaxLyapunov` (its own ``plot``) as PNG."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    lam.plot(ax=ax)
    return _save(fig, Path(path), plt)


def _save(fig, path: Path, plt) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


# ------------------------------------------------------------------------------ tables
_FIGURE_ORDER = ["attractor", "timeseries", "spectra", "prediction", "lyapunov", "lambda_max", "loss", "tau_sweep"]


def _num(v) -> float:
    """A metrics.json number (JSON keeps inf/nan as strings) as a float; None and junk as nan."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _fmt(v, digits: int = 4) -> str:
    x = _num(v)
    return "-" if np.isnan(x) and v is None else f"{x:.{digits}g}"


def _score_rows(metrics: dict) -> list[dict]:
    """One row per saved Score (metrics["scores"]), or per plain number for runs written before them."""
    floor = metrics.get("noise_floor", {})
    floor_mad = metrics.get("noise_floor_mad", {})

    def floor_text(key):
        text = _fmt(floor.get(key))
        if floor_mad.get(key) is not None:
            text += f" ± {_fmt(floor_mad[key], 2)}"
        return text

    informative = metrics.get("informative", {})

    def tells(key):
        ok = informative.get(key)
        return "-" if ok is None else ("yes" if ok else "NO: uninformative")

    rows = []
    scores = metrics.get("scores")
    if scores:
        for key, sc in scores.items():
            value = _fmt(sc.get("value"))
            if sc.get("n_init", 1) > 1 and sc.get("spread") is not None:
                value += f" ± {_fmt(sc['spread'], 2)}"
            rows.append({"metric": key, "value": value, "noise floor": floor_text(key), "informative": tells(key),
                         "reference": _fmt(sc.get("reference")), "T_gen": str(sc.get("t_gen") or "-"),
                         "n_init": str(sc.get("n_init", 1)),
                         "variant": ", ".join(f"{k}={v}" for k, v in sc.get("variant", {}).items()),
                         "reason": sc.get("reason", ""), "note_only": bool(sc.get("extra", {}).get("note_only"))})
    else:
        for key in ("D_stsp", "D_H", "PSC"):
            if key in metrics:
                rows.append({"metric": key, "value": _fmt(metrics[key]), "noise floor": _fmt(floor.get(key)),
                             "informative": tells(key),
                             "reference": "-", "T_gen": str(metrics.get("T_gen", "-")), "n_init": "1",
                             "variant": ", ".join(f"{k}={v}" for k, v in
                                                  metrics.get("variants", {}).get(key, {}).items()),
                             "reason": metrics.get("reasons", {}).get(key, "")})
    return rows


def dynamics_line(metrics: dict) -> str:
    """One line: the run's status and the dynamics verdict of its free run next to the data's (issue 15), or
    "" for runs written before verdicts existed."""
    dyn = metrics.get("dynamics")
    if not isinstance(dyn, dict):
        return ""
    period = f", period {dyn['period']} steps" if dyn.get("period") else ""
    data = dyn.get("data", {}).get("verdict", "?") if isinstance(dyn.get("data"), dict) else "?"
    status = str(metrics.get("status", "ok"))
    head = "FAILED" if status == "failed" else status
    why = f" ({metrics['status_reason']})" if metrics.get("status_reason") else ""
    size = dyn.get("size", {}).get("reason") if isinstance(dyn.get("size"), dict) else None
    size = f"; size: {size}" if size and not why else ""   # a failed size is already the status reason
    lam = f"; {dyn['lyapunov_note']}" if dyn.get("lyapunov_note") else ""
    return (f"status {head}{why}; dynamics: {dyn.get('verdict')}{period} (data: {data}); {dyn.get('reason', '')}"
            f"{size}{lam}")


def tau_text(metrics: dict, config: dict | None, lam: dict | None) -> str:
    """The Run table's τ: the one training used, and where it came from; with ``tau`` None (gtf with a fixed α,
    issue 23: the table read "tau: None" after --tau auto) the τ_pred that was estimated and not used."""
    tau, source = metrics.get("tau"), metrics.get("tau_source")
    train = (config or {}).get("train", {}) if isinstance(config, dict) else {}
    if tau is not None:
        return f"{tau} steps" + (f" ({str(source).replace('_', ' ')})" if source else "")
    pred = (lam or {}).get("tau_steps")
    alpha = train.get("gtf_alpha")
    if pred is not None:
        how = str((lam or {}).get("tau_source") or source or "").replace("_", " ")
        return (f"τ_pred = {pred} steps estimated{f' ({how})' if how else ''}, not used by "
                f"{train.get('method', 'the method')} with fixed α = {alpha}")
    return f"none: {train.get('method', 'the method')} with fixed α = {alpha} uses no τ, and none was estimated"


def _text_table(rows: list[dict], columns: list[str]) -> str:
    width = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    lines = ["  ".join(c.ljust(width[c]) for c in columns), "  ".join("-" * width[c] for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(width[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def score_table(metrics: dict) -> str:
    """Text table of a metrics dict (as returned by :func:`dsrecon.evaluate` or read from metrics.json):
    metric, value (± MAD over initial conditions), noise floor, informative (NO when the floor is at least half
    a trivial model's score), reference, T_gen, n_init, variant (cut at 100 characters; ``--json`` and
    report.html have it whole), then the reasons as notes; above it the status and dynamics verdict."""
    rows = [{**r, "variant": r["variant"] if len(r["variant"]) <= 100 else r["variant"][:99] + "…"}
            for r in _score_rows(metrics)]
    text = _text_table(rows, ["metric", "value", "noise floor", "informative", "reference", "T_gen", "n_init",
                              "variant"])
    notes = [f"  {r['metric']}: {r['reason']}" for r in rows if r["reason"]]
    dyn = dynamics_line(metrics)
    return (dyn + "\n" if dyn else "") + text + ("\nnotes:\n" + "\n".join(notes) if notes else "")


def compare_table(run_dirs) -> str:
    """One text table across run directories, from their metrics.json and config.json only.

    Columns: run, dataset, model, method, tau, T_gen, D_stsp (noise floor), D_H (noise floor), PSC, VPT,
    model lambda_max, steps, status (dynamics verdict). A directory that is not a finished run, or whose config.json or metrics.json is
    unreadable, raises DataError naming it (:func:`dsrecon.runs.open`).
    """
    rows = []
    for run in (runs.open(rd, require=("metrics.json", "config.json")) for rd in run_dirs):
        rd, m, c = run.path, run.metrics(), run.info
        cfg = run.config_dict
        nf = m.get("noise_floor", {}) if isinstance(m.get("noise_floor"), dict) else {}
        rows.append({
            "run": rd.name, "dataset": m.get("dataset", cfg.get("data", {}).get("name", "-")),
            "model": m.get("model", cfg.get("model", {}).get("kind", "-")),
            "method": cfg.get("train", {}).get("method", "-"), "tau": str(m.get("tau", c.get("tau_steps", "-"))),
            "T_gen": str(m.get("T_gen", "-")),
            "D_stsp (floor)": f"{_fmt(m.get('D_stsp'))} ({_fmt(nf.get('D_stsp'), 3)})",
            "D_H (floor)": f"{_fmt(m.get('D_H'))} ({_fmt(nf.get('D_H'), 3)})",
            "PSC": _fmt(m.get("PSC")), "VPT": _fmt(m.get("VPT")), "model lambda_max": _fmt(m.get("model_lambda_max")),
            "steps": str(m.get("steps", "-")),
            "status (dynamics)": (f"{m.get('status', 'ok')} ({m['dynamics'].get('verdict')})"
                                  if isinstance(m.get("dynamics"), dict) else "-"),
        })
    return _text_table(rows, list(rows[0]) if rows else ["run"])


# ------------------------------------------------------------------------------ tau sweep
def plot_tau_sweep(run_dirs, path, metrics=("D_stsp", "D_H")) -> Path:
    """D_stsp and D_H (or other saved metrics) against the forcing interval τ across run directories.

    Reads config.json (``tau_steps``, model, method) and metrics.json of each directory; see
    :func:`plot_tau_points` for the drawing. A directory without metrics.json (a run that failed) is
    drawn as diverged when its config.json has a τ.
    """
    points = []
    for run in map(runs.open, run_dirs):
        c, cfg = run.info, run.config
        m = run.metrics() if run.finished else {}
        nf = m.get("noise_floor", {}) if isinstance(m.get("noise_floor"), dict) else {}
        values = {k: _num(m.get(k)) if m else math.inf for k in metrics}
        floor = {k: _num(nf.get(k)) for k in metrics}
        points.append((f"{cfg.model.kind} / {cfg.train.method}", c.get("tau_steps"), values, floor,
                       m.get("dataset", cfg.data.name)))
    return plot_tau_points(points, path, metrics)


def plot_tau_points(points, path, metrics=("D_stsp", "D_H"), title: str | None = None) -> Path:
    """Draw a τ-sweep ("How to train RNNs on chaotic data" Fig. 1): ``points`` are (group, τ in steps or None,
    {metric: value}, {metric: noise floor}, dataset).

    One line per group (model / method) through the median over seeds at each τ, MAD as error bars; a
    non-finite value (a diverged run) counts as inf in the median and is drawn as a cross at the top of the
    axis; groups without τ (bptt-clip, gtf) as horizontal dotted lines at their median; the median noise
    floor dashed; the card's predictability time ln2/λ_ref in steps as a vertical line when the points share a
    dataset.
    """
    plt = _plt()
    groups, flat, floors, datasets = {}, {}, {m: [] for m in metrics}, set()
    for key, tau, values, floor, dataset in points:
        target = flat.setdefault(key, {}) if tau is None else groups.setdefault(key, {}).setdefault(int(tau), {})
        for k in metrics:
            target.setdefault(k, []).append(values.get(k, math.nan))
            floors[k].append(floor.get(k, math.nan))
        datasets.add(dataset)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    tau_pred = None
    if len(datasets) == 1:
        try:
            c = data_mod.card(next(iter(datasets)))
            lam = float(c.get("reference", {}).get("lambda_max", float("nan")))
            tau_pred = math.log(2) / (lam * float(c["sampling"]["dt"])) if lam > 0 else None
        except Exception:  # a dataset no longer registered: no vertical line, nothing else lost
            tau_pred = None
    from matplotlib.ticker import NullFormatter, ScalarFormatter   # deferred like matplotlib itself (_plt)

    for j, k in enumerate(metrics):
        ax = axes[0, j]
        finite = [v for g in list(groups.values()) for per in g.values() for v in per[k] if np.isfinite(v)]
        finite += [v for per in flat.values() for v in per[k] if np.isfinite(v)]
        top = (max(finite) * (2.0 if k == "D_stsp" else 1.1)) if finite else 1.0
        marked = False
        for i, (key, by_tau) in enumerate(sorted(groups.items())):
            taus = np.array(sorted(by_tau), dtype=float)
            stats = np.array([median_mad(by_tau[int(t)][k]) for t in taus])
            med, mad = stats[:, 0], stats[:, 1]
            ok = np.isfinite(med)
            ax.errorbar(taus[ok], med[ok], yerr=np.nan_to_num(mad[ok]), fmt="o-", color=f"C{i}", capsize=2, label=key)
            if (~ok).any():
                ax.plot(taus[~ok], np.full((~ok).sum(), top), "x", color=f"C{i}", ms=9, mew=2,
                        label=None if marked else "median non-finite (diverged)")
                marked = True
        for i, (key, per) in enumerate(sorted(flat.items()), start=len(groups)):
            med = median_mad(per[k])[0]
            if np.isfinite(med):
                ax.axhline(med, color=f"C{i}", ls=":", lw=1.5, label=f"{key} (no tau)")
        fl = [f for f in floors[k] if np.isfinite(f)]
        if fl:
            ax.axhline(float(np.median(fl)), color="k", ls="--", lw=1, label="noise floor")
        if tau_pred:
            ax.axvline(tau_pred, color="k", ls=":", lw=1, label=f"tau_pred = {tau_pred:.1f}")
        ax.set_xscale("log"); ax.set_xlabel("tau (steps)"); ax.set_ylabel(k)
        ax.xaxis.set_major_formatter(ScalarFormatter()); ax.xaxis.set_minor_formatter(NullFormatter())
        if k == "D_stsp":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(title or ", ".join(sorted(map(str, datasets))), fontsize=9)
    return _save(fig, Path(path), plt)


# ------------------------------------------------------------------------------ HTML
_METRIC_REFERENCES = [
    "D_stsp (binned KL of state-space histograms): Koppe et al. 2019; 'How to train RNNs on chaotic data' "
    "(Mikhaeil, Monfared & Durstewitz), App. A.5; legacy variant: DurstewitzLab/ChaosRNN evaluation/klx.py",
    "D_stsp (Gaussian mixture, Monte-Carlo KL): the same code base's evaluation/klz.py, with KL(true||gen) and "
    "sigma^2 = 1 on standardized data",
    "D_H (Hellinger distance of smoothed power spectra): Mikhaeil et al. 2022; Hess et al. 2023; legacy variant: "
    "DurstewitzLab/ChaosRNN evaluation/pse.py",
    "PSC (power-spectrum correlation): 'How to train RNNs on chaotic data' App. A.5",
    "PE(n) (n-step prediction error from forced states): DurstewitzLab/ChaosRNN evaluation/mse.py",
    "VPT (valid prediction time, normalised error threshold 0.5): Pathak et al. 2018; Vlachas et al. 2020",
    "Lyapunov spectrum by QR (Benettin et al. 1980) and Kaplan-Yorke dimension: 'Lyapunov spectra of chaotic "
    "RNNs' (Engelken, Wolf & Abbott 2023) Eq. 3",
    "Partial observation (latents regressed onto the full observations): 'How to train RNNs on chaotic data' "
    "App. A.6.3",
]

_CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #bbb;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#eee}figure{margin:1.5em 0}img{max-width:100%;
border:1px solid #ddd}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}
.bad{color:#b00}"""


def write_html(run) -> Path:
    """Write ``report.html``: a self-contained page (no network, no external files) from the run directory
    ``run`` (a path, or a :class:`dsrecon.runs.RunDir` already opened).

    Contents, all read from disk: the scores of metrics.json (value ± MAD, noise floor, reference, T_gen,
    number of initial conditions, variant, reason), the run summary (dataset, model, τ, steps, times), every
    PNG of the directory embedded as base64 (in the order attractor, timeseries, spectra, prediction,
    lyapunov, lambda_max, loss, then any other), config.json, and the end of train.log.
    """
    run = run if isinstance(run, runs.RunDir) else runs.open(run)
    run_dir = run.path
    metrics = run.metrics() if run.finished else {}
    config = run.info
    e = html.escape
    title = f"dsrecon run {run_dir.name}"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>"]
    summary = {k: metrics.get(k) for k in ("dataset", "model", "tau", "lambda_max", "steps", "stopped",
                                           "train_seconds", "eval_seconds", "T_gen", "T_test") if k in metrics}
    if "tau" in summary:
        summary["tau"] = tau_text(metrics, run.config_dict, run.read("lambda_max.json"))
    if summary:
        parts.append("<h2>Run</h2><table>" + "".join(
            f"<tr><th>{e(k)}</th><td>{e(_fmt(v) if isinstance(v, float) else str(v))}</td></tr>"
            for k, v in summary.items()) + "</table>")
    dyn = dynamics_line(metrics)
    if dyn:
        bad = " class='bad'" if metrics.get("status") == "failed" else ""
        parts.append(f"<h2>Dynamics</h2><p{bad}>{e(dyn)}</p><p>Verdict of the last 20 % of the free run "
                     "(diverged, fixed point, cycle, irregular) and its size next to the data (std and range per channel, "
                     "density overlap); a diverged run, one collapsed to a fixed point while the data are not, one "
                     "shrunk or inflated beyond a factor 5, misplaced, or periodic where the data are irregular, is "
                     "failed whatever its scores (docs/metrics.md).</p>")
    rows = _score_rows(metrics)
    if rows:
        cols = ["metric", "value", "noise floor", "informative", "reference", "T_gen", "n_init", "variant", "reason"]
        parts.append("<h2>Scores</h2><p>Every value with the settings that define it (variant) and the same score "
                     "of an independent true trajectory of the same length (noise floor).</p><table><tr>"
                     + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>")
        for r in rows:
            bad = " class='bad'" if r["reason"] and not r.get("note_only") else ""   # a note is not a failure
            parts.append(f"<tr{bad}>" + "".join(f"<td>{e(str(r[c]))}</td>" for c in cols) + "</tr>")
        parts.append("</table>")
    # only the figures dsrecon draws, by name: any other PNG in the folder is not this run's (issue 26)
    pngs = [run_dir / f"{stem}.png" for stem in _FIGURE_ORDER
            if (run_dir / f"{stem}.png").is_file() and not (run_dir / f"{stem}.png").is_symlink()]
    if pngs:
        parts.append("<h2>Figures</h2>")
        for p in pngs:
            b64 = base64.b64encode(p.read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{e(p.stem)}' src='data:image/png;base64,{b64}'>"
                         f"<figcaption>{e(p.name)}</figcaption></figure>")
    if config:
        parts.append("<h2>Configuration</h2><pre>" + e(json.dumps(config, indent=2)) + "</pre>")
    parts.append("<h2>Where the metrics come from</h2><ul>" + "".join(f"<li>{e(r)}</li>" for r in _METRIC_REFERENCES)
                 + "</ul>")
    log_path = run_dir / "train.log"
    if log_path.exists():
        tail = log_path.read_text(errors="replace").splitlines()[-40:]
        parts.append("<h2>train.log (last lines)</h2><pre>" + e("\n".join(tail)) + "</pre>")
    parts.append("</body></html>\n")
    out = run_dir / "report.html"
    atomic_write_bytes(out, "\n".join(parts).encode("utf-8"))
    return out
