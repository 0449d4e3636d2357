"""Hostile input to `dsrecon sweep` and `dsrecon leaderboard` (issue 12): each refusal is one line on stderr,
exit 2, nothing touched (tests/hostile.py). A sweep's own damaged files are not refused: a run whose
result.json is unreadable is redone and a results.nc that is unreadable is rebuilt from the runs' result.json
files, each saying so in one line and keeping the damaged bytes (``*.corrupt``).

No test here trains a model: the recovery tests replace the training of a run by a stub."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hostile import assert_refused, run_cli

from dsrecon import backends as B, results as R, sweep as S

SWEEP = """{top}[sweep]
name = {name}
datasets = ["lorenz"]
models = ["plrnn"]
methods = ["gtf"]
seeds = [0, 1]
{extra}
[train]
steps = 12
[eval]
t_gen = 1000
{tail}"""


def sweep_file(tmp_path, name='"s"', *, top="", extra="", tail="", file="s.toml") -> Path:
    p = tmp_path / file
    p.write_text(SWEEP.format(name=name, top=top, extra=extra, tail=tail))
    return p


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


SWEEP_CASES = {
    "name-parent-dirs": (lambda t: [sweep_file(t, '"../../x"')], ["[sweep] name", "'../../x'", "name = 'x'"]),
    "name-absolute": (lambda t: [sweep_file(t, f'"{t / "elsewhere"}"')], ["[sweep] name", "elsewhere"]),
    "name-with-slash": (lambda t: [sweep_file(t, '"a/b"')], ["[sweep] name", "'a/b'"]),
    "name-dot": (lambda t: [sweep_file(t, '"."')], ["[sweep] name", "not '.' or '..'"]),
    "name-dotdot": (lambda t: [sweep_file(t, '".."')], ["[sweep] name", "'..'"]),
    "name-empty": (lambda t: [sweep_file(t, '""')], ["[sweep] name", "''"]),
    "name-not-a-string": (lambda t: [sweep_file(t, "5")], ["[sweep] name", "got 5"]),
    "name-from-a-file-name-with-spaces": (
        lambda t: [_write(t / "my sweep.toml", SWEEP.format(name='"x"', top="", extra="", tail="")
                          .replace('name = "x"\n', ""))], ["TOML file's name", "'my sweep'", "name = 'my-sweep'"]),
    "toml-invalid": (lambda t: [_write(t / "bad.toml", "[sweep\nname = 1\n")], ["bad.toml", "not valid TOML"]),
    "toml-not-utf8": (lambda t: [_write(t / "bin.toml", b"\xff\xfe[\x00s\x00")], ["bin.toml", "not a UTF-8"]),
    "toml-is-a-folder": (lambda t: [_write(t / "d.toml" / "x", "").parent], ["d.toml", "is a folder"]),
    "toml-missing": (lambda t: [t / "nowhere.toml"], ["nowhere.toml", "does not exist"]),
    "toml-empty": (lambda t: [_write(t / "empty.toml", "")], ["empty.toml", "missing [sweep]"]),
    "per-model-not-a-table": (lambda t: [sweep_file(t, top="per_model = 5\n")], ["[per_model] must be a table"]),
    "per-model-entry-not-a-table": (lambda t: [sweep_file(t, tail="[per_model]\nplrnn = 5\n")],
                                    ["[per_model.plrnn]", "must be a table"]),
    "esn-not-a-table": (lambda t: [sweep_file(t, top='esn = "big"\n')], ["[esn] must be a table"]),
    "out-key-not-a-string": (lambda t: [sweep_file(t, extra="out = 5")], ["[sweep] out", "got 5"]),
    "out-is-a-file": (lambda t: [sweep_file(t), "--out", _write(t / "f.txt", "x")], ["--out", "f.txt", "is a file"]),
    "out-below-a-file": (lambda t: [sweep_file(t), "--out", _write(t / "f.txt", "x") / "sub"], ["f.txt", "is a file"]),
    "out-in-proc": (lambda t: [sweep_file(t), "--out", "/proc/dsrecon-hostile"], ["/proc/dsrecon-hostile"]),
    "workers-zero": (lambda t: [sweep_file(t), "--workers", "0"], ["--workers", "0"]),
    "methods-empty": (lambda t: [_write(t / "m.toml", SWEEP.format(name='"m"', top="", extra="", tail="")
                                        .replace('methods = ["gtf"]', "methods = []"))],
                      ["[sweep] methods must be a non-empty list when models are given"]),
    "taus-a-bool": (lambda t: [sweep_file(t, extra="taus = [true]")], ["[sweep] taus", "got True"]),
    "out-a-fit-run": (lambda t: [sweep_file(t), "--out", _fit_run_folder(t)], ["holds a run of `dsrecon fit`"]),
    "train-method-set-by-the-lists": (lambda t: [_write(t / "m.toml", SWEEP.format(name='"m"', top="", extra="", tail="")
                                                        .replace("steps = 12", 'steps = 12\nmethod = "stf"'))],
                                      ["[train] method is set by [sweep] methods", "drop it"]),
    "model-kind-set-by-the-lists": (lambda t: [sweep_file(t, tail='[model]\nkind = "lstm"\n')],
                                    ["[model] kind is set by [sweep] models"]),
    "per-model-tau-set-by-the-lists": (lambda t: [sweep_file(t, tail="[per_model.plrnn.train]\ntau = 5\n")],
                                       ["[per_model.plrnn][train] tau is set by [sweep] taus"]),
}


def _fit_run_folder(t: Path) -> Path:
    """A folder laid out like a `dsrecon fit` run (its files need not be real: the refusal reads names only)."""
    run = t / "a-fit-run"
    for name in ("config.json", "metrics.json", "model.pt"):
        _write(run / name, "{}")
    return run

# settings that only the data can refuse: checked for every run before any work (they used to become permanent
# "failed" records at run time, with exit 0), in a dry run as in a real one
DATA_CASES = {
    "tau-longer-than-the-training-split": (dict(extra="taus = [1000000000]", tail="", methods='["stf"]'),
                                           ["run lorenz plrnn stf tau=1000000000 seed=0", "train.tau = 1000000000"]),
    # under the identity observation (id-tf): a learned one takes fewer latents than channels (issue 22, part 2)
    "latent-dim-below-the-channels": (dict(extra="taus = [10]", tail="[model]\nlatent_dim = 2\n", methods='["id-tf"]'),
                                      ["run lorenz plrnn id-tf tau=10 seed=0", "model.latent_dim = 2", ">= 3"]),
    "seq-len-longer-than-the-data": (dict(extra="", tail="[per_model.plrnn.train]\nseq_len = 99999\n",
                                          methods='["gtf"]'), ["run lorenz plrnn gtf", "seq_len"]),
}


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("case", list(DATA_CASES))
def test_sweep_setting_the_data_refuse_is_refused_before_any_work(case, dry, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    opts, match = DATA_CASES[case]
    toml = sweep_file(tmp_path, extra=opts["extra"], tail=opts["tail"])
    toml.write_text(toml.read_text().replace('methods = ["gtf"]', f"methods = {opts['methods']}"))
    assert_refused(["sweep", toml, "--out", tmp_path / "out", *(["--dry-run"] if dry else [])], capsys,
                   watch=tmp_path, match=match)


@pytest.mark.parametrize("case", list(SWEEP_CASES))
def test_sweep_refused(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    build, match = SWEEP_CASES[case]
    assert_refused(["sweep", *build(tmp_path)], capsys, watch=tmp_path, match=match)


def _record(key, seed, status="ok", **metrics):
    scores = {"D_stsp": 1.0 + seed, "D_H": 0.1, "PSC": 0.9, "VPT": 2.0, "T_gen": 1000.0, "steps": 12.0,
              "train_seconds": 1.0, **metrics}
    return {"key": key, "kind": "rnn", "dataset": "lorenz", "model": "plrnn", "method": "gtf", "tau": None,
            "seed": seed, "status": status, "reason": "" if status == "ok" else "training diverged",
            "tau_steps": None, "sweep": "s", "run_dir": "", "metrics": scores if status == "ok" else {},
            "noise_floor": {"D_stsp": 0.05, "D_H": 0.06}, "variants": {}}


def _results(folder: Path) -> Path:
    R.append_results(folder / "results.nc", [_record("k0", 0), _record("k1", 1)])
    return folder


def _wrong_variables(t: Path) -> Path:
    import xarray as xr

    path = t / "other" / "results.nc"
    path.parent.mkdir()
    xr.Dataset({"x": ("time", np.arange(5.0))}).to_netcdf(path)
    return path


def _non_numeric_score(t: Path) -> Path:
    ds = R.read_results(_results(t / "sw"))
    ds["D_stsp"] = ("run", np.array(["low", "high"], dtype=object))
    path = t / "other" / "results.nc"
    path.parent.mkdir()
    ds.to_netcdf(path)
    return path


def _truncated(t: Path) -> Path:
    good = (_results(t / "sw") / "results.nc").read_bytes()
    return _write(t / "other" / "results.nc", good[: len(good) // 3])


LEADERBOARD_CASES = {
    "path-missing": (lambda t: [t / "nowhere"], ["nowhere", "dsrecon sweep"]),
    "folder-without-results": (lambda t: [_write(t / "empty" / "notes.txt", "x").parent], ["empty", "dsrecon sweep"]),
    "text-file": (lambda t: [_write(t / "notes.txt", "D_stsp = 1\n")], ["notes.txt", "not a readable netCDF"]),
    "garbage-results-nc": (lambda t: [_write(t / "g" / "results.nc", bytes(range(256)) * 8).parent],
                           ["results.nc", "not a readable netCDF", "rebuilds results.nc"]),
    "empty-results-nc": (lambda t: [_write(t / "e" / "results.nc", b"")], ["results.nc", "not a readable netCDF"]),
    "truncated-results-nc": (lambda t: [_truncated(t)], ["results.nc", "not a readable netCDF"]),
    "netcdf-with-wrong-variables": (lambda t: [_wrong_variables(t)],
                                    ["results.nc", "not a dsrecon sweep results file", "key"]),
    "non-numeric-score": (lambda t: [_non_numeric_score(t)], ["results.nc", "non-numeric D_stsp"]),
    "unknown-metric": (lambda t: [_results(t / "sw"), "--metrics", "D_stsp,loss"],
                       ["--metrics", "'loss'", "known: D_stsp, D_H, PSC", "VPT"]),
    "no-metric": (lambda t: [_results(t / "sw"), "--metrics", ","], ["--metrics", "no metric", "known"]),
    "out-is-a-file": (lambda t: [_results(t / "sw"), "--out", _write(t / "f.txt", "x")], ["--out", "f.txt", "is a file"]),
    "out-below-a-file": (lambda t: [_results(t / "sw"), "--out", _write(t / "f.txt", "x") / "sub"], ["f.txt"]),
    "out-in-proc": (lambda t: [_results(t / "sw"), "--out", "/proc/dsrecon-hostile"], ["/proc/dsrecon-hostile"]),
}


@pytest.mark.parametrize("case", list(LEADERBOARD_CASES))
def test_leaderboard_refused(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    build, match = LEADERBOARD_CASES[case]
    argv = ["leaderboard", *build(tmp_path)]   # built before the snapshot: only the command itself must not write
    assert_refused(argv, capsys, watch=tmp_path, match=match)


# ------------------------------------------------------------------ a sweep's own damaged files
@pytest.fixture
def stub_runs(monkeypatch):
    """Runs that 'train' instantly: the seed sets D_stsp. Returns the list of specs that were run."""
    ran = []

    def fake_run_model(spec, run_dir):
        ran.append(spec["key"])
        return {"D_stsp": 1.0 + spec["seed"], "D_H": 0.1, "PSC": 0.9, "T_gen": 1000, "noise_floor": {"D_stsp": 0.05},
                "variants": {"D_stsp": {"method": "bins"}}}, None

    monkeypatch.setattr(B, "_run_model", fake_run_model)
    return ran


def _sweep(tmp_path, capsys):
    code = run_cli(["sweep", "s.toml", "--workers", "1", "--quiet"], capsys)
    assert code[0] == 0, code
    return code[1]


@pytest.mark.parametrize("damage", [b"", b'{"key": "', b"\x00\xff garbage", b"null", b'{"status": "ok"}',
                                    b'{"key": "another", "status": "ok", "dataset": "lorenz", "model": "plrnn", '
                                    b'"method": "gtf", "seed": 0}'],
                         ids=["empty", "truncated", "garbage", "not-a-dict", "missing-keys", "another-runs-key"])
def test_a_damaged_result_json_is_kept_aside_and_its_run_redone(damage, tmp_path, monkeypatch, capsys, stub_runs):
    monkeypatch.chdir(tmp_path)
    sweep_file(tmp_path)
    _sweep(tmp_path, capsys)
    first, second = sorted(tmp_path.glob("runs/sweeps/s/runs/*/result.json"))
    untouched = second.read_bytes(), second.stat().st_mtime_ns
    first.write_bytes(damage)
    ran = len(stub_runs)

    out = _sweep(tmp_path, capsys)
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(first.relative_to(tmp_path)) in warnings[0] and "redone" in warnings[0], out
    assert len(stub_runs) == ran + 1                           # that run only, once
    assert (first.parent / "result.json.corrupt").read_bytes() == damage
    assert json.loads(first.read_text())["status"] == "ok"
    assert (second.read_bytes(), second.stat().st_mtime_ns) == untouched
    assert R.read_results("runs/sweeps/s").sizes["run"] == 2


@pytest.mark.parametrize("lost", ["damaged", "deleted"])
def test_a_lost_result_json_of_a_scored_run_is_rebuilt_from_its_metrics_json(lost, tmp_path, monkeypatch, capsys,
                                                                             stub_runs):
    """metrics.json is written last by a fit: with it complete, the run finished and nothing is redone."""
    monkeypatch.chdir(tmp_path)
    sweep_file(tmp_path)
    _sweep(tmp_path, capsys)
    first = sorted(tmp_path.glob("runs/sweeps/s/runs/*/result.json"))[0]
    before = json.loads(first.read_text())
    _write(first.parent / "metrics.json", json.dumps({"D_stsp": before["metrics"]["D_stsp"], "D_H": 0.1, "PSC": 0.9,
                                                      "T_gen": 1000, "noise_floor": {"D_stsp": 0.05}}))
    _write(first.parent / "config.json", json.dumps({"config": {}, "tau_steps": None}))
    if lost == "damaged":
        first.write_bytes(b'{"key": ')
    else:
        first.unlink()
    ran = len(stub_runs)

    out = _sweep(tmp_path, capsys)
    assert len(stub_runs) == ran, out                          # nothing redone
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == (lost == "damaged") and all("rebuilt from the run's metrics.json" in w for w in warnings)
    after = json.loads(first.read_text())
    assert after["status"] == "ok" and after["metrics"]["D_stsp"] == before["metrics"]["D_stsp"]
    assert R.read_results("runs/sweeps/s").sizes["run"] == 2


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-variables", "text"])
def test_a_damaged_results_nc_is_kept_aside_and_rebuilt_from_the_runs(damage, tmp_path, monkeypatch, capsys,
                                                                       stub_runs):
    import xarray as xr

    monkeypatch.chdir(tmp_path)
    sweep_file(tmp_path)
    _sweep(tmp_path, capsys)
    results = tmp_path / "runs/sweeps/s/results.nc"
    good = R.read_results(results)
    bad = {"garbage": bytes(range(256)) * 4, "truncated": results.read_bytes()[:1000], "text": b"key,D_stsp\n",
           "wrong-variables": xr.Dataset({"x": ("time", np.arange(3.0))}).to_netcdf()}[damage]
    results.write_bytes(bad)
    ran = len(stub_runs)

    out = _sweep(tmp_path, capsys)
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "results.nc" in warnings[0] and "rebuilt from 2 runs" in warnings[0], out
    assert len(stub_runs) == ran                               # nothing redone
    assert (results.parent / "results.nc.corrupt").read_bytes() == bad
    again = R.read_results(results)
    assert sorted(again["key"].values) == sorted(good["key"].values)
    np.testing.assert_array_equal(again.sortby("key")["D_stsp"].values, good.sortby("key")["D_stsp"].values)
