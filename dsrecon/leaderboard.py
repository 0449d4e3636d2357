"""Leaderboard: a sweep's results file -> markdown and HTML tables of median ± MAD over seeds.

One row per (dataset, model, method, τ) — and per sweep when the file holds several, and per config: runs
whose settings differ other than by seed (their ``config_hash``) are never seeds of one row — sorted within
each dataset by the median of the first metric (D_stsp by default). Each cell is median ± MAD (unscaled
median absolute deviation) over the seeds; a failed run (``status = "failed"``: diverged, not chaotic) counts
as the worst value of each metric in its direction (:data:`WORST`: inf for D_stsp, D_H, PE, −1 for PSC, a
correlation, 0 for VPT), and ``ok/n`` says how many of the n runs finished with scores; n also counts the
sweep's runs that have no result yet (lost or not run: :func:`expected_runs` reads them from ``sweep.json``),
which change no median and are listed under the table. The best median of
each metric per dataset is bold (lowest or highest, :data:`DIRECTION`). Every table names T_gen, the metric
variants, and the noise floor: the same scores of an independent true trajectory of length T_gen, i.e. what
a perfect model would get. When rows differ only by config, a ``config`` column names each (its hash) and a note
says which settings differ; a row whose runs ran on different data (``data_fingerprint``) is noted too.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .fileio import atomic_write_bytes
from .metrics import median_mad
from .report import plot_tau_points
from .results import check_out_dir, read_results

METRICS = ("D_stsp", "D_H", "PSC")
#: the scores a leaderboard can show and rank by: +1 lower is better, -1 higher is better
DIRECTION = {"D_stsp": 1, "D_H": 1, "PSC": -1, "D_stsp_legacy": 1, "D_H_legacy": 1, "PE": 1, "VPT": -1}
HIGHER_IS_BETTER = {m for m, d in DIRECTION.items() if d < 0}
#: what a failed run counts as: the worst value in the metric's direction (PSC is a correlation: −1 is its
#: worst; VPT is a time in Lyapunov times: 0, no valid prediction at all)
WORST = {m: (-1.0 if m == "PSC" else 0.0) if d < 0 else math.inf for m, d in DIRECTION.items()}


def check_metrics(metrics) -> tuple[str, ...]:
    """The metric names as a tuple, or ConfigError naming the unknown one and the known ones."""
    metrics = tuple(metrics)
    for m in metrics:
        if m not in DIRECTION:
            raise ConfigError(f"unknown metric {m!r}; known: {', '.join(DIRECTION)}")
    if not metrics:
        raise ConfigError(f"no metric given; known: {', '.join(DIRECTION)}")
    return metrics


def _fmt(med: float, mad: float) -> str:
    if math.isnan(med):
        return "–"
    if math.isinf(med):
        return "inf"
    if 0 < abs(med) < 0.01:   # e.g. the Monte-Carlo D_stsp of a near-perfect 10-d fit
        return f"{med:.1e} ± {mad:.0e}" if math.isfinite(mad) else f"{med:.1e}"
    digits = 3 if abs(med) < 10 else 1
    return f"{med:.{digits}f} ± {mad:.{digits}f}" if math.isfinite(mad) else f"{med:.{digits}f}"


def expected_runs(folder) -> list[dict]:
    """The runs the last sweep into ``folder`` planned (``sweep.json``: key, dataset, model, method, tau, seed,
    and the sweep's name), or [] when there is no readable sweep.json (a results file on its own)."""
    try:
        info = json.loads((Path(folder) / "sweep.json").read_bytes())
        runs = info.get("run_info", [])
        name = str(info.get("name", ""))
        return [{**r, "sweep": name, "tau": "-" if r.get("tau") is None else str(r["tau"]), "dataset": str(r["dataset"])}
                for r in runs if isinstance(r, dict) and all(k in r for k in ("key", "dataset", "model", "method"))]
    except (OSError, ValueError, AttributeError, TypeError):
        return []


def leaderboard_rows(results, metrics=METRICS, expected=()) -> list[dict]:
    """Aggregate a results dataset (:func:`dsrecon.results.read_results`) into rows of medians and MADs.

    A failed run counts as :data:`WORST` of each metric; runs that finished without a value (NaN) are left out.
    ``expected`` (:func:`expected_runs`): planned runs; those without a row are counted in ``n`` and ``missing``.
    """
    ds = results
    metrics = check_metrics(metrics)
    for m in metrics:
        if m not in ds:
            raise DataError(f"the results have no {m!r} column (written by an older dsrecon?); choose among "
                            f"{', '.join(k for k in DIRECTION if k in ds)}")
    keys = ("sweep", "dataset", "model", "method", "tau", "config_hash")
    col = {k: [str(v) for v in ds[k].values] if k in ds else [""] * ds.sizes["run"] for k in (*keys, *CONFIG_COLS)}
    groups: dict[tuple, list[int]] = {}
    for i in range(ds.sizes["run"]):
        groups.setdefault(tuple(col[k][i] for k in keys), []).append(i)
    have = set(map(str, ds["key"].values))
    missing: dict[tuple, int] = {}
    for r in expected:
        if str(r["key"]) not in have:
            gk = tuple(str(r.get(k) or "") for k in keys)
            groups.setdefault(gk, [])
            missing[gk] = missing.get(gk, 0) + 1
    rows = []
    for gk, idx in groups.items():
        status = [str(ds["status"].values[i]) for i in idx]
        row = dict(zip(keys, gk))
        row["missing"] = missing.get(gk, 0)
        row["n"], row["ok"] = len(idx) + row["missing"], sum(s == "ok" for s in status)
        for m in metrics:
            vals = np.array([ds[m].values[i] if status[j] == "ok" else WORST[m]
                             for j, i in enumerate(idx)], dtype=float)
            row[m] = median_mad(vals)
            row[f"floor_{m}"] = median_mad(ds[f"floor_{m}"].values[idx]) if f"floor_{m}" in ds else (math.nan,) * 2
        row["T_gen"] = sorted({int(v) for v in ds["T_gen"].values[idx] if np.isfinite(v)})
        row["tau_steps"] = sorted({int(v) for v in ds["tau_steps"].values[idx] if np.isfinite(v)})
        row["steps"] = median_mad(ds["steps"].values[idx])[0]
        row["train_seconds"] = median_mad(ds["train_seconds"].values[idx])[0]
        row["reasons"] = sorted({str(ds["reason"].values[i]) for i in idx if str(ds["reason"].values[i])})
        row["config"] = next((col["config"][i] for i in idx if col["config"][i]), "")
        row["data"] = sorted({col["data_fingerprint"][i] for i in idx if col["data_fingerprint"][i]})
        rows.append(row)
    first = metrics[0]
    rows.sort(key=lambda r: (r["dataset"], r["sweep"],
                             math.inf if math.isnan(r[first][0]) else DIRECTION[first] * r[first][0],
                             r["model"], r["method"]))
    return rows


CONFIG_COLS = ("config", "data_fingerprint")   # results.nc's provenance the leaderboard reads ("" when unknown)


def _base(r: dict) -> tuple:
    return r["sweep"], r["dataset"], r["model"], r["method"], r["tau"]


def _flat_config(text: str) -> dict:
    try:
        cfg = json.loads(text) if text else {}
    except ValueError:
        cfg = {}
    return {f"{s}.{k}": v for s, sec in (cfg.items() if isinstance(cfg, dict) else ()) if isinstance(sec, dict)
            for k, v in sec.items() if f"{s}.{k}" != "train.seed"}


def config_notes(rows) -> list[str]:
    """One line per (sweep, dataset, model, method, τ) that has rows of several configs, naming each config's hash
    and the settings in which they differ; and one per row whose runs ran on different data."""
    by: dict[tuple, list[dict]] = {}
    for r in rows:
        by.setdefault(_base(r), []).append(r)
    notes = []
    for base, rs in by.items():
        if len(rs) > 1:
            flats = [_flat_config(r["config"]) for r in rs]
            show = [{k: json.dumps(v, default=str) for k, v in f.items()} for f in flats]
            differ = sorted({k for f in show for k in f if len({g.get(k, "null") for g in show}) > 1})
            parts = [f"{r['config_hash'][:8] or '(unknown)'}: " + (", ".join(f"{k} = {f.get(k, 'null')}" for k in differ)
                     if f and differ else "settings not recorded") for r, f in zip(rs, show)]
            notes.append(f"{' '.join(base[1:4])}: {len(rs)} configs, not seeds of one another: {'; '.join(parts)}")
    for r in rows:
        if len(r["data"]) > 1:
            fps = ", ".join(d[:8] for d in r["data"])
            notes.append(f"{r['dataset']} {r['model']} {r['method']}: its runs ran on {len(r['data'])} different data "
                         f"(fingerprints {fps}); run the sweep again with all its seeds")
    return notes


def _several_configs(rows) -> bool:
    return len({_base(r) for r in rows}) < len(rows)


def _can_be_best(r: dict, m: str) -> bool:
    """A median that may be bold: finite, from a row with at least one finished run, and not the stand-in of
    failed runs (:data:`WORST`: PSC −1, VPT 0, when at least half of the row's runs failed)."""
    med = r[m][0]
    return r["ok"] > 0 and math.isfinite(med) and med != WORST[m]


def best_cells(rows, metrics) -> set[tuple[int, str]]:
    """(row index, metric) of the best median of each metric within each dataset (ties: all of them), in the
    metric's direction (:data:`DIRECTION`); a median that failed runs decide is never the best (:func:`_can_be_best`)."""
    best: dict[tuple[str, str], float] = {}
    for r in rows:
        for m in metrics:
            v = DIRECTION[m] * r[m][0]
            if _can_be_best(r, m) and v < best.get((r["dataset"], m), math.inf):
                best[(r["dataset"], m)] = v
    return {(i, m) for i, r in enumerate(rows) for m in metrics
            if (r["dataset"], m) in best and _can_be_best(r, m) and DIRECTION[m] * r[m][0] == best[(r["dataset"], m)]}


_MD_ESCAPES = {"\\": "\\\\", "|": "\\|", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]",
               "&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md_escape(text) -> str:
    """``text`` safe in a markdown table cell or list item: ``|`` cannot end the cell, no HTML tag or entity
    reaches the renderer (``<``, ``>``, ``&`` as entities), no code span, bold or link starts (`` ` ``, ``*``, ``[``,
    ``]`` and ``\\`` backslash-escaped; ``_`` is left alone: file names are full of it, and it cannot break the
    table), and a newline or other control character cannot break the line (a newline or tab becomes a space, the
    others their ``\\xNN`` code)."""
    out = []
    for ch in str(text):
        if ch in _MD_ESCAPES:
            out.append(_MD_ESCAPES[ch])
        elif ch in "\n\r\t\v\f":
            out.append(" ")
        elif ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 or ch in "\u2028\u2029":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _direction_note(metrics) -> str:
    low = [m for m in metrics if DIRECTION[m] > 0]
    high = [m for m in metrics if DIRECTION[m] < 0]
    worst = ", ".join(f"{m} {_fmt(WORST[m], math.nan)}" for m in metrics)
    parts = ([f"lowest {', '.join(low)}"] if low else []) + ([f"highest {', '.join(high)}"] if high else [])
    return (f"Median ± MAD over seeds; a failed run counts as the worst value ({worst}). Bold: the best median per "
            f"dataset ({'; '.join(parts)}).")


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


def _table(rows, metrics, several_sweeps: bool, bold=lambda text: text) -> tuple[list[str], list[list[str]]]:
    configs = _several_configs(rows)
    head = (["sweep"] if several_sweeps else []) + ["dataset", "model", "method", "τ (steps)"]
    head += (["config"] if configs else []) + ["ok/n"]
    head += [f"{m} (median ± MAD)" for m in metrics] + [f"{m} floor" for m in metrics[:2]] + ["T_gen", "train s"]
    body = []
    best = best_cells(rows, metrics)
    for i, r in enumerate(rows):
        tau = ",".join(map(str, r["tau_steps"])) if r["tau_steps"] else ("–" if r["tau"] == "-" else r["tau"])
        line = ([r["sweep"]] if several_sweeps else []) + [r["dataset"], r["model"], r["method"], tau]
        line += ([r["config_hash"][:8] or "–"] if configs else []) + [f"{r['ok']}/{r['n']}"]
        line += [bold(_fmt(*r[m])) if (i, m) in best else _fmt(*r[m]) for m in metrics]
        line += [_fmt(r[f"floor_{m}"][0], math.nan) for m in metrics[:2]]
        line += [",".join(map(str, r["T_gen"])) or "–", "–" if math.isnan(r["train_seconds"]) else f"{r['train_seconds']:.0f}"]
        body.append(line)
    return head, body


def to_markdown(results, metrics=METRICS, expected=()) -> str:
    rows = leaderboard_rows(results, metrics, expected)
    several = len({r["sweep"] for r in rows}) > 1
    best = best_cells(rows, metrics)
    head, body = _table(rows, metrics, several)
    cols = {head.index(f"{m} (median ± MAD)"): m for m in metrics}
    body = [[f"**{md_escape(c)}**" if (i, cols.get(j)) in best else md_escape(c) for j, c in enumerate(b)]
            for i, b in enumerate(body)]
    lines = ["| " + " | ".join(map(md_escape, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(b) + " |" for b in body]
    notes = ["", _direction_note(metrics) + " Floor: the same score of an independent true trajectory of length "
             "T_gen (what a perfect model gets).", "Metric variants:"]
    notes += [f"- {md_escape(n)}" for n in _variants_note(results)]
    fails = [f"- {md_escape(r['dataset'])} {md_escape(r['model'])} {md_escape(r['method'])}: "
             f"{md_escape('; '.join(r['reasons']))}" for r in rows if r["reasons"]]
    if fails:
        notes += ["", "Failed runs:"] + fails
    mixed = config_notes(rows)
    if mixed:
        notes += ["", "Configs (rows that differ in settings other than the seed; config: the hash of its settings):"]
        notes += [f"- {md_escape(n)}" for n in mixed]
    lost = [f"- {md_escape(r['dataset'])} {md_escape(r['model'])} {md_escape(r['method'])}: {r['missing']} of {r['n']}"
            for r in rows if r["missing"]]
    if lost:
        notes += ["", "Missing runs (no result: lost or not run yet; rerun the sweep with the same --out):"] + lost
    return "\n".join(lines + notes) + "\n"


def to_html(results, metrics=METRICS, title: str = "dsrecon leaderboard", expected=()) -> str:
    rows = leaderboard_rows(results, metrics, expected)
    several = len({r["sweep"] for r in rows}) > 1
    head, body = _table(rows, metrics, several)
    best = {(i, head.index(f"{m} (median ± MAD)")) for i, m in best_cells(rows, metrics)}
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
           "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
           "td:nth-child(-n+4){text-align:left}td.best{font-weight:bold;background:#efe}</style></head><body>",
           f"<h1>{html.escape(title)}</h1><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for i, b in enumerate(body):
        out.append("<tr>" + "".join(("<td class='best'>" if (i, j) in best else "<td>") + f"{html.escape(c)}</td>"
                                    for j, c in enumerate(b)) + "</tr>")
    out.append(f"</table><p>{html.escape(_direction_note(metrics))} Floor: the same score of an independent "
               "true trajectory of length T_gen.</p><ul>")
    out += [f"<li><code>{html.escape(n)}</code></li>" for n in _variants_note(results)]
    out += ["</ul><ul>"] + [f"<li>{html.escape(n)}</li>" for n in config_notes(rows)]
    out.append("</ul></body></html>")
    return "\n".join(out)


def write_leaderboard(results, out_dir=None, metrics=METRICS) -> tuple[Path, Path]:
    """Write leaderboard.md and leaderboard.html next to the results (or into ``out_dir``)."""
    src = Path(results)
    ds = read_results(src)
    folder = Path(out_dir) if out_dir is not None else (src if src.is_dir() else src.parent)
    what = "--out" if out_dir is not None else "the results' folder (choose another with --out)"
    check_out_dir(folder, what)
    expected = expected_runs(src if src.is_dir() else src.parent)
    text, page_text = to_markdown(ds, metrics, expected), to_html(ds, metrics, expected=expected)   # any error in the tables: nothing written
    md, page = folder / "leaderboard.md", folder / "leaderboard.html"
    try:
        atomic_write_bytes(md, text.encode())
        atomic_write_bytes(page, page_text.encode())
        plot_tau_sweeps(ds, folder)
    except OSError as err:
        raise ConfigError(f"cannot write the leaderboard into {what} {folder}: {err.strerror or err}") from None
    return md, page


def plot_tau_sweeps(results, out_dir, metrics=("D_stsp", "D_H")) -> list[Path]:
    """One τ-sweep figure per dataset that was run at two or more τ (``tau_sweep-<dataset>.png``).

    Points: τ in steps of each run (the chosen one for ``auto``), its scores (a failed run counts as
    diverged: inf), its noise floor; runs without τ (gtf, bptt-clip) become horizontal lines. Drawn by
    :func:`dsrecon.report.plot_tau_points`.
    """
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
