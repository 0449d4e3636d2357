"""Sweeps that notice (issue 26, part 3): a run's record keeps its config hash, its data fingerprint and the dsrecon
version; a restarted sweep runs again, afresh and saying why, what changed since (the data, the config) and a failure
whose cause may be gone (data that did not load then), keeps the rest, and the leaderboard never takes runs of
different configs for seeds of one row.

Most runs here are stubs (no training); one test fits for real to see the old run replaced through overwrite."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dsrecon import backends as B, data as D, leaderboard as L, results as R, runs, sweep as S
from dsrecon.errors import DivergenceError
from dsrecon.jobs import plan_jobs

SWEEP = """[sweep]
name = "s"
datasets = ["{data}"]
models = ["plrnn"]
methods = ["gtf"]
seeds = [0, 1]
[model]
latent_dim = 6
[train]
steps = {steps}
validate_every = 0
checkpoint_every = 4
batch_size = 4
seq_len = 40
[eval]
t_gen = 1000
"""


def sweep_file(tmp_path, data="lorenz", steps=12, seeds=None) -> Path:
    p = tmp_path / "s.toml"
    text = SWEEP.format(data=data, steps=steps)
    p.write_text(text if seeds is None else text.replace("seeds = [0, 1]", f"seeds = {seeds}"))
    return p


def save_series(path: Path, lorenz_data, start: int = 0, nan: bool = False) -> Path:
    x = np.array(lorenz_data["x"].values[start:start + 3000])
    if nan:
        x[100, 0] = np.nan
    np.save(path, x)
    return path


@pytest.fixture
def stub(monkeypatch):
    """Runs that 'train' at once on the data they load (a DataError when they do not), scoring D_stsp = the sum of
    the loaded series' first channel + the seed: a run's numbers follow its data. Returns the specs that ran."""
    ran = []

    def fake_run_model(spec, run_dir):
        ran.append(spec)
        cfg = S.RunConfig.from_dict(spec["config"])
        x = D.load_for(cfg.data)["x"].values
        if spec.get("diverge"):
            raise DivergenceError("training diverged")
        return {"D_stsp": float(abs(x[:50, 0].sum())) + spec["seed"], "D_H": 0.1, "PSC": 0.9, "T_gen": 1000,
                "noise_floor": {"D_stsp": 0.05}, "variants": {}}, None

    monkeypatch.setattr(B, "_run_model", fake_run_model)
    return ran


def sweep(toml, out, lines=None, **kw):
    echo = (lambda *a: lines.append(" ".join(map(str, a)))) if lines is not None else (lambda *a: None)
    return S.run_sweep(S.load_sweep(toml, out=out), workers=1, progress=False, echo=echo, **kw)


def scores(out) -> dict:
    ds = R.read_results(out)
    return {int(s): float(v) for s, v in zip(ds["seed"].values, ds["D_stsp"].values)}


def test_records_and_results_keep_config_hash_data_fingerprint_and_version(tmp_path, stub, lorenz_data):
    f = save_series(tmp_path / "x.npy", lorenz_data)
    out = tmp_path / "out"
    sweep(sweep_file(tmp_path, data=f), out)
    fp = D.data_fingerprint(D.load(str(f)))
    recs = [json.loads(p.read_text()) for p in sorted(out.glob("runs/*/result.json"))]
    assert len(recs) == 2 and {r["data_fingerprint"] for r in recs} == {fp}
    assert len({r["config_hash"] for r in recs}) == 1 and recs[0]["config_hash"]   # seeds of one config
    assert all(r["dsrecon_version"] for r in recs) and recs[0]["config"]["train"]["steps"] == 12
    ds = R.read_results(out)
    assert set(ds["data_fingerprint"].values) == {fp} and len(set(ds["config_hash"].values)) == 1
    assert json.loads(str(ds["config"].values[0]))["train"]["steps"] == 12


def test_a_finished_run_is_run_again_when_its_data_file_is_replaced(tmp_path, stub, lorenz_data):
    f = save_series(tmp_path / "x.npy", lorenz_data)
    toml, out = sweep_file(tmp_path, data=f), tmp_path / "out"
    sweep(toml, out)
    before = scores(out)
    save_series(f, lorenz_data, start=5000)   # the same file name, other data
    lines, n = [], len(stub)
    res = sweep(toml, out, lines)
    assert len(stub) == n + 2 and res.ran == 2 and res.skipped == 0
    assert all(s.get("fresh") for s in stub[n:])   # afresh: never resumed or rebuilt from the old run
    why = [ln for ln in lines if "is run again" in ln]
    assert len(why) == 2 and all("data changed" in ln for ln in why), lines
    after = scores(out)
    assert after != before and len(after) == 2
    assert all(p.with_name("result.json.stale").exists() for p in out.glob("runs/*/result.json"))
    fp = D.data_fingerprint(D.load(str(f)))
    assert set(R.read_results(out)["data_fingerprint"].values) == {fp}
    again = sweep(toml, out)   # nothing changed since: skipped, as before
    assert len(stub) == n + 2 and again.skipped == 2 and again.ran == 0


def test_a_run_that_failed_on_its_data_file_is_retried_once_the_file_is_fixed(tmp_path, stub, lorenz_data):
    f = save_series(tmp_path / "x.npy", lorenz_data, nan=True)
    toml, out = sweep_file(tmp_path, data=f, seeds="[0]"), tmp_path / "out"
    sweep(toml, out)
    first = json.loads(next(out.glob("runs/*/result.json")).read_text())
    assert first["status"] == "failed" and "NaN" in first["reason"] and first.get("data_fingerprint") is None
    assert len(sweep(toml, out).records) == 1 and len(stub) == 1   # still broken: kept, nothing to compare
    save_series(f, lorenz_data)   # fixed
    lines = []
    res = sweep(toml, out, lines)
    assert len(stub) == 2 and res.ran == 1
    assert any("is run again" in ln and "did not load" in ln for ln in lines), lines
    rec = json.loads(next(out.glob("runs/*/result.json")).read_text())
    assert rec["status"] == "ok" and rec["data_fingerprint"] == D.data_fingerprint(D.load(str(f)))
    assert str(R.read_results(out)["status"].values[0]) == "ok"


def test_a_failure_on_the_same_config_and_data_is_kept_unless_retry_failed(tmp_path, stub, monkeypatch):
    monkeypatch.setattr(S, "portable_spec", lambda s, **kw: {**json.loads(json.dumps(s, default=str)), "diverge": True})
    toml, out = sweep_file(tmp_path, seeds="[0]"), tmp_path / "out"
    sweep(toml, out)
    assert str(R.read_results(out)["status"].values[0]) == "failed" and len(stub) == 1
    lines = []
    assert sweep(toml, out, lines).skipped == 1 and len(stub) == 1   # diverged, same config and data: permanent
    assert not any("is run again" in ln for ln in lines)
    sweep(toml, out, retry_failed=True)
    assert len(stub) == 2


def test_a_lost_result_json_of_a_run_whose_data_changed_is_not_rebuilt_from_the_old_run(tmp_path, stub, lorenz_data):
    """result.json lost: the record used to be rebuilt from the run's metrics.json, the old data's scores."""
    f = save_series(tmp_path / "x.npy", lorenz_data)
    toml, out = sweep_file(tmp_path, data=f, seeds="[0]"), tmp_path / "out"
    sweep(toml, out)
    done = next(out.glob("runs/*/result.json"))
    old = D.data_fingerprint(D.load(str(f)))
    (done.parent / "metrics.json").write_text(json.dumps({"D_stsp": 123.0, "D_H": 0.1, "PSC": 0.9, "T_gen": 1000}))
    (done.parent / "config.json").write_text(json.dumps({"config": {}, "tau_steps": None, "data_fingerprint": old}))
    done.unlink()
    assert sweep(toml, out).skipped == 0 and len(stub) == 1   # unchanged data: rebuilt, not redone (as before)
    assert scores(out)[0] == 123.0
    done.unlink()
    save_series(f, lorenz_data, start=5000)
    sweep(toml, out)
    assert len(stub) == 2 and scores(out)[0] != 123.0


def test_leaderboard_never_takes_runs_of_different_configs_for_seeds(tmp_path, stub):
    out = tmp_path / "out"
    sweep(sweep_file(tmp_path, steps=12), out)
    sweep(sweep_file(tmp_path, steps=14), out)   # the sweep file edited: new runs, the old ones stay in results.nc
    ds = R.read_results(out)
    rows = L.leaderboard_rows(ds, expected=L.expected_runs(out))
    assert len(rows) == 2 and all(r["n"] == 2 and r["ok"] == 2 and r["missing"] == 0 for r in rows), rows
    assert ds.sizes["run"] == 4 and len(set(ds["config_hash"].values)) == 2
    md = (out / "leaderboard.md").read_text()
    assert "| config |" in md and "train.steps = 12" in md and "train.steps = 14" in md, md
    assert "2 configs, not seeds of one another" in md


def test_leaderboard_notes_a_row_whose_runs_ran_on_different_data(tmp_path):
    recs = [{"key": f"k{s}", "kind": "rnn", "dataset": "x.npy", "model": "plrnn", "method": "gtf", "tau": None,
             "seed": s, "status": "ok", "reason": "", "tau_steps": None, "sweep": "s", "run_dir": "",
             "metrics": {"D_stsp": 1.0, "D_H": 0.1, "PSC": 0.9}, "noise_floor": {}, "variants": {},
             "config_hash": "c" * 16, "data_fingerprint": fp} for s, fp in ((0, "a" * 64), (1, "b" * 64))]
    R.append_results(tmp_path / "results.nc", recs)
    md = L.to_markdown(R.read_results(tmp_path))
    assert "ran on 2 different data" in md and "aaaaaaaa" in md and "bbbbbbbb" in md


def test_a_run_to_redo_afresh_never_joins_an_ensemble_job(tmp_path):
    sw = S.load_sweep(sweep_file(tmp_path, seeds="[0, 1, 2]"), out=tmp_path / "out")
    specs = [dict(s) for s in sw.specs]
    specs[0]["fresh"] = True   # its folder holds the old run: only fit_run's overwrite may replace it
    items = plan_jobs(specs, workers=1)
    jobs = [i for i in items if i.get("kind") == "job"]
    assert len(jobs) == 1 and specs[0]["key"] not in {m["key"] for m in jobs[0]["members"]}
    assert specs[0] in items


def test_a_stale_fitted_run_is_replaced_through_overwrite(tmp_path, lorenz_data):
    """A real fit: after the data file is replaced, the run is fitted again on the new data (its config.json's
    fingerprint is the new one, so `dsrecon eval` of it no longer refuses), and nothing of the old run is left."""
    f = save_series(tmp_path / "x.npy", lorenz_data)
    toml, out = sweep_file(tmp_path, data=f, seeds="[0]"), tmp_path / "out"
    sweep(toml, out)
    rd = next(out.glob("runs/*/result.json")).parent
    save_series(f, lorenz_data, start=5000)
    with pytest.raises(Exception, match="changed since"):
        runs.open(rd).data()
    res = sweep(toml, out)
    assert res.ran == 1 and not res.errors, res.records
    rec = json.loads((rd / "result.json").read_text())
    assert rec["status"] in ("ok", "failed") and rec["data_fingerprint"] == D.data_fingerprint(D.load(str(f)))
    runs.open(rd).data()   # the run's own fingerprint is the new data's
    assert not (rd / ".replaced").exists() and (rd / "result.json.stale").exists()


def test_a_record_whose_config_hash_is_not_its_runs_is_run_again(tmp_path, stub):
    """The key covers the config, so this needs a record that says another config ran (copied, or hashed by
    another rule): its numbers are not the run's."""
    toml, out = sweep_file(tmp_path, seeds="[0]"), tmp_path / "out"
    sweep(toml, out)
    done = next(out.glob("runs/*/result.json"))
    rec = json.loads(done.read_text())
    done.write_text(json.dumps({**rec, "config_hash": "0" * 16}))
    lines = []
    assert sweep(toml, out, lines).ran == 1 and len(stub) == 2
    assert any("is run again: its config changed" in ln for ln in lines), lines
    assert json.loads(done.read_text())["config_hash"] == rec["config_hash"]
