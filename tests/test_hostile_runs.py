"""Run directories under hostile input (issue 12): one way to open a run (dsrecon.runs.open), and its lifecycle.

Every case goes through the CLI and keeps the contract of tests/hostile.py: exit 2, one line naming the file or
option and the fix, and nothing under the watched folders added, changed or removed (a finished run stays
byte-for-byte the same).
"""
import errno
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import dsrecon as ds
from dsrecon import runs
from hostile import assert_refused, make_finished_run, run_cli

FIT = ["fit", "lorenz", "--model", "plrnn", "--method", "stf", "--tau", "20", "--steps", "10", "--t-gen", "1000",
       "--quiet", "--set", "train.validate_every=0"]


@pytest.fixture
def finished(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return make_finished_run(tmp_path / "done", tmp_path_factory)


def _csv(path: Path, shift: float = 0.0) -> Path:
    t = np.arange(3000) * 0.05
    np.savetxt(path, np.c_[t, np.sin(t + shift), np.cos(1.3 * t)], delimiter=",", header="time,a,b", comments="")
    return path


CSV_FIT = ["--model", "plrnn", "--method", "stf", "--tau", "5", "--steps", "3", "--t-gen", "1000", "--quiet", "--set", "train.seq_len=50",
           "--set", "train.validate_every=0"]


# ---------------------------------------------------------------------------------------------- fit --out
@pytest.mark.parametrize("case", ["finished-run", "interrupted-run", "not-a-run", "a-file", "under-a-file", "proc",
                                  "data-dir-a-file", "data-dir-under-a-file", "data-dir-proc"])
def test_fit_out_refused(case, finished, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    if case == "finished-run":
        argv, match = [*FIT, "--out", finished], [str(finished), "finished run", "--overwrite"]
    elif case == "interrupted-run":
        for name in ("model.pt", "metrics.json"):
            (finished / name).unlink()
        argv, match = [*FIT, "--out", finished], [str(finished), "interrupted run", f"--resume {finished}"]
    elif case == "not-a-run":
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "thesis.tex").write_text("x")
        argv, match = [*FIT, "--out", tmp_path / "mine", "--overwrite"], ["not a dsrecon run", "thesis.tex"]
    elif case == "a-file":
        argv, match = [*FIT, "--out", tmp_path / "notes.txt"], ["notes.txt is a file"]
    elif case == "under-a-file":
        argv, match = [*FIT, "--out", tmp_path / "notes.txt" / "run"], ["notes.txt is a file"]
    elif case == "proc":
        argv, match = [*FIT, "--out", "/proc/dsrecon-x"], ["/proc/dsrecon-x", "choose another folder"]
    elif case == "data-dir-a-file":
        argv, match = [*FIT, "--data-dir", tmp_path / "notes.txt"], ["--data-dir", "is a file"]
    elif case == "data-dir-under-a-file":
        argv, match = [*FIT, "--data-dir", tmp_path / "notes.txt" / "d"], ["--data-dir", "is a file"]
    else:
        argv, match = [*FIT, "--data-dir", "/proc/dsrecon-x"], ["--data-dir", "choose another folder"]
    assert_refused(argv, capsys, watch=tmp_path, match=match)


def test_fit_overwrite_replaces_a_finished_run(finished, tmp_path, capsys):
    old = runs.read_manifest(finished)["files"]
    code, _, err = run_cli([*FIT, "--out", finished, "--overwrite", "--seed", "1"], capsys)
    assert code == 0, err
    new = runs.read_manifest(finished)["files"]
    assert new["model.pt"] != old["model.pt"] and not (finished / runs.REPLACED).exists()
    assert json.loads((finished / "config.json").read_text())["config"]["train"]["seed"] == 1


# ---------------------------------------------------------------------------------------------- refused fits leave nothing
@pytest.mark.parametrize("case", ["device-cuda", "tau-auto-white-noise", "seq-len-too-long", "bad-set"])
def test_refused_fit_creates_no_run_directory(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if case == "device-cuda":
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
        argv, match = [*FIT, "--device", "cuda"], ["--device cuda"]
    elif case == "tau-auto-white-noise":
        np.savetxt(tmp_path / "rec.csv", np.random.default_rng(0).standard_normal((3000, 2)), delimiter=",",
                   header="a,b", comments="")
        argv = ["fit", tmp_path / "rec.csv", "--tau", "auto", "--steps", "3", "--quiet"]
        match = ["--tau auto", "no temporal structure", "white noise"]   # no "--tau N": the default gtf ignores tau
    elif case == "seq-len-too-long":
        argv, match = [*FIT, "--set", "train.seq_len=10000000"], ["seq_len"]
    else:
        argv, match = [*FIT, "--set", "train.nosuch=1"], ["nosuch"]
    for out in ([], ["--out", tmp_path / "new"]):   # the default runs/ folder and an explicit --out
        assert_refused([*argv, *out], capsys, watch=tmp_path, match=match)
        assert not (tmp_path / "runs").exists() and not (tmp_path / "new").exists()


def test_long_file_name_gets_a_short_run_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = _csv(tmp_path / ("r" * 246 + ".csv"))   # 250 characters
    code, _, err = run_cli(["fit", data, "--columns", "a", *CSV_FIT], capsys)
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    assert len(run.name) < 100 and (run / "metrics.json").exists()


# ---------------------------------------------------------------------------------------------- fit --resume
def _other_architecture_checkpoint(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("other") / "run"
    assert run_cli_quiet([*FIT, "--latent-dim", "7", "--out", src]) == 0
    return src / "checkpoints" / "last.pt"


def run_cli_quiet(argv) -> int:
    import contextlib
    import io

    from dsrecon import cli

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli.main([str(a) for a in argv])


@pytest.mark.parametrize("case", [
    "finished", "no-checkpoint-finished", "no-checkpoint-unfinished", "not-a-folder", "no-config",
    "config-truncated", "config-not-an-object", "checkpoint-truncated", "checkpoint-pickled-code",
    "checkpoint-not-a-checkpoint", "checkpoint-other-architecture", "checkpoint-bad-history",
    "checkpoint-bad-optimizer", "checkpoint-bad-rng", "checkpoint-step-not-a-number",
    "with-dataset", "with-steps", "with-seed", "with-out", "with-t-gen", "with-model", "with-set-lr", "with-overwrite",
])
def test_resume_refused(case, finished, tmp_path, tmp_path_factory, capsys):
    ck = finished / "checkpoints" / "last.pt"
    more = ["--set", "train.steps=20"]   # not finished any more: the checkpoint itself is what is refused
    argv, match = ["fit", "--resume", finished, *more], [str(ck)]
    if case == "finished":
        argv, match = ["fit", "--resume", finished], ["finished", "--set train.steps=N", f"dsrecon eval {finished}"]
    elif case == "no-checkpoint-finished":
        ck.unlink()
        argv, match = ["fit", "--resume", finished], ["no checkpoints/last.pt", "model.pt is kept"]
    elif case == "no-checkpoint-unfinished":
        for name in ("model.pt", "metrics.json", "checkpoints/last.pt"):
            (finished / name).unlink()
        argv, match = ["fit", "--resume", finished], ["nothing to resume", "--overwrite"]
    elif case == "not-a-folder":
        argv, match = ["fit", "--resume", finished / "config.json"], ["is a file, not a run directory"]
    elif case == "no-config":
        (finished / "config.json").unlink()
        argv, match = ["fit", "--resume", finished], ["no config.json"]
    elif case == "config-truncated":
        (finished / "config.json").write_bytes((finished / "config.json").read_bytes()[:50])
        argv, match = ["fit", "--resume", finished], ["config.json is not valid JSON"]
    elif case == "config-not-an-object":
        (finished / "config.json").write_text("[1, 2]")
        argv, match = ["fit", "--resume", finished], ["config.json holds a JSON list"]
    elif case == "checkpoint-truncated":
        ck.write_bytes(ck.read_bytes()[:1000])
    elif case == "checkpoint-pickled-code":
        torch.save({"step": 3, "payload": Path("x")}, ck)   # a non-weights-only pickle
    elif case == "checkpoint-not-a-checkpoint":
        torch.save({"step": 3}, ck)
        match = [str(ck), "not a dsrecon training checkpoint"]
    elif case in ("checkpoint-bad-history", "checkpoint-bad-optimizer", "checkpoint-bad-rng",
                  "checkpoint-step-not-a-number"):
        blob = torch.load(ck, weights_only=True)
        key, value = {"checkpoint-bad-history": ("history", [1]),
                      "checkpoint-bad-optimizer": ("optimizer", {"state": {}, "param_groups": []}),
                      "checkpoint-bad-rng": ("rng", torch.zeros(3)),
                      "checkpoint-step-not-a-number": ("step", "abc")}[case]
        blob[key] = value
        torch.save(blob, ck)
    elif case == "checkpoint-other-architecture":
        shutil.copy(_other_architecture_checkpoint(tmp_path_factory), ck)
        match = [str(ck), "another architecture", "latent_dim 100"]
    elif case == "with-dataset":
        argv, match = ["fit", "lorenz", "--resume", finished], ["takes no DATASET"]
    elif case == "with-steps":
        argv, match = ["fit", "--resume", finished, "--steps", "20"], ["--steps", "--set train.steps=20"]
    elif case == "with-seed":
        argv, match = ["fit", "--resume", finished, "--seed", "3"], ["--seed with --resume", "start a new fit"]
    elif case == "with-out":
        argv, match = ["fit", "--resume", finished, "--out", tmp_path / "elsewhere"], ["--out with --resume"]
    elif case == "with-t-gen":
        argv, match = ["fit", "--resume", finished, "--t-gen", "2000"], ["--t-gen with --resume"]
    elif case == "with-model":
        argv, match = ["fit", "--resume", finished, "--model", "plrnn"], ["--model with --resume"]
    elif case == "with-set-lr":
        argv, match = ["fit", "--resume", finished, "--set", "train.lr=0.1"], ["--set train.lr=0.1", "train.steps"]
    elif case == "with-overwrite":
        argv, match = ["fit", "--resume", finished, "--overwrite"], ["--overwrite with --resume"]
    line = assert_refused(argv, capsys, watch=tmp_path, match=match)
    assert "weights_only" not in line


def test_resume_with_more_steps_trains_on(finished, capsys):
    code, _, err = run_cli(["fit", "--resume", finished, "--quiet", "--set", "train.steps=15"], capsys)
    assert code == 0, err
    assert json.loads((finished / "metrics.json").read_text())["steps"] == 15
    assert json.loads((finished / "config.json").read_text())["config"]["train"]["steps"] == 15


# ---------------------------------------------------------------------------------------------- eval / lyap / compare
@pytest.mark.parametrize("command", ["eval", "lyap", "compare"])
@pytest.mark.parametrize("case", ["missing", "a-file", "not-a-run", "config-truncated", "config-binary", "model-truncated",
                                  "model-pickled-code", "model-other-architecture", "metrics-truncated",
                                  "model-missing"])
def test_reading_a_run_refused(command, case, finished, tmp_path, capsys):
    target, match = finished, []
    if case == "missing":
        target, match = tmp_path / "nosuch", ["nosuch"]
    elif case == "a-file":
        target = finished / "metrics.json"
        match = ["metrics.json"]
    elif case == "config-truncated":
        (finished / "config.json").write_bytes((finished / "config.json").read_bytes()[:80])
        match = ["config.json is not valid JSON"]
    elif case == "config-binary":
        (finished / "config.json").write_bytes(b"\xff\xfe\x00garbage")
        match = ["config.json is not valid JSON"]
    elif case == "model-truncated":
        (finished / "model.pt").write_bytes((finished / "model.pt").read_bytes()[:2000])
        match = ["model.pt is not a readable dsrecon torch file"]
    elif case == "model-pickled-code":
        torch.save({"config": {"kind": "plrnn"}, "state_dict": Path("x")}, finished / "model.pt")
        match = ["model.pt is not a readable dsrecon torch file"]
    elif case == "model-other-architecture":
        blob = torch.load(finished / "model.pt", weights_only=True)
        blob["config"]["hparams"]["latent_dim"] = 7
        torch.save(blob, finished / "model.pt")
        match = ["model.pt: its weights do not fit the plrnn architecture"]
    elif case == "metrics-truncated":
        (finished / "metrics.json").write_text('{"D_stsp": ')
        match = ["metrics.json is not valid JSON"]
    elif case == "model-missing":
        (finished / "model.pt").unlink()
        match = ["no model.pt", f"--resume {finished}"]
    reads = {"eval": ("config.json", "model.pt"), "lyap": ("config.json", "model.pt"),
             "compare": ("config.json", "metrics.json")}[command]
    if case.split("-")[0] in ("config", "model", "metrics") and not any(case.startswith(r.split(".")[0])
                                                                         for r in reads):
        pytest.skip(f"{command} does not read that file")
    if command == "lyap" and case == "a-file":
        pytest.skip("lyap reads a file target as a series")
    if case == "not-a-run":
        target, match = tmp_path, {"lyap": ["not a run directory", "config.json"], "eval": ["no config.json"],
                                   "compare": ["no metrics.json"]}[command]
    argv = {"eval": ["eval", target, "--t-gen", "1000"], "lyap": ["lyap", target, "--n-steps", "100"],
            "compare": ["compare", target]}[command]
    line = assert_refused(argv, capsys, watch=tmp_path, match=match)
    assert "weights_only" not in line


@pytest.mark.parametrize("case", ["eval-n-init-beyond-memory", "lyap-dt-on-a-run", "lyap-method-on-a-run",
                                  "lyap-k-on-a-file"])
def test_option_for_another_target_refused(case, finished, tmp_path, capsys):
    """An option that cannot apply is refused in one line before any work: the free runs of --n-init that no
    memory holds (not torch's allocator error after the main evaluation), a file's --dt or --method given to a
    run directory, a run's --k given to a file (each would otherwise be ignored without a word)."""
    _csv(tmp_path / "rec.csv")
    argv, match = {
        "eval-n-init-beyond-memory": (["eval", finished, "--n-init", "100000000"],
                                      ["--n-init 100000000 free runs of --t-gen", "GiB free", "or fewer"]),
        "lyap-dt-on-a-run": (["lyap", finished, "--dt", "0.1"], ["--dt applies to a dataset or a file", str(finished)]),
        "lyap-method-on-a-run": (["lyap", finished, "--method", "kantz"], ["--method applies to a dataset or a file"]),
        "lyap-k-on-a-file": (["lyap", tmp_path / "rec.csv", "--k", "3"], ["--k applies to a run directory", "rec.csv"]),
    }[case]
    assert_refused(argv, capsys, watch=tmp_path, match=match)


def test_refused_out_through_a_symlink_leaves_the_finished_run_untouched(finished, tmp_path, capsys):
    """--out naming a finished run through a symlink: refused before the folder is probed for writing, whose
    temporary file cannot be anonymous through a symlink and would change the run folder (its mtime)."""
    link = tmp_path / "link"
    link.symlink_to(finished, target_is_directory=True)
    before = (finished.stat().st_mtime_ns, sorted(p.name for p in finished.iterdir()))
    assert_refused([*FIT, "--out", link], capsys, watch=tmp_path, match=["finished run", "--overwrite"])
    assert (finished.stat().st_mtime_ns, sorted(p.name for p in finished.iterdir())) == before


@pytest.mark.parametrize("case", ["plot-a-folder", "plot-under-a-file", "plot-proc", "plot-not-png"])
def test_plot_paths_refused(case, finished, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    plot = {"plot-a-folder": tmp_path, "plot-under-a-file": tmp_path / "notes.txt" / "p.png",
            "plot-proc": "/proc/dsrecon-x/p.png", "plot-not-png": tmp_path / "p.txt"}[case]
    assert_refused(["compare", finished, "--plot", plot], capsys, watch=tmp_path, match=["--plot"])
    assert_refused(["lyap", "lorenz", "--plot", plot], capsys, watch=tmp_path, match=["--plot"])


# ---------------------------------------------------------------------------------------------- data changed since fit
def test_data_changed_since_fit_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = _csv(tmp_path / "rec.csv")
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", data, *CSV_FIT, "--out", run], capsys)
    assert code == 0, err
    info = json.loads((run / "config.json").read_text())
    assert len(info["data_fingerprint"]) == 64
    _csv(data, shift=0.5)   # the file is replaced by other data
    match = ["rec.csv changed since the run", "fit a new run"]
    assert_refused(["eval", run, "--t-gen", "1000"], capsys, watch=tmp_path, match=match)
    assert_refused(["lyap", run, "--n-steps", "100"], capsys, watch=tmp_path, match=match)
    (run / "metrics.json").unlink()   # an unfinished run: resume would train on other data
    assert_refused(["fit", "--resume", run], capsys, watch=tmp_path, match=match)
    # a run written before fingerprints existed is accepted without a check
    info.pop("data_fingerprint")
    (run / "config.json").write_text(json.dumps(info))
    code, _, err = run_cli(["eval", run, "--t-gen", "1000"], capsys)
    assert code == 0, err


# ---------------------------------------------------------------------------------------------- interrupts, disk full
def test_sigint_before_the_first_checkpoint_can_resume(tmp_path, monkeypatch, capsys):
    import dsrecon.train as train_mod

    monkeypatch.chdir(tmp_path)
    real = train_mod.rollout

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "rollout", interrupt)
    run = tmp_path / "run"
    code, _, err = run_cli([*FIT, "--out", run], capsys)
    assert code == 130 and "Traceback" not in err
    assert "checkpoint of step 0" in err and f"dsrecon fit --resume {run}`" in err
    assert runs.load_torch(run / "checkpoints" / "last.pt")["step"] == 0   # the message is true
    monkeypatch.setattr(train_mod, "rollout", real)
    code, _, err = run_cli(["fit", "--resume", run, "--quiet"], capsys)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 10


def test_sigint_while_scoring_says_how_to_resume(tmp_path, monkeypatch, capsys):
    import dsrecon.evaluation as ev

    monkeypatch.chdir(tmp_path)
    real = ev.evaluate

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "evaluate", interrupt)
    run = tmp_path / "run"
    code, _, err = run_cli([*FIT, "--out", run], capsys)
    assert code == 130 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "while writing and scoring" in err and f"dsrecon fit --resume {run}`" in err
    monkeypatch.setattr(ev, "evaluate", real)
    code, _, err = run_cli(["fit", "--resume", run, "--quiet"], capsys)
    assert code == 0, err
    assert (run / "metrics.json").exists()


def test_sigint_during_eval_says_rerun(finished, tmp_path, monkeypatch, capsys):
    import dsrecon.evaluation as ev
    from hostile import snapshot

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "evaluate", interrupt)
    before = snapshot(tmp_path)
    code, _, err = run_cli(["eval", finished, "--t-gen", "1000"], capsys)
    assert code == 130 and "Traceback" not in err
    assert f"rerun `dsrecon eval {finished}`" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("victim", ["last.pt", "model.pt", "metrics.json"])
def test_disk_full_is_one_line_and_the_run_stays_resumable(victim, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    real, state = os.replace, {"n": 0}

    def full(src, dst, *a, **k):
        if Path(dst).name == victim:
            state["n"] += 1
            if state["n"] == (2 if victim == "last.pt" else 1):   # last.pt: the step-0 one is written, then full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(runs.os, "replace", full)
    run = tmp_path / "run"
    code, _, err = run_cli([*FIT, "--out", run], capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "No space left on device" in err and f"dsrecon fit --resume {run}`" in err
    assert not list(run.rglob("*.tmp"))
    monkeypatch.setattr(runs.os, "replace", real)
    code, _, err = run_cli(["fit", "--resume", run, "--quiet"], capsys)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["steps"] == 10


@pytest.mark.parametrize("victim", ["config.json", "last.pt"])
def test_disk_full_before_the_first_checkpoint_leaves_nothing(victim, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    real = os.replace

    def full(src, dst, *a, **k):
        if Path(dst).name == victim:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(runs.os, "replace", full)
    for out in ([], ["--out", tmp_path / "run"]):
        assert_refused([*FIT, *out], capsys, watch=tmp_path,
                       match=[victim, "No space left on device", "free some disk space"])


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask(umask, mode, tmp_path):
    old = os.umask(umask)
    try:
        runs.write_json(tmp_path / "a.json", {"x": 1})
        runs.save_torch(tmp_path / "b.pt", {"x": torch.zeros(2)})
        ds.data.write_netcdf(xr.Dataset({"x": ("time", np.zeros(3))}), tmp_path / "c.nc")
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.pt", "c.nc"]   # no temp file left
    for name in ("a.json", "b.pt", "c.nc"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


def test_a_run_written_before_the_channel_rename_is_read(tmp_path, monkeypatch, capsys):
    # earlier versions named the channel dimension "dim" in their datasets and in a run's generated.nc:
    # `dsrecon fit FILE` on such a file, then runs.open, `dsrecon eval` and `dsrecon lyap` on such a run
    monkeypatch.chdir(tmp_path)
    t = np.arange(3000) * 0.05
    xr.Dataset({"x": (("time", "dim"), np.c_[np.sin(t), np.cos(1.3 * t)])}, coords={"time": t, "dim": ["a", "b"]},
               attrs={"dt": 0.05}).to_netcdf(tmp_path / "old.nc")
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", tmp_path / "old.nc", *CSV_FIT, "--out", run], capsys)
    assert code == 0, err
    with xr.open_dataset(run / "generated.nc") as g:
        old = g.load().rename({"channel": "dim"})
    old.to_netcdf(run / "generated.nc")      # the run directory as an earlier version wrote it
    opened = runs.open(run)
    gen = opened.generated()
    assert gen["x"].dims == ("time", "channel") and list(gen["channel"].values) == ["a", "b"]
    assert list(opened.data()["channel"].values) == ["a", "b"]      # the data pass the run's fingerprint check
    for argv in (["eval", run, "--t-gen", "1000"], ["lyap", run, "--n-steps", "100"]):
        code, _, err = run_cli(argv, capsys)
        assert code == 0, err


def test_open_run_reads_a_finished_run(finished):
    run = runs.open(finished)
    assert run.finished and run.config.model.kind == "plrnn"
    assert run.fingerprint is not None and "D_stsp" in run.metrics()
    assert run.checkpoint()["step"] == 10
    run.model()
