"""Leaderboard: a sweep's results file -> markdown and HTML tables of median ± MAD over seeds.

One row per (dataset, model, method, τ) — and per sweep when the file holds several — sorted within
each dataset by the median D_stsp. Each cell is median ± MAD (unscaled median absolute deviation)
over the seeds that finished; a diverged run counts as inf (the worst value), and ``ok/n`` says how many
runs finished with scores. Every table names T_gen, the metric variants, and the noise floor: the same
scores of an independent true trajectory of length T_gen, i.e. what a perfect model would get.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from .metrics import median_mad

METRICS = ("D_stsp", "D_H", "PSC")
#: lower is better, except PSC
HIGHER_IS_BETTER = {"PSC", "VPT"}


def _fmt(med: float, mad: float) -> str:
    if math.isnan(med):
        return "–"
    if math.isinf(med):
        return "inf"
    if 0 < abs(med) < 0.01:   # e.g. the Monte-Carlo D_stsp of a near-perfect 10-d fit
        return f"{med:.1e} ± {mad:.0e}" if math.isfinite(mad) else f"{med:.1e}"
    digits = 3 if abs(med) < 10 else 1
    return f"{med:.{digits}f} ± {mad:.{digits}f}" if math.isfinite(mad) else f"{med:.{digits}f}"


def leaderboard_rows(results, metrics=METRICS) -> list[dict]:
    """Aggregate a results dataset (:func:`dsrecon.sweep.read_results`) into rows of medians and MADs."""
    ds = results
    keys = ("sweep", "dataset", "model", "method", "tau")
    groups: dict[tuple, list[int]] = {}
    for i in range(ds.sizes["run"]):
        groups.setdefault(tuple(str(ds[k].values[i]) for k in keys), []).append(i)
    rows = []
    for gk, idx in groups.items():
        status = [str(ds["status"].values[i]) for i in idx]
        row = dict(zip(keys, gk))
        row["n"], row["ok"] = len(idx), sum(s == "ok" for s in status)
        for m in metrics:
            vals = np.array([ds[m].values[i] if status[j] == "ok" else math.inf
                             for j, i in enumerate(idx)], dtype=float)
            if m in HIGHER_IS_BETTER:   # a failed run is the worst value: 0 correlation / no valid time
                vals[[j for j, s in enumerate(status) if s != "ok"]] = math.nan
            row[m] = median_mad(vals)
            row[f"floor_{m}"] = median_mad(ds[f"floor_{m}"].values[idx]) if f"floor_{m}" in ds else (math.nan,) * 2
        row["T_gen"] = sorted({int(v) for v in ds["T_gen"].values[idx] if np.isfinite(v)})
        row["tau_steps"] = sorted({int(v) for v in ds["tau_steps"].values[idx] if np.isfinite(v)})
        row["steps"] = median_mad(ds["steps"].values[idx])[0]
        row["train_seconds"] = median_mad(ds["train_seconds"].values[idx])[0]
        row["reasons"] = sorted({str(ds["reason"].values[i]) for i in idx if str(ds["reason"].values[i])})
        rows.append(row)
    first = metrics[0]
    sign = -1.0 if first in HIGHER_IS_BETTER else 1.0
    rows.sort(key=lambda r: (r["dataset"], r["sweep"], sign * np.nan_to_num(r[first][0], nan=math.inf),
                             r["model"], r["method"]))
    return rows


def _variants_note(results) -> list[str]:
    """One line per metric when every dataset used the same variant, else one per dataset."""
    by_dataset = json.loads(results.attrs.get("metric_variants", "{}"))   # {dataset: {metric: variant}}
    notes = []
    for m in ("D_stsp", "D_H", "PSC"):
        seen = {d: json.dumps(v[m], default=str) for d, v in sorted(by_dataset.items()) if m in v}
        if len(set(seen.values())) == 1:
            notes.append(f"{m}: {next(iter(seen.values()))}")
        else:
            notes += [f"{m} ({d}): {v}" for d, v in seen.items()]
    return notes


def _table(rows, metrics, several_sweeps: bool) -> tuple[list[str], list[list[str]]]:
    head = (["sweep"] if several_sweeps else []) + ["dataset", "model", "method", "τ (steps)", "ok/n"]
    head += [f"{m} (median ± MAD)" for m in metrics] + [f"{m} floor" for m in metrics[:2]] + ["T_gen", "train s"]
    body = []
    for r in rows:
        tau = ",".join(map(str, r["tau_steps"])) if r["tau_steps"] else ("–" if r["tau"] == "-" else r["tau"])
        line = ([r["sweep"]] if several_sweeps else []) + [r["dataset"], r["model"], r["method"], tau, f"{r['ok']}/{r['n']}"]
        line += [_fmt(*r[m]) for m in metrics]
        line += [_fmt(r[f"floor_{m}"][0], math.nan) for m in metrics[:2]]
        line += [",".join(map(str, r["T_gen"])) or "–", "–" if math.isnan(r["train_seconds"]) else f"{r['train_seconds']:.0f}"]
        body.append(line)
    return head, body


def to_markdown(results, metrics=METRICS) -> str:
    rows = leaderboard_rows(results, metrics)
    several = len({r["sweep"] for r in rows}) > 1
    head, body = _table(rows, metrics, several)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(b) + " |" for b in body]
    notes = ["", "Median ± MAD over seeds; a run that failed counts as inf. Floor: the same score of an independent "
             "true trajectory of length T_gen (what a perfect model gets).", "Metric variants:"]
    notes += [f"- {n}" for n in _variants_note(results)]
    fails = [f"- {r['dataset']} {r['model']} {r['method']}: {'; '.join(r['reasons'])}" for r in rows if r["reasons"]]
    if fails:
        notes += ["", "Failed runs:"] + fails
    return "\n".join(lines + notes) + "\n"


def to_html(results, metrics=METRICS, title: str = "dsrecon leaderboard") -> str:
    rows = leaderboard_rows(results, metrics)
    several = len({r["sweep"] for r in rows}) > 1
    head, body = _table(rows, metrics, several)
    first_metric = head.index(f"{metrics[0]} (median ± MAD)")
    best = {}
    for r, b in zip(rows, body):   # the best median D_stsp per dataset is shown in bold
        v = r[metrics[0]][0]
        if math.isfinite(v) and v < best.get(r["dataset"], (math.inf,))[0]:
            best[r["dataset"]] = (v, id(b))
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
           "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
           "td:nth-child(-n+4){text-align:left}.best{font-weight:bold;background:#efe}</style></head><body>",
           f"<h1>{html.escape(title)}</h1><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for r, b in zip(rows, body):
        cls = " class='best'" if best.get(r["dataset"], (None, None))[1] == id(b) else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in b) + "</tr>")
    out.append("</table><p>Median ± MAD over seeds; a failed run counts as inf. Floor: the same score of an independent "
               "true trajectory of length T_gen. Bold: the lowest median "
               f"{html.escape(metrics[0])} per dataset.</p><ul>")
    out += [f"<li><code>{html.escape(n)}</code></li>" for n in _variants_note(results)]
    out.append("</ul></body></html>")
    return "\n".join(out)


def write_leaderboard(results, out_dir=None, metrics=METRICS) -> tuple[Path, Path]:
    """Write leaderboard.md and leaderboard.html next to the results (or into ``out_dir``)."""
    from .runs import atomic_write_bytes
    from .sweep import read_results

    src = Path(results)
    ds = read_results(src)
    folder = Path(out_dir) if out_dir is not None else (src if src.is_dir() else src.parent)
    md, page = folder / "leaderboard.md", folder / "leaderboard.html"
    atomic_write_bytes(md, to_markdown(ds, metrics).encode())
    atomic_write_bytes(page, to_html(ds, metrics).encode())
    plot_tau_sweeps(ds, folder)
    return md, page


def plot_tau_sweeps(results, out_dir, metrics=("D_stsp", "D_H")) -> list[Path]:
    """One τ-sweep figure per dataset that was run at two or more τ (``tau_sweep-<dataset>.png``).

    Points: τ in steps of each run (the chosen one for ``auto``), its scores (a failed run counts as
    diverged: inf), its noise floor; runs without τ (gtf, bptt-clip) become horizontal lines. Drawn by
    :func:`dsrecon.report.plot_tau_points`.
    """
    from .report import plot_tau_points

    ds = results
    written = []
    for dataset in sorted(set(map(str, ds["dataset"].values))):
        idx = [i for i in range(ds.sizes["run"]) if str(ds["dataset"].values[i]) == dataset]
        points, taus = [], set()
        for i in idx:
            ok = str(ds["status"].values[i]) == "ok"
            steps, tau = float(ds["tau_steps"].values[i]), str(ds["tau"].values[i])
            if math.isfinite(steps):
                t = int(steps)
            elif tau.isdigit():
                t = int(tau)
            elif tau == "-":
                t = None
            else:
                continue   # an "auto" run that failed before τ was chosen: no place on the axis
            if t is not None:
                taus.add(t)
            points.append((f"{ds['model'].values[i]} / {ds['method'].values[i]}", t,
                           {m: float(ds[m].values[i]) if ok else math.inf for m in metrics},
                           {m: float(ds[f"floor_{m}"].values[i]) if f"floor_{m}" in ds else math.nan for m in metrics},
                           dataset))
        if len(taus) >= 2:
            safe = Path(dataset).stem
            written.append(plot_tau_points(points, Path(out_dir) / f"tau_sweep-{safe}.png", metrics,
                                           title=f"{dataset}: tau sweep (median ± MAD over seeds)"))
    return written
