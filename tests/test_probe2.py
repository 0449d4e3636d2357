"""The second probe of issue 26 (part 8): the failures it found, each a case that failed before its fix.

Every CLI case keeps the contract of tests/hostile.py (exit 2, one line naming the argument and the fix, nothing
touched); every API case raises one of dsrecon's own errors, in one line, before any work. A failure whose fix
lies in a module another part of the issue owns is marked ``xfail(strict=True)`` with the suggested fix, so it
stays visible and turns red the day it is fixed.
"""
from __future__ import annotations

import pytest
from hostile import assert_refused, make_finished_run

import dsrecon as ds
from dsrecon import runs

LONG = "z" * 300            # one name longer than any file system takes (255 bytes)
DEEP = "/".join(["y" * 200] * 25)   # every name fits, the whole path (5024 bytes) does not
NUL = "a\x00b"
FIT = ["fit", "lorenz", "--model", "plrnn", "--method", "stf", "--tau", "20", "--steps", "3", "--t-gen", "1000",
       "--quiet", "--set", "train.validate_every=0"]
SWEEP = ('[sweep]\nname = "s"\ndatasets = ["lorenz"]\nmodels = ["plrnn"]\nmethods = ["gtf"]\nseeds = [0]\n'
         '[train]\nsteps = 3\n[eval]\nt_gen = 1000\n')


def _sweep(t, replace=("", "")):
    p = t / "s.toml"
    p.write_text(SWEEP.replace(*replace) if replace[0] else SWEEP)
    return p


# ------------------------------------------------------------------- names no file can have (empty, NUL, too long)
# each was an OSError (File name too long) or a ValueError (embedded null byte) as an "internal error", exit 1; an
# empty --out wrote the run into the current folder; a sweep's out or name of 300 characters passed --dry-run
PATH_CASES = {
    "fit-out-empty": (lambda t: [*FIT, "--out", ""], ["--out is empty"]),
    "fit-out-long-name": (lambda t: [*FIT, "--out", LONG], ["--out", "300 bytes", "at most 255", "shorter name"]),
    "fit-out-long-path": (lambda t: [*FIT, "--out", DEEP], ["--out", "5024 bytes", "at most 4095"]),
    "fit-out-nul": (lambda t: [*FIT, "--out", NUL], ["--out a\\x00b", "NUL byte"]),
    "fit-dataset-long": (lambda t: ["fit", LONG, "--quiet"], ["DATASET", "300 bytes"]),
    "fit-dataset-long-csv": (lambda t: ["fit", LONG + ".csv", "--quiet"], ["DATASET", "304 bytes"]),
    "fit-resume-long": (lambda t: ["fit", "--resume", LONG], ["--resume", "300 bytes"]),
    "fit-data-dir-long": (lambda t: [*FIT, "--data-dir", LONG], ["--data-dir", "300 bytes"]),
    "eval-run-dir-long": (lambda t: ["eval", LONG], ["RUN_DIR", "300 bytes"]),
    "lyap-target-long-csv": (lambda t: ["lyap", LONG + ".csv"], ["TARGET", "304 bytes"]),
    "lyap-plot-long": (lambda t: ["lyap", "lorenz", "--plot", LONG + ".png"], ["--plot", "304 bytes"]),
    "lyap-plot-nul": (lambda t: ["lyap", "lorenz", "--plot", "a\x00.png"], ["--plot", "NUL byte"]),
    "lyap-plot-empty": (lambda t: ["lyap", "lorenz", "--plot", ""], ["--plot is empty"]),
    "compare-run-dir-long": (lambda t: ["compare", LONG], ["RUN_DIR", "300 bytes"]),
    "sweep-config-long": (lambda t: ["sweep", LONG + ".toml"], ["CONFIG.toml", "305 bytes"]),
    "sweep-out-long": (lambda t: ["sweep", _sweep(t), "--out", LONG, "--dry-run"], ["--out", "300 bytes"]),
    "sweep-out-nul": (lambda t: ["sweep", _sweep(t), "--out", NUL, "--dry-run"], ["--out", "NUL byte"]),
    "sweep-out-empty": (lambda t: ["sweep", _sweep(t), "--out", "", "--dry-run"], ["--out is empty"]),
    "sweep-toml-out-long": (lambda t: ["sweep", _sweep(t, ('name = "s"', f'name = "s"\nout = "{LONG}"')), "--dry-run"],
                            ["[sweep] out", "300 bytes"]),
    "sweep-toml-name-long": (lambda t: ["sweep", _sweep(t, ('name = "s"', f'name = "{LONG}"')), "--dry-run"],
                             ["runs/sweeps/NAME", "300 bytes"]),
    "leaderboard-results-long": (lambda t: ["leaderboard", LONG], ["RESULTS", "300 bytes"]),
    "data-fetch-data-dir-long": (lambda t: ["data", "fetch", "jena", "--data-dir", LONG], ["--data-dir", "300 bytes"]),
    "data-fetch-data-dir-nul": (lambda t: ["data", "fetch", "jena", "--data-dir", NUL], ["--data-dir", "NUL byte"]),
    "data-fetch-name-long": (lambda t: ["data", "fetch", LONG], ["unknown dataset"]),
}


@pytest.mark.parametrize("case", list(PATH_CASES))
def test_path_no_file_can_have_refused(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    build, match = PATH_CASES[case]
    assert_refused(build(tmp_path), capsys, watch=tmp_path, match=match)


def test_compare_plot_long_refused(tmp_path, tmp_path_factory, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = make_finished_run(tmp_path / "run", tmp_path_factory)
    assert_refused(["compare", run, "--plot", LONG + ".png"], capsys, watch=tmp_path, match=["--plot", "304 bytes"])


API_PATH_CASES = {
    "runs-open-long": (lambda: runs.open(LONG), ["the run directory", "300 bytes"]),
    "runs-open-empty": (lambda: runs.open(""), ["the run directory is empty"]),
    "load-file-long": (lambda: ds.load(LONG + ".csv"), ["the data file", "304 bytes"]),
    "load-file-nul": (lambda: ds.load("a\x00b.csv"), ["the data file", "NUL byte"]),
    "load-name-long": (lambda: ds.load(LONG), ["unknown dataset"]),
    "load-data-dir-long": (lambda: ds.load("jena", data_dir=LONG), ["the data directory", "300 bytes"]),
    # runs.open(5) / runs.open(None): a TypeError from os.fspath
    "runs-open-a-number": (lambda: runs.open(5), ["the run directory must be a folder path", "got int"]),
    "runs-open-none": (lambda: runs.open(None), ["got NoneType"]),
    # ds.load's counts: 1500.5 loaded 1500 samples, 10^12 a MemoryError from numpy (7 TiB), seed=-1 numpy's ValueError
    "load-n-train-a-fraction": (lambda: ds.load("lorenz", n_train=1500.5, cache=False),
                                ["n_train must be an integer in [2, 100,000,000], got 1500.5"]),
    "load-n-train-1e12": (lambda: ds.load("lorenz", n_train=10**12, cache=False), ["n_train", "1000000000000"]),
    "load-n-test-1e12": (lambda: ds.load("lorenz", n_test=10**12, cache=False), ["n_test", "100,000,000"]),
    "load-seed-negative": (lambda: ds.load("lorenz", seed=-1, cache=False), ["seed must be an integer in [0, 2^32)"]),
    # a path as bytes: a TypeError from pathlib (now read as the path it names)
    "load-bytes-path": (lambda: ds.load(b"missing.csv"), ["no such file: missing.csv"]),
}


@pytest.mark.parametrize("case", list(API_PATH_CASES))
def test_api_path_no_file_can_have_refused(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    call, match = API_PATH_CASES[case]
    with pytest.raises(ds.DsreconError) as info:
        call()
    line = str(info.value)
    assert "\n" not in line and all(m in line for m in match), line
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- odd data files
def _table(t, header="time,a,b", trailing=""):
    import numpy as np
    k = np.arange(len(t))
    rows = "".join(f"{tt},{np.sin(i / 5):.6f},{np.cos(i / 7):.6f}{trailing}\n" for i, tt in zip(k, t))
    return f"{header}\n{rows}"


def _times(n=1500, at=None, value=None, shift=0.0):
    t = [round(0.05 * i, 4) for i in range(n)]
    if at is not None:
        t[at] = value
    if shift:
        t[700:] = [v + shift for v in t[700:]]
    return t


CSV_FIT = ["--model", "plrnn", "--method", "stf", "--tau", "5", "--steps", "3", "--t-gen", "1000", "--quiet",
           "--set", "train.seq_len=50", "--set", "train.validate_every=0"]
# each: (text of x.csv, extra fit options, substrings of the line)
DATA_CASES = {
    # an internal error: OverflowError (cannot convert float infinity to integer), exit 1
    "time-column-inf": (lambda: _table(_times(at=1499, value="inf")), [],
                        ["time column 'time' holds inf at sample 1499", "no time stamp"]),
    "time-column-minus-inf": (lambda: _table(_times(at=0, value="-inf")), [], ["holds -inf at sample 0"]),
    # trained on a channel named '' (messages then named channel '')
    "header-name-empty": (lambda: _table(_times(), header="time,,b"), [],
                          ["the header leaves column 2 of 3 unnamed", "name it in the header"]),
    # a delimiter at the end of every line: read as an all-NaN channel '' ("pass interpolate=True")
    "header-trailing-delimiter": (lambda: _table(_times(), header="time,a,b,", trailing=","), [],
                                  ["column 4 of 4 unnamed", "a delimiter at the end of each line?",
                                   "remove the trailing delimiter"]),
    # --interpolate over a gap of 10^12 s: MemoryError (146 TiB) as an internal error, exit 1
    "interpolate-huge-gap": (lambda: _table(_times(shift=1e12)), ["--interpolate"],
                             ["interpolating time column 'time'", "more than 10x would be made up",
                              "cut the recording"]),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_odd_data_file_refused(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    text, extra, match = DATA_CASES[case]
    path = tmp_path / "x.csv"
    path.write_text(text())
    assert_refused(["fit", path, *CSV_FIT, *extra], capsys, watch=tmp_path, match=match)
    if not extra:
        assert_refused(["lyap", path, "--plot", tmp_path / "p.png"], capsys, watch=tmp_path, match=match)


def test_interpolate_fills_a_small_gap(tmp_path):
    """The bound leaves the fill it is for: a few missing samples are interpolated as before."""
    path = tmp_path / "x.csv"
    t = _times()
    del t[700:705]
    text = _table(t)
    path.write_text(text)
    data = ds.load(path, interpolate=True)
    assert data.sizes["time"] == 1500


# ---------------------------------------------------------------------------------- sweep and Ray options (CLI)
# each passed `--dry-run` with exit 0, and a real sweep then failed inside Ray after it began (or, --address "",
# started a local Ray instance instead of reaching the cluster; --workers was ignored on Ray without a word); a
# NUL byte in --runtime-env's file name was a ValueError as an internal error, exit 1
RAY_CASES = {
    "address-not-an-address": (["--backend", "ray", "--address", "not a url"], ["--address 'not a url'",
                                                                                 "not a Ray address", "ray://HOST:10001"]),
    "address-empty": (["--backend", "ray", "--address", ""], ["--address ''", "not a Ray address"]),
    "address-http": (["--backend", "ray", "--address", "http://x:80"], ["--address 'http://x:80'"]),
    "address-port-beyond-65535": (["--backend", "ray", "--address", "ray://host:99999"], ["ray://host:99999"]),
    "address-empty-local-backend": (["--address", ""], ["apply to --backend ray only"]),
    "connect-timeout-zero-local-backend": (["--connect-timeout", "0"], ["apply to --backend ray only"]),
    "workers-on-ray": (["--backend", "ray", "--workers", "3"], ["--workers applies to --backend local only"]),
    "runtime-env-nul": (["--backend", "ray", "--runtime-env", "a\x00.json"], ["--runtime-env", "NUL byte"]),
}


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("case", list(RAY_CASES))
def test_sweep_ray_option_refused(case, dry, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    extra, match = RAY_CASES[case]
    argv = ["sweep", _sweep(tmp_path), "--out", tmp_path / "out", "--quiet", *extra, *(["--dry-run"] if dry else [])]
    assert_refused(argv, capsys, watch=tmp_path, match=match)


# ------------------------------------------------------- found by the probe, fixed in sweep_values.py and ray_options.py
OTHERS = {
    # dsrecon/sweep.py: a scalar where a list is documented is taken as a one-element list: `seeds = 5` runs seed 5
    # alone (five seeds meant?); fix: refuse a non-list ("[sweep] seeds must be a list, e.g. seeds = [0, 1, 2]")
    "seeds-a-number": (("seeds = [0]", "seeds = 5"), ["[sweep] seeds", "list"]),
    # dsrecon/sweep.py: a value listed twice silently becomes one run; fix: refuse, naming the repeated value
    "seeds-repeated": (("seeds = [0]", "seeds = [0, 0]"), ["[sweep] seeds", "0", "twice"]),
    "datasets-repeated": (('datasets = ["lorenz"]', 'datasets = ["lorenz", "lorenz"]'), ["[sweep] datasets", "twice"]),
    # dsrecon/sweep.py + config.py (override): [train] steps = "3", a TOML string, is parsed like a --set value;
    # fix: in a TOML file take a value's TOML type as given ("train.steps must be an integer, got '3'")
    "train-steps-a-string": (("steps = 3", 'steps = "3"'), ["train.steps", "'3'"]),
    # dsrecon/ray_options.py (check_ray_options): [ray] address is checked only to be a non-empty string; fix: the
    # format check of cli._check_address (auto, local, HOST:PORT, ray://HOST[:PORT])
    "ray-section-address-malformed": (("t_gen = 1000", 't_gen = 1000\n[ray]\naddress = "not a url"\n'),
                                      ["address", "not a url"]),
    # dsrecon/ray_options.py (check_runtime_env): pip = 5 passes (Ray fails on the nodes); fix: pip, uv, conda,
    # env_vars, excludes checked for their types (a list of strings, a dict of strings, ...)
    "ray-runtime-env-pip-a-number": (("t_gen = 1000", 't_gen = 1000\n[ray]\nruntime_env = { pip = 5 }\n'),
                                     ["runtime_env", "pip", "5"]),
}


@pytest.mark.parametrize("case", list(OTHERS))
def test_sweep_toml_refused_left_for_others(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    replace, match = OTHERS[case]
    backend = ["--backend", "ray"] if case.startswith("ray-") else []
    assert_refused(["sweep", _sweep(tmp_path, replace), "--out", tmp_path / "out", "--dry-run", *backend], capsys,
                   watch=tmp_path, match=match)


# ------------------------------------------------------------------------------------------------- dsrecon task
# each trained until killed (10^8 Adam steps at ~10 s each; 10^9 flossing updates): fit's steps are <= 10^7 since
# issue 26 part 5, the task's had no bound
TASK_CASES = {
    "steps-1e8": (["--steps", "100000000"], ["--steps must be an integer >= 0 and <= 10,000,000", "100000000"]),
    "floss-epochs-1e9": (["--floss-at", "0", "--floss-epochs", "1000000000"], ["--floss-epochs", "10,000,000"]),
    "prefloss-epochs-1e8": (["--prefloss-epochs", "100000000"], ["--prefloss-epochs", "10,000,000"]),
}


@pytest.mark.parametrize("case", list(TASK_CASES))
def test_task_bound_refused(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    extra, match = TASK_CASES[case]
    assert_refused(["task", "copy", "--delay", "5", *extra], capsys, watch=tmp_path, match=match)


# ds.fit(run_dir=""): Path("") is the current folder, so a default fit (10^4 steps) ran and wrote its run into the
# current folder. The fix lies in dsrecon/experiment.py (training engineers): check the raw run_dir with
# fileio.check_path(run_dir, "run_dir", ConfigError) before it becomes a Path (as the CLI's --out "" now is).
# models/* (sizes engineer): ds.PLRNN(3, 10**6) is torch's allocator error (4 TB); fix: the constructors check
# latent_dim <= 10,000 as ModelConfig does, in one ConfigError line.
# config.py (sizes engineer): ds.TrainConfig(steps="5") is coerced from the string (a --set value is text, a
# Python argument is not); fix: parse text only where --set and TOML strings come in (config.override), and
# refuse a str for a numeric field of the dataclasses.
@pytest.mark.parametrize("case", ["fit-run-dir-empty", "plrnn-latent-dim-1e6", "trainconfig-steps-a-string"])
def test_api_refused_left_for_others(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if case == "fit-run-dir-empty":
        data = ds.load("lorenz", n_train=1500, n_test=1000, transient=500, cache=False)
        cfg = ds.RunConfig(train=ds.TrainConfig(method="stf", steps=2, validate_every=0), eval=ds.EvalConfig(t_gen=1000))
        call = lambda: ds.fit(ds.PLRNN(3, 10, seed=0), data, tau=10, config=cfg, run_dir="", progress=False)  # noqa: E731
    elif case == "trainconfig-steps-a-string":
        call = lambda: ds.TrainConfig(steps="5")  # noqa: E731
    else:
        call = lambda: ds.PLRNN(3, 10**6)  # noqa: E731
    try:
        with pytest.raises(ds.DsreconError) as info:
            call()
        assert "\n" not in str(info.value)
    finally:
        assert list(tmp_path.iterdir()) == []
