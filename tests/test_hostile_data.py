"""Hostile data files through the CLI (issue 12): every bad file or data option is refused in one line, exit 2,
before any work, with no traceback, no advice to load unsafely and nothing written (tests/hostile.py)."""
import gzip
import os
import zipfile

import numpy as np
import pytest

from hostile import assert_refused

UNSAFE = ("allow_pickle", "pickle.load", "weights_only", "unsafe")


def _signal(n=800):
    i = np.arange(n)
    return np.c_[np.sin(i / 5), np.cos(i / 7)]


def _csv_rows(n=800):
    return "t,a,b\n" + "".join(f"{k * 0.1:.1f},{np.sin(k / 5):.6f},{np.cos(k / 7):.6f}\n" for k in range(n))


def _replace_line(text, lineno, new):
    lines = text.splitlines(True)
    lines[lineno - 1] = new
    return "".join(lines)


def _netcdf_bytes(tmp_path, channels=("a", "b")):
    import xarray as xr

    x = _signal()
    path = tmp_path / "_src.nc"
    xr.Dataset({"x": (("time", "channel"), x)},
               coords={"time": np.arange(len(x)) * 0.1, "channel": list(channels)}).to_netcdf(path)
    data = path.read_bytes()
    path.unlink()
    return data


def _npy_bytes(tmp_path, arr, **kw):
    path = tmp_path / "_src.npy"
    np.save(path, arr, **kw)
    data = path.read_bytes()
    path.unlink()
    return data


def _zip_bytes(tmp_path):
    path = tmp_path / "_src.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("sheet1.xml", "<sheet/>")
    data = path.read_bytes()
    path.unlink()
    return data


def _npz_bytes(tmp_path, **arrays):
    path = tmp_path / "_src.npz"
    np.savez(path, **arrays)
    data = path.read_bytes()
    path.unlink()
    return data


# each case: (file name, bytes of the file (from tmp_path), substrings of the one line)
FILES = {
    "npy-text-renamed": ("x.npy", lambda p: b"time,x\n0,1\n0.1,2\n",
                         ["x.npy is not a valid .npy array file", "the text", "numpy.save", "CSV"]),
    "npy-random-bytes": ("x.npy", lambda p: np.random.default_rng(0).bytes(500),
                         ["x.npy is not a valid .npy array file", "numpy.save"]),
    "npy-truncated": ("x.npy", lambda p: _npy_bytes(p, _signal())[:3000], ["x.npy is truncated", "(800, 2)"]),
    "npy-scalar": ("x.npy", lambda p: _npy_bytes(p, np.float64(3.0)), ["single number", "shape (T,) or (T, N)"]),
    "npy-complex": ("x.npy", lambda p: _npy_bytes(p, _signal()[:, 0] + 1j * _signal()[:, 1]),
                    ["complex values", "z.real, z.imag"]),
    "npy-object-array": ("x.npy", lambda p: _npy_bytes(p, np.array([[1.0], ["a"]] * 400, dtype=object),
                                                       allow_pickle=True),
                         ["Python objects", "never unpickles", "float array"]),
    "npy-3d": ("x.npy", lambda p: _npy_bytes(p, np.zeros((800, 2, 2))), ["shape (T,) or (T, N)", "(800, 2, 2)"]),
    "npz-empty": ("x.npz", lambda p: _npz_bytes(p), ["holds no arrays", "numpy.savez(path, x=array)"]),
    "npz-several-arrays": ("x.npz", lambda p: _npz_bytes(p, a=_signal(), b=_signal()[:, :1]),
                           ["2 arrays ('a', 'b')", "named 'x'", "one array per file"]),
    "npz-truncated": ("x.npz", lambda p: _npz_bytes(p, a=_signal(), b=_signal())[:4000],
                      ["x.npz is not a valid .npz archive", "numpy.savez"]),
    "npz-text-renamed": ("x.npz", lambda p: b"a,b\n1,2\n", ["x.npz is not a valid .npz archive", "text"]),
    "npz-complex-member": ("x.npz", lambda p: _npz_bytes(p, x=_signal()[:, 0] * 1j), ["(array 'x')", "complex"]),
    "nc-text-renamed": ("x.nc", lambda p: b"time,x\n0,1\n", ["x.nc is not a readable netCDF file", "to_netcdf"]),
    "nc-garbage": ("x.nc", lambda p: b"CDF\x01" + np.random.default_rng(1).bytes(400),
                   ["x.nc is not a readable netCDF file", "to_netcdf"]),
    "nc-truncated": ("x.nc", lambda p: _netcdf_bytes(p)[:2000], ["x.nc is not a readable netCDF file"]),
    "csv-row-wider-than-header": ("x.csv", lambda p: _replace_line(_csv_rows(), 11, "0.9,0.1,0.2,7\n").encode(),
                                  ["line 11 has 4 fields where the header (line 1) has 3"]),
    "csv-row-narrower-than-header": ("x.csv", lambda p: _replace_line(_csv_rows(), 12, "1.0,0.1\n").encode(),
                                     ["line 12 has 2 fields where the header (line 1) has 3"]),
    "csv-value-1e300": ("x.csv", lambda p: _replace_line(_csv_rows(), 11, "0.9,1e300,0.2\n").encode(),
                        ["channel 'a' has 1 value(s) beyond any plausible scale", "1e+300 at sample 9, t = 0.9"]),
    "csv-inf": ("x.csv", lambda p: _replace_line(_csv_rows(), 11, "0.9,0.1,-inf\n").encode(),
                ["channel 'b' has 1 infinite value(s)", "-inf at sample 9, t = 0.9"]),
    "csv-binary": ("x.csv", lambda p: b"\x00\x01" * 300, ["x.csv is not a readable text table", "binary"]),
    "csv-empty": ("x.csv", lambda p: b"\n\n", ["x.csv: the file is empty"]),
    "csv-header-only": ("x.csv", lambda p: b"t,a,b\n", ["x.csv: no samples", "one row per sample"]),
    "csv-duplicate-header": ("x.csv", lambda p: _csv_rows().replace("t,a,b", "t,a,a", 1).encode(),
                             ["names column 'a' more than once"]),
    "npy-empty": ("x.npy", lambda p: _npy_bytes(p, np.zeros((0, 2))), ["x.npy: no samples"]),
    "npy-no-channels": ("x.npy", lambda p: _npy_bytes(p, np.zeros((800, 0))), ["no channels"]),
    "edf-garbage": ("x.edf", lambda p: b"0       " + b"x" * 300, ["x.edf is not a readable EDF/EDF+ file"]),
    "csv-gzip-compressed": ("x.csv", lambda p: gzip.compress(_csv_rows().encode()), ["gzip-compressed", "gunzip"]),
    "csv-zip-archive": ("x.csv", lambda p: _zip_bytes(p), ["zip archive", "export the sheet as CSV"]),
    "npy-transposed": ("x.npy", lambda p: _npy_bytes(p, _signal(3000).T),
                       ["2 samples", "(2, 3000)", "x.T"]),
    "csv-time-column-only": ("x.csv", lambda p: ("t\n" + "".join(f"{k * 0.1:.1f}\n" for k in range(800))).encode(),
                             ["x.csv: the only column is the time column 't'", "at least one channel"]),
    "nc-duplicate-channel-names": ("x.nc", lambda p: _netcdf_bytes(p, channels=["a", "a"]),
                                   ["x.nc: variable 'x' names channel 'a' more than once"]),
}


@pytest.mark.parametrize("command", ["fit", "lyap"])
@pytest.mark.parametrize("case", list(FILES))
def test_bad_data_file_refused(case, command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name, make, match = FILES[case]
    (tmp_path / name).write_bytes(make(tmp_path))
    argv = [command, name] + (["--steps", "5", "--t-gen", "1000", "--method", "stf", "--tau", "5", "--quiet"] if command == "fit" else [])
    line = assert_refused(argv, capsys, watch=tmp_path, match=match)
    assert not any(word in line for word in UNSAFE), line


def _lorenz_csv(path, n=800):
    from dsrecon import systems

    x = systems.simulate("lorenz", dict(sigma=10.0, rho=28.0, beta=8 / 3), dt=0.01, n_samples=n, transient=200, seed=0)
    np.savetxt(path, x, delimiter=",", header="x,y,z", comments="")


OPTIONS = {
    "embed-auto-on-a-simulated-card": (["fit", "lorenz", "--embed", "auto"], ["embed", "not apply to dataset 'lorenz'"]),
    "columns-duplicate": (["fit", "rec.csv", "--columns", "x,x"], ["column 'x' is selected twice"]),
    "columns-duplicate-by-index": (["fit", "rec.csv", "--columns", "x,0"], ["column 'x' is selected twice"]),
    "columns-unknown": (["fit", "rec.csv", "--columns", "x,w"], ["no column 'w'", "columns: 'x', 'y', 'z'"]),
    "columns-the-time-column": (["fit", "timed.csv", "--columns", "t"],
                                ["timed.csv: column 't' is the time column", "'a', 'b'"]),
    "columns-empty": (["fit", "rec.csv", "--columns", ""], ["--columns '' has an empty entry"]),
    "columns-empty-entry": (["fit", "rec.csv", "--columns", "x,,y"], ["--columns 'x,,y' has an empty entry"]),
    "columns-on-a-simulated-card": (["fit", "lorenz", "--columns", "x"], ["columns", "not apply to dataset 'lorenz'"]),
    "data-dir-is-a-file": (["fit", "jena", "--data-dir", "afile"], ["afile is a file, not a folder"]),
    "data-dir-unwritable": (["fit", "jena", "--data-dir", "/proc/x"], ["/proc/x"]),
    "file-is-a-folder": (["fit", "folder.csv"], ["folder.csv is a folder, not a data file"]),
    "noise-negative-on-a-file": (["fit", "rec.csv", "--noise", "-1"], ["--noise must be a number in [0, 10]"]),
    "noise-beyond-ten-times-the-signal": (["fit", "rec.csv", "--noise", "1e308"], ["--noise must be a number in [0, 10]"]),
    "set-data-name-against-the-dataset": (["fit", "rec.csv", "--set", "data.name=lorenz"],
                                          ["--set data.name=lorenz", "rec.csv", "give the data once"]),
    "interpolate-one-time-stamp": (["fit", "same_t.csv", "--interpolate"],
                                   ["same_t.csv: time column 't' holds one time stamp", "not a time axis"]),
    "dt-on-a-simulated-card": (["fit", "lorenz", "--dt", "0.1"], ["dt", "not apply to dataset 'lorenz'"]),
    "card-file-without-path": (["fit", "nopath.toml"], ["card nopath.toml: kind 'file' needs path in its [file] table"]),
    "card-download-without-url": (["fit", "nourl.toml"], ["kind 'download' needs url, filename"]),
    "card-not-toml": (["fit", "bad.toml"], ["card bad.toml: not valid TOML"]),
    "data-fetch-dir-is-a-file": (["data", "fetch", "jena", "--data-dir", "afile"], ["afile is a file, not a folder"]),
}


@pytest.mark.parametrize("case", list(OPTIONS))
def test_bad_data_option_refused(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _lorenz_csv(tmp_path / "rec.csv")
    (tmp_path / "same_t.csv").write_text("t,a\n" + "".join(f"0,{np.sin(k / 5):.6f}\n" for k in range(800)))
    (tmp_path / "timed.csv").write_text(_csv_rows())
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "nopath.toml").write_text('name = "a"\nkind = "file"\n')
    (tmp_path / "nourl.toml").write_text('name = "a"\nkind = "download"\n[file]\nsha256 = ""\n')
    (tmp_path / "bad.toml").write_bytes(b"\xff\xfe\x00 not toml")
    argv, match = OPTIONS[case]
    assert_refused(argv + (["--steps", "5", "--quiet"] if argv[0] == "fit" else []), capsys, watch=tmp_path, match=match)


@pytest.mark.parametrize("command", ["fit", "lyap"])
@pytest.mark.parametrize("case", ["fifo", "device", "symlink-loop", "dangling-symlink"])
def test_not_a_regular_file_refused(case, command, tmp_path, capsys, monkeypatch):
    """A path that exists but holds no recording says what it is, not "no such file"."""
    monkeypatch.chdir(tmp_path)
    if case == "fifo":
        os.mkfifo(tmp_path / "x.csv")
        target, match = "x.csv", ["x.csv is not a regular file", "pipe"]
    elif case == "device":
        target, match = "/dev/null", ["/dev/null is not a regular file", "device"]
    elif case == "symlink-loop":
        (tmp_path / "a.csv").symlink_to(tmp_path / "b.csv")
        (tmp_path / "b.csv").symlink_to(tmp_path / "a.csv")
        target, match = "a.csv", ["a.csv is a loop of symbolic links"]
    else:
        (tmp_path / "x.csv").symlink_to(tmp_path / "gone.csv")
        target, match = "x.csv", ["no such file: x.csv is a symbolic link to", "gone.csv", "does not exist"]
    argv = [command, target] + (["--steps", "5", "--quiet"] if command == "fit" else [])
    assert_refused(argv, capsys, watch=tmp_path, match=match)


def test_corrupt_download_refused_and_not_remembered(tmp_path, capsys, monkeypatch):
    # a download whose deflate stream is corrupt: one line, nothing left in the data directory (no .part, no
    # archive, no recorded hash), and the next, good download is accepted
    from test_data_fetch import corrupt_zip, fake_download, zipped_csv

    monkeypatch.chdir(tmp_path)
    dl = tmp_path / "dl"
    dl.mkdir()
    card = tmp_path / "rec.toml"
    card.write_text('name = "rec"\nversion = 1\nkind = "download"\ndims = ["x", "y", "z"]\n[file]\n'
                    'url = "https://example.org/rec.zip"\nfilename = "rec.zip"\nmember = "rec.csv"\nsha256 = ""\n'
                    '[read]\ndt = 0.01\n')
    good = zipped_csv(tmp_path)
    fake_download(monkeypatch, [corrupt_zip(good), good])
    assert_refused(["fit", str(card), "--data-dir", str(dl), "--steps", "5", "--quiet"], capsys, watch=tmp_path,
                   match=["rec.zip: cannot extract rec.csv", "corrupt", "fetch again"])
    assert sorted(p.name for p in dl.iterdir()) == []
    import dsrecon as ds

    assert ds.data.fetch(ds.data.card(card), data_dir=dl) == dl / "rec.csv"
    assert (dl / "rec.zip.sha256").is_file()
