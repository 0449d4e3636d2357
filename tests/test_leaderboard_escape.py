"""Leaderboards escape what they print and bold only a real best (issue 26, part 7): a `|` in a dataset path
no longer shifts the scores a column, `<svg onload=…>` never reaches a renderer raw (markdown or HTML), a newline
or backtick cannot break a line or open a code span, and a median that failed runs decide (PSC −1, the worst
value a failed run counts as: leaderboard.WORST) is never bolded as the best."""
from __future__ import annotations

import math
import re

from hostile import run_cli

from dsrecon import leaderboard as L, results as R

SVG = "<svg onload=alert(1)>"


def _record(key, dataset="lorenz", model="plrnn", method="gtf", seed=0, status="ok", reason="training diverged",
            **metrics):
    ok = status == "ok"
    return {"key": key, "dataset": dataset, "model": model, "method": method, "tau": None, "seed": seed,
            "status": status, "reason": "" if ok else reason, "tau_steps": None, "sweep": "s", "run_dir": "",
            "metrics": {"D_stsp": 1.0, "D_H": 0.1, "PSC": 0.9, "T_gen": 1000.0, "train_seconds": 1.0, **metrics}
            if ok else {}, "noise_floor": {}, "variants": {}}


def _results(tmp_path, records):
    R.append_results(tmp_path / "results.nc", records)
    return R.read_results(tmp_path)


def _cells(line: str) -> list[str]:
    """A markdown table row split where GitHub splits it: at every `|` not escaped by a backslash."""
    assert line.startswith("| ") and line.endswith(" |"), line
    return [c.strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def _table(md: str) -> list[list[str]]:
    return [_cells(line) for line in md.splitlines() if line.startswith("| ")]


def test_a_pipe_in_a_dataset_path_keeps_every_score_in_its_column(tmp_path):
    ds = _results(tmp_path, [_record("a0", dataset="data/a|b.csv", D_stsp=0.25),
                             _record("b0", dataset="plain.csv", D_stsp=0.5)])
    head, *rows = _table(L.to_markdown(ds))
    assert all(len(r) == len(head) for r in rows), rows
    col = head.index("D_stsp (median ± MAD)")
    by_dataset = {r[0]: r for r in rows}
    assert set(by_dataset) == {r"data/a\|b.csv", "plain.csv"}
    # one run each: the median is its value, the MAD 0 (leaderboard._fmt, 3 decimals below 10); each the only
    # (so the best, bold) entry of its own dataset
    assert by_dataset[r"data/a\|b.csv"][col] == "**0.250 ± 0.000**"
    assert by_dataset["plain.csv"][col] == "**0.500 ± 0.000**"


def test_html_and_markdown_in_names_and_reasons_reach_no_renderer_raw(tmp_path):
    ds = _results(tmp_path, [
        _record("a0", dataset=SVG, model="rnn`x", method="gtf&<b>"),
        _record("a1", dataset=SVG, model="rnn`x", method="gtf&<b>", seed=1, status="failed",
                reason=f"diverged\n| {SVG} | *bold* [link](javascript:x)\r\n`code`")])
    md = L.to_markdown(ds)
    assert "<svg" not in md and "<b>" not in md
    head, *rows = _table(md)
    assert len(rows) == 1 and len(rows[0]) == len(head)
    assert rows[0][:3] == ["&lt;svg onload=alert(1)&gt;", r"rnn\`x", "gtf&amp;&lt;b&gt;"]
    failed = md.split("Failed runs:\n", 1)[1].splitlines()
    assert failed[0] == (r"- &lt;svg onload=alert(1)&gt; rnn\`x gtf&amp;&lt;b&gt;: diverged \| &lt;svg onload=alert(1)"
                         r"&gt; \| \*bold\* \[link\](javascript:x)  \`code\`")
    assert not any(line.startswith("| ") for line in md.split("Failed runs:")[1].splitlines())   # no new table row
    page = L.to_html(ds, title=SVG)
    assert "<svg" not in page and "<b>" not in page and "&lt;svg onload=alert(1)&gt;" in page


def test_a_failed_runs_psc_of_minus_one_is_never_bolded(tmp_path):
    """Every run of a row failed: its PSC median is -1 (WORST), its VPT 0 -- the worst values, not the best."""
    ds = _results(tmp_path, [_record("a0", status="failed"), _record("a1", seed=1, status="failed")])
    metrics = ("D_stsp", "PSC", "VPT")
    (row,) = L.leaderboard_rows(ds, metrics)
    assert (row["ok"], row["PSC"][0], row["VPT"][0], row["D_stsp"][0]) == (0, -1.0, 0.0, math.inf)
    assert L.best_cells([row], metrics) == set()
    md = L.to_markdown(ds, metrics)
    assert "**" not in md and "| -1.000 ± 0.000 |" in md
    assert "class='best'" not in L.to_html(ds, metrics)


def test_a_median_that_failures_decide_loses_to_none(tmp_path):
    """plrnn: one finished run (PSC 0.2) and two failed ones: median(0.2, -1, -1) = -1, the failures' value.
    rnn finished without a PSC (NaN, left out of the median): no PSC is bold in lorenz, while rnn's D_stsp of
    1.0 (lower than plrnn's median(1.0, inf, inf) = inf) is."""
    ds = _results(tmp_path, [_record("a0", PSC=0.2), _record("a1", seed=1, status="failed"),
                             _record("a2", seed=2, status="failed"),
                             _record("b0", model="rnn", PSC=math.nan)])
    rows = {r["model"]: r for r in L.leaderboard_rows(ds)}
    assert rows["plrnn"]["PSC"][0] == -1.0 and math.isnan(rows["rnn"]["PSC"][0])
    md = L.to_markdown(ds)
    head, *table = _table(md)
    psc, dstsp = head.index("PSC (median ± MAD)"), head.index("D_stsp (median ± MAD)")
    assert [r[psc] for r in table] == ["–", "-1.000 ± 0.000"]     # rnn first: ranked by D_stsp
    assert [r[dstsp] for r in table] == ["**1.000 ± 0.000**", "inf"]
    assert L.to_html(ds).count("class='best'") == 2               # rnn's D_stsp and D_H (0.1 vs plrnn's inf)


def test_the_cli_prints_and_writes_the_escaped_table(tmp_path, capsys):
    _results(tmp_path, [_record("a0", dataset=f"x|{SVG}.csv")])
    code, out, err = run_cli(["leaderboard", tmp_path], capsys)
    assert (code, err) == (0, "")
    for text in (out, (tmp_path / "leaderboard.md").read_text()):
        assert "<svg" not in text and r"x\|&lt;svg onload=alert(1)&gt;.csv" in text
    assert "<svg" not in (tmp_path / "leaderboard.html").read_text()
