"""A run folder is dsrecon's alone (issue 26, parts 1 and 6).

- ``--out`` into a non-empty folder that is not a run is refused; a run folder holding anything dsrecon did not
  write (a user's file, a symlink where dsrecon writes a folder, a recorded file changed since) is refused, with
  or without ``--overwrite``, and nothing in it changes (tests/hostile.py's contract).
- ``--overwrite`` keeps the old run whole until the new one is finished: a failure or Ctrl-C before anything
  resumable was written puts it back byte for byte.
- One writer: a second fit into a folder being written exits 2 in one line naming the holder's pid; a holder
  killed with SIGKILL leaves a lock the next fit takes over.
- A model.pt of another architecture or size than config.json names is one line, never scored under the wrong
  name.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsrecon import report, runs
from dsrecon.errors import ConfigError
from dsrecon.models import MODELS
from hostile import assert_refused, make_finished_run, run_cli, snapshot

BASE = ["fit", "lorenz", "--steps", "10", "--t-gen", "1000", "--quiet", "--set", "train.validate_every=0"]
FIT = [*BASE, "--model", "plrnn", "--method", "stf", "--tau", "20"]   # the finished run's settings (tests/hostile.py)
RNN = ["--model", "rnn", "--method", "bptt-clip"]
LSTM = ["--model", "lstm", "--method", "bptt-clip"]


@pytest.fixture
def finished(tmp_path, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return make_finished_run(tmp_path / "done", tmp_path_factory)


# ---------------------------------------------------------------------------------------------- not ours: refused
@pytest.mark.parametrize("overwrite", [False, True])
def test_folder_of_user_files_is_refused(overwrite, tmp_path, monkeypatch, capsys):
    """The issue's case: holiday.png and thesis.tmp were deleted by --overwrite; a lone loss.png was replaced."""
    monkeypatch.chdir(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.png").write_bytes(b"\x89PNG mine")
    (photos / "thesis.tmp").write_text("draft\n")
    (photos / "loss.png").write_bytes(b"\x89PNG my loss curve")
    argv = [*FIT, "--out", photos] + (["--overwrite"] if overwrite else [])
    assert_refused(argv, capsys, watch=tmp_path, match=["not a dsrecon run", "holiday.png", "new or empty folder"])


@pytest.mark.parametrize("case", ["user-png", "user-tmp", "user-folder", "checkpoints-symlink", "checkpoints-foreign",
                                  "figure-replaced", "model-replaced", "config-a-symlink"])
def test_run_folder_holding_what_dsrecon_did_not_write_is_refused(case, finished, tmp_path, capsys):
    if case == "user-png":
        (finished / "holiday.png").write_bytes(b"\x89PNG mine")
        match = "holiday.png"
    elif case == "user-tmp":
        (finished / "thesis.tmp").write_text("draft\n")
        match = "thesis.tmp"
    elif case == "user-folder":
        (finished / "notes").mkdir()
        (finished / "notes" / "a.txt").write_text("x")
        match = "notes"
    elif case == "checkpoints-symlink":   # the case: rmtree failed on it after the run's files were deleted
        elsewhere = tmp_path / "elsewhere"
        (finished / "checkpoints").rename(elsewhere)
        (finished / "checkpoints").symlink_to(elsewhere)
        match = "checkpoints (a symbolic link)"
    elif case == "checkpoints-foreign":
        (finished / "checkpoints" / "best-by-hand.pt").write_bytes(b"mine")
        match = "checkpoints/best-by-hand.pt"
    elif case == "figure-replaced":   # the name is dsrecon's, the bytes the user's: the manifest's sha256 tells
        (finished / "loss.png").write_bytes(b"\x89PNG my own loss curve")
        match = "loss.png (changed since dsrecon wrote it)"
    elif case == "model-replaced":
        (finished / "model.pt").write_bytes(b"my model")
        match = "model.pt (changed since dsrecon wrote it)"
    else:
        (tmp_path / "my-config.json").write_text((finished / "config.json").read_text())
        (finished / "config.json").unlink()
        (finished / "config.json").symlink_to(tmp_path / "my-config.json")
        match = "config.json (a symbolic link)"
    for extra in ([], ["--overwrite"]):
        assert_refused([*FIT, "--out", finished, *extra], capsys, watch=tmp_path,
                       match=[str(finished), match, "dsrecon replaces only its own files"])


# ---------------------------------------------------------------------------------------------- --overwrite
def test_overwrite_replaces_exactly_the_old_run(finished, tmp_path, capsys):
    old_manifest = runs.read_manifest(finished)
    assert old_manifest is not None and "model.pt" in old_manifest["files"]
    code, _, err = run_cli([*BASE, *RNN, "--out", finished, "--overwrite", "--seed", "1"], capsys)
    assert code == 0, err
    cfg = json.loads((finished / "config.json").read_text())["config"]
    assert cfg["model"]["kind"] == "rnn" and cfg["train"]["seed"] == 1
    names = {p.name for p in finished.iterdir()}
    assert runs.REPLACED not in names and runs.LOCK not in names   # the old run is gone, the lock released
    manifest = runs.read_manifest(finished)
    assert manifest["files"]["model.pt"] == runs.sha256(finished / "model.pt")
    assert set(manifest["files"]) >= {"config.json", "metrics.json", "model.pt", "generated.nc", "report.html"}
    assert isinstance(runs.open(finished).model(), MODELS["rnn"])


def test_overwrite_that_fails_before_a_checkpoint_leaves_the_old_run(finished, tmp_path, capsys, monkeypatch):
    """The issue's case: the old run was deleted part-way, then the fit failed, leaving neither."""
    import dsrecon.experiment as experiment

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(experiment, "train_loop", disk_full)
    before = snapshot(finished)
    code, _, err = run_cli([*FIT, "--out", finished, "--overwrite", "--seed", "1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "No space left" in err, err
    assert snapshot(finished) == before


def test_overwrite_interrupted_keeps_the_old_run_then_resume_finishes(finished, tmp_path, capsys, ctrl_c_at):
    """Ctrl-C while the new run trains (its checkpoint resumable): the old run is kept whole beside it, and goes
    only when the new one finishes."""
    before = snapshot(finished)
    with ctrl_c_at(3):
        code, _, err = run_cli([*FIT, "--out", finished, "--overwrite", "--seed", "1"], capsys)
    assert code == 130, err
    kept = finished / runs.REPLACED
    assert "kept whole" in err and kept.is_dir()
    assert {k.replace(str(kept), str(finished)): v for k, v in snapshot(kept).items() if k != str(kept)} == {
        k: v for k, v in before.items() if k != str(finished)}
    code, _, err = run_cli([*FIT, "--out", finished], capsys)   # neither finished nor whole: refused, kept
    assert code == 2 and "interrupted run" in err, err
    code, _, err = run_cli(["fit", "--resume", finished, "--quiet"], capsys)
    assert code == 0, err
    assert not kept.exists() and (finished / "metrics.json").exists()
    assert json.loads((finished / "config.json").read_text())["config"]["train"]["seed"] == 1


def test_clear_run_removes_only_dsrecon_files(finished, tmp_path):
    (finished / "holiday.png").write_bytes(b"mine")
    before = snapshot(finished)
    with pytest.raises(ConfigError, match="holiday.png"):
        runs.clear_run(finished)
    assert snapshot(finished) == before
    (finished / "holiday.png").unlink()
    runs.clear_run(finished)
    assert not any(finished.iterdir())


def test_report_embeds_only_the_run_figures(finished, tmp_path):
    (finished / "holiday.png").write_bytes(b"\x89PNG mine")
    page = report.write_html(runs.open(finished)).read_text()
    assert "holiday" not in page and "attractor.png" in page


# ---------------------------------------------------------------------------------------------- one writer
def _cli_process(argv, cwd):
    code = "import sys; from dsrecon import cli; sys.exit(cli.main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *map(str, argv)], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _wait_for_holder(run_dir: Path, proc, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while f"pid {proc.pid}" not in (runs.RunLock.holder(run_dir) or ""):
        assert proc.poll() is None, f"the holder exited early: {proc.stderr.read()}"
        assert time.monotonic() < end, "the holder never took the lock"
        time.sleep(0.1)


def test_second_writer_refused_and_a_killed_holder_taken_over(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    holder = _cli_process([*FIT, "--out", out, "--steps", "1000000"], tmp_path)
    try:
        _wait_for_holder(out, holder)
        for argv in (FIT, [*FIT, "--overwrite"], [*BASE, *RNN]):
            code, _, err = run_cli([*argv, "--out", out], capsys)
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
            assert f"pid {holder.pid}" in lines[0] and "another dsrecon process" in lines[0]
        code, _, err = run_cli(["fit", "--resume", out, "--quiet"], capsys)
        assert code == 2 and f"pid {holder.pid}" in err, err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / runs.LOCK).exists(), "SIGKILL leaves the lock file behind (the case under test)"
    assert runs.RunLock.holder(out) is None   # ... but nobody holds it
    code, _, err = run_cli([*FIT, "--out", out, "--overwrite"], capsys)
    assert code == 0, err
    assert (out / "metrics.json").exists() and not (out / runs.LOCK).exists()


def test_two_fits_started_together_one_runs(tmp_path):
    out = tmp_path / "run"
    procs = [_cli_process([*BASE, *m, "--out", out], tmp_path) for m in (RNN, LSTM)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes in ([0, 2], [0, 0]), results
    if codes == [0, 2]:   # the loser says so in one line
        (err,) = [e for c, e in results if c == 2]
        assert len(err.strip().splitlines()) == 1 and ("another dsrecon process" in err or "finished run" in err), err
    # whichever ran (or ran second, after the first had finished, refused above), the folder is one run's
    kind = json.loads((out / "config.json").read_text())["config"]["model"]["kind"]
    assert runs.open(out).metrics()["model"] == kind
    assert isinstance(runs.open(out).model(), MODELS[kind])


# ---------------------------------------------------------------------------------------------- part 6
@pytest.mark.parametrize("case", ["other-architecture", "other-size"])
def test_model_file_of_another_run_is_refused(case, tmp_path, monkeypatch, capsys):
    """The issue's case: `eval` said shplrnn and scored an LSTM copied in."""
    monkeypatch.chdir(tmp_path)
    mine, other = tmp_path / "mine", tmp_path / "other"
    if case == "other-architecture":
        argvs, match = ([*BASE, "--out", mine], [*BASE, *LSTM, "--out", other]), ["lstm model", "names shplrnn"]
    else:
        argvs, match = ([*FIT, "--latent-dim", "8", "--out", mine], [*FIT, "--latent-dim", "7", "--out", other]), \
            ["latent_dim 7", "says 8"]
    for argv in argvs:
        code, _, err = run_cli(argv, capsys)
        assert code == 0, err
    (mine / "model.pt").write_bytes((other / "model.pt").read_bytes())
    assert_refused(["eval", mine], capsys, watch=tmp_path, match=[str(mine / "model.pt"), *match])
