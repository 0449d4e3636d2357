"""Paths stay inside (issue 26, part 2): a download card's filename or archive member, an archive's own members,
a sweep's or leaderboard's output folder and a --plot file are checked against their root before anything is
written. Each refusal keeps the CLI contract of tests/hostile.py: exit 2, one line, nothing under the watched
folder (the test's tmp_path: the data directory and everything around it) added, changed or removed."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hostile import assert_refused, run_cli

from dsrecon import results as R, systems


def _series_csv(path: Path, n=800) -> bytes:
    x = systems.simulate("lorenz", dict(sigma=16.0, rho=45.92, beta=4.0), dt=0.01, n_samples=n, transient=200, seed=0)
    np.savetxt(path, x, delimiter=",", header="x,y,z", comments="")
    return path.read_bytes()


def _card(tmp_path: Path, filename: str, member: str | None = None) -> Path:
    """A download card whose URL is refused at once (port 9): nothing is ever downloaded."""
    text = (f'name = "rec"\nversion = 1\nkind = "download"\n[file]\nurl = "http://127.0.0.1:9/x"\n'
            f'filename = "{filename}"\nsha256 = ""\n' + (f'member = "{member}"\n' if member else "")
            + "[read]\ndt = 0.1\n")
    (tmp_path / "card").mkdir(exist_ok=True)
    (tmp_path / "card" / "rec.toml").write_text(text)
    return tmp_path / "card" / "rec.toml"


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as t:
        for info in members:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            t.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _info(name, kind=tarfile.REGTYPE, linkname="") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


# ------------------------------------------------------------------------------------- download cards
def _filename_parent(t):       # the case: a hand-placed copy's .sha256 was recorded outside the data dir
    _series_csv(t / "outside_rec.csv")
    return _card(t, "../outside_rec.csv"), ["filename = '../outside_rec.csv'", "plain file name"]


def _filename_absolute(t):
    _series_csv(t / "abs_rec.csv")
    return _card(t, str(t / "abs_rec.csv")), ["filename = ", "abs_rec.csv", "plain file name"]


def _member_parent(t):         # the case: member "../escaped.csv" was extracted next to the data dir
    _zip(t / "dl" / "rec.zip", {"escaped.csv": _series_csv(t / "src.csv")})
    return _card(t, "rec.zip", "../escaped.csv"), ["member = '../escaped.csv'", "relative path inside the archive"]


def _member_absolute(t):       # an absolute member was extracted to that absolute path
    _zip(t / "dl" / "rec.zip", {"abs.csv": _series_csv(t / "src.csv")})
    return _card(t, "rec.zip", str(t / "elsewhere" / "abs.csv")), ["member = ", "relative path inside the archive"]


def _zip_with_escaping_member(t):   # the member named is fine, but the archive also holds one aimed outside
    data = _series_csv(t / "src.csv")
    _zip(t / "dl" / "rec.zip", {"rec.csv": data, "../evil.csv": data})
    return _card(t, "rec.zip", "rec.csv"), ["rec.zip", "'../evil.csv'", "nothing was extracted"]


def _tar_symlink_outside(t):   # rec.csv is a link to a file outside the data directory
    _series_csv(t / "secret.csv")
    _tar(t / "dl" / "rec.tar", [_info("rec.csv", tarfile.SYMTYPE, str(t / "secret.csv"))], {})
    return _card(t, "rec.tar", "rec.csv"), ["rec.tar", "'rec.csv'", "outside"]


def _tar_hardlink_outside(t):
    data = _series_csv(t / "src.csv")
    _tar(t / "dl" / "rec.tar", [_info("rec.csv"), _info("other.csv", tarfile.LNKTYPE, "../../x.csv")],
         {"rec.csv": data})
    return _card(t, "rec.tar", "rec.csv"), ["rec.tar", "'other.csv'", "outside"]


def _tar_device(t):
    data = _series_csv(t / "src.csv")
    _tar(t / "dl" / "rec.tar", [_info("rec.csv"), _info("null", tarfile.CHRTYPE)], {"rec.csv": data})
    return _card(t, "rec.tar", "rec.csv"), ["rec.tar", "'null'", "a device"]


def _tar_dotdot_member(t):
    data = _series_csv(t / "src.csv")
    _tar(t / "dl" / "rec.tar", [_info("rec.csv"), _info("../evil.csv")], {"rec.csv": data, "../evil.csv": data})
    return _card(t, "rec.tar", "rec.csv"), ["rec.tar", "'../evil.csv'", "'..'"]


FETCH_CASES = {
    "filename-parent-dirs": _filename_parent, "filename-absolute": _filename_absolute,
    "member-parent-dirs": _member_parent, "member-absolute": _member_absolute,
    "zip-member-escaping": _zip_with_escaping_member, "tar-symlink-outside": _tar_symlink_outside,
    "tar-hardlink-outside": _tar_hardlink_outside, "tar-device": _tar_device, "tar-dotdot-member": _tar_dotdot_member,
}


@pytest.mark.parametrize("case", FETCH_CASES, ids=list(FETCH_CASES))
def test_data_fetch_writing_outside_the_data_dir_is_refused(tmp_path, capsys, case):
    (tmp_path / "dl").mkdir()
    card, match = FETCH_CASES[case](tmp_path)
    assert_refused(["data", "fetch", card, "--data-dir", tmp_path / "dl"], capsys, watch=tmp_path, match=match)


def test_a_member_in_a_folder_of_a_zip_or_tar_is_extracted_into_the_data_dir(tmp_path, capsys):
    """What stays allowed: a member in a folder of the archive (its name, "/" between folders) is stored under
    its own file name in the data directory; a tar archive (new) reads like a zip."""
    data = _series_csv(tmp_path / "src.csv")
    for name, make in (("rec.zip", lambda p: _zip(p, {"sub/rec.csv": data})),
                       ("rec.tar", lambda p: _tar(p, [_info("sub", tarfile.DIRTYPE), _info("sub/rec.csv")],
                                                  {"sub/rec.csv": data}))):
        dl = tmp_path / name.replace(".", "-")
        dl.mkdir()
        make(dl / name)
        code, out, err = run_cli(["data", "fetch", _card(tmp_path, name, "sub/rec.csv"), "--data-dir", dl], capsys)
        assert (code, err) == (0, ""), err
        assert out.strip() == str(dl / "rec.csv") and (dl / "rec.csv").read_bytes() == data
        assert sorted(p.name for p in dl.iterdir()) == ["rec.csv", name, name + ".sha256"]
        assert (dl / (name + ".sha256")).read_text().split()[0] == hashlib.sha256((dl / name).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------- run folders
def fake_run(folder: Path) -> Path:
    """The files of a run that mark it as one (dsrecon.runs.is_run: a config.json holding a "config" object),
    with a checkpoint and a model; no training, so these tests do not depend on `dsrecon fit`."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"config": {"data": {"name": "lorenz"}}, "tau_steps": 20}))
    (folder / "checkpoints" / "last.pt").write_bytes(b"checkpoint")
    (folder / "model.pt").write_bytes(b"model")
    (folder / "metrics.json").write_text("{}")
    return folder


@pytest.fixture
def run(tmp_path) -> Path:
    return fake_run(tmp_path / "run")


SWEEP = """[sweep]
name = "s"
datasets = ["lorenz"]
models = ["plrnn"]
methods = ["gtf"]
seeds = [0]
[train]
steps = 12
[eval]
t_gen = 1000
"""


def _link_into_checkpoints(t: Path) -> Path:
    (t / "link").symlink_to(t / "run" / "checkpoints")
    return t / "link" / "sweep"


OUT_CASES = {   # --out: the run folder it lies inside
    "inside-checkpoints": lambda t: t / "run" / "checkpoints" / "sweep",
    "inside-run": lambda t: t / "run" / "sweep",
    "dotdot-into-run": lambda t: t / "elsewhere" / ".." / "run" / "sweep",
    "symlink-into-run": _link_into_checkpoints,
}


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("case", OUT_CASES, ids=list(OUT_CASES))
def test_a_sweep_inside_a_run_folder_is_refused(tmp_path, capsys, run, case, dry):
    """The issue's case: a sweep written into a run's checkpoints/ was deleted by the run's --overwrite."""
    (tmp_path / "s.toml").write_text(SWEEP)
    out = OUT_CASES[case](tmp_path)
    assert_refused(["sweep", tmp_path / "s.toml", "--out", out, *(["--dry-run"] if dry else [])], capsys,
                   watch=tmp_path, match=["--out", "run folder", str(run.resolve()), "outside every run folder"])


def _results(folder: Path) -> Path:
    rec = {"key": "a0", "dataset": "lorenz", "model": "plrnn", "method": "gtf", "tau": None, "seed": 0,
           "status": "ok", "reason": "", "tau_steps": None, "sweep": "s", "run_dir": "",
           "metrics": {"D_stsp": 1.0, "D_H": 0.1, "PSC": 0.9, "T_gen": 1000.0}, "noise_floor": {}, "variants": {}}
    folder.mkdir()
    R.append_results(folder / "results.nc", [rec])
    return folder


def test_a_leaderboard_inside_a_run_folder_is_refused(tmp_path, capsys, run):
    src = _results(tmp_path / "sw")
    assert_refused(["leaderboard", src, "--out", run / "checkpoints"], capsys, watch=tmp_path,
                   match=["--out", "lies inside the run folder", "outside every run folder"])


def test_a_plot_inside_a_run_folder_is_refused(tmp_path, capsys, run):
    """compare --plot and lyap --plot: a run's --overwrite deletes every .png in it."""
    assert_refused(["compare", run, "--plot", run / "tau.png"], capsys, watch=tmp_path,
                   match=["--plot", "lies inside the run folder", str(run.resolve())])
    x = systems.simulate("lorenz", dict(sigma=10.0, rho=28.0, beta=8 / 3), dt=0.01, n_samples=2000, transient=200,
                         seed=0)
    np.save(tmp_path / "x.npy", x)
    assert_refused(["lyap", tmp_path / "x.npy", "--dt", "0.01", "--plot", run / "checkpoints" / "lam.png"], capsys,
                   watch=tmp_path, match=["--plot", "lies inside the run folder"])


def test_inside_run_finds_the_run_folder_and_nothing_else(tmp_path, run):
    assert R.inside_run(run) == run.resolve()
    assert R.inside_run(run / "checkpoints" / "a" / "b") == run.resolve()
    assert R.inside_run(tmp_path) is None and R.inside_run(tmp_path / "new") is None
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"settings": 1}')   # some other tool's config.json
    assert R.inside_run(tmp_path / "other" / "x") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("not json")
    assert R.inside_run(tmp_path / "bad") is None
    (tmp_path / "new-style").mkdir()    # a run marked by its manifest (dsrecon.runs.MANIFEST) or lock (runs.LOCK)
    (tmp_path / "new-style" / "manifest.json").write_text('{"dsrecon_run": 1, "files": {}}')
    assert R.inside_run(tmp_path / "new-style" / "checkpoints") == (tmp_path / "new-style").resolve()
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / ".dsrecon.lock").write_text("")
    assert R.inside_run(tmp_path / "locked" / "x.png") == (tmp_path / "locked").resolve()
