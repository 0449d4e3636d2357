"""The user's own files: CSV/TSV/TXT, .npy/.npz, netCDF, EDF -> the same standardized Dataset as a card."""
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import dsrecon as ds
from dsrecon import systems
from dsrecon.errors import ConfigError, DataError

PAPER = dict(sigma=16.0, rho=45.92, beta=4.0)   # "How to train RNNs on chaotic data" App. A.4


@pytest.fixture(scope="module")
def lorenz3():
    return systems.simulate("lorenz", PAPER, dt=0.01, n_samples=2000, transient=500, seed=0)


def _standardized(x, n_train):
    return (x - x[:n_train].mean(0)) / x[:n_train].std(0)


def test_csv_with_header_and_time_column(tmp_path, lorenz3):
    path = tmp_path / "rec.csv"
    pd.DataFrame({"time": np.arange(2000) * 0.01, "x": lorenz3[:, 0], "y": lorenz3[:, 1],
                  "z": lorenz3[:, 2]}).to_csv(path, index=False)
    d = ds.load(path)
    assert list(d["channel"].values) == ["x", "y", "z"] and d.attrs["dt"] == pytest.approx(0.01)
    assert d.attrs["n_train"] == 1600                                    # default 80 % train split
    assert np.allclose(d["x"].values, _standardized(lorenz3, 1600), atol=1e-9)
    assert np.allclose(ds.to_physical(d)["x"].values, lorenz3, atol=1e-9)
    assert [p["step"] for p in json.loads(d.attrs["provenance"])] == ["read", "standardize"]
    sel = ds.load(str(path), columns=["z", "x"])
    assert list(sel["channel"].values) == ["z", "x"]
    assert list(ds.load(path, columns=[1]).channel.values) == ["y"]          # by position among data columns


@pytest.mark.parametrize("suffix, sep", [(".tsv", "\t"), (".txt", " ")])
def test_tsv_and_headerless_text(tmp_path, lorenz3, suffix, sep):
    path = tmp_path / f"rec{suffix}"
    np.savetxt(path, lorenz3, delimiter=sep)
    d = ds.load(path, dt=0.01)
    assert list(d["channel"].values) == ["c0", "c1", "c2"] and d.attrs["dt"] == 0.01
    assert np.allclose(ds.to_physical(d)["x"].values, lorenz3, atol=1e-9)


def test_npy_npz_netcdf(tmp_path, lorenz3):
    np.save(tmp_path / "a.npy", lorenz3)
    np.savez(tmp_path / "b.npz", x=lorenz3[:, :2])
    assert np.allclose(ds.to_physical(ds.load(tmp_path / "a.npy", dt=0.01))["x"].values, lorenz3)
    assert ds.load(tmp_path / "b.npz").sizes["channel"] == 2
    assert list(ds.load(tmp_path / "a.npy", columns=[2]).channel.values) == ["c2"]
    # a dsrecon dataset written to netCDF loads back with its channel names and time step
    src = ds.load("lorenz-yz", n_train=1000, n_test=200, transient=500, cache=False)
    ds.data.write_netcdf(ds.to_physical(src), tmp_path / "c.nc")
    back = ds.load(tmp_path / "c.nc", train_fraction=1000 / 1200)
    assert list(back["channel"].values) == ["y", "z"] and back.attrs["dt"] == pytest.approx(0.01)
    assert np.allclose(back["x"].values, src["x"].values, atol=1e-9)


JENA_HEADER = ('"Date Time","p (mbar)","T (degC)","Tpot (K)","Tdew (degC)","rh (%)","VPmax (mbar)","VPact (mbar)",'
               '"VPdef (mbar)","sh (g/kg)","H2OC (mmol/mol)","rho (g/m**3)","wv (m/s)","max. wv (m/s)","wd (deg)"')


def write_jena_like(path, n, *, seed=0, dt_min=10):
    """A file in the exact format of jena_climate_2009_2016.csv (header, "dd.mm.yyyy HH:MM:SS" stamps every 10
    minutes from 01.01.2009 00:10:00, 14 numeric columns with two decimals), with a synthetic temperature: a
    yearly and a daily cycle, a trend and a chaotic component (Lorenz x), plus noise."""
    rng = np.random.default_rng(seed)
    t = pd.Timestamp("2009-01-01 00:10:00") + pd.to_timedelta(np.arange(n) * dt_min, unit="min")
    secs = np.arange(n) * dt_min * 60.0
    chaos = systems.simulate("lorenz", PAPER, dt=0.005, n_samples=n, transient=200, seed=seed)[:, 0] / 10
    temp = (9 + 1e-8 * secs - 9 * np.cos(2 * np.pi * secs / 31556952.0) - 3 * np.cos(2 * np.pi * secs / 86400.0)
            + chaos + 0.2 * rng.standard_normal(n))
    cols = [996.5 + rng.standard_normal(n), temp, temp + 273.3] + [rng.standard_normal(n) + 5 for _ in range(11)]
    with open(path, "w") as fh:
        fh.write(JENA_HEADER + "\n")
        stamps = t.strftime("%d.%m.%Y %H:%M:%S")
        for i in range(n):
            fh.write(stamps[i] + "," + ",".join(f"{c[i]:.2f}" for c in cols) + "\n")
    return temp


def test_jena_format_csv(tmp_path):
    path = tmp_path / "jena_climate_2009_2016.csv"
    temp = write_jena_like(path, 600)
    assert path.read_text().splitlines()[1].startswith("01.01.2009 00:10:00,")
    d = ds.load(path, columns=["T (degC)"])
    assert d.attrs["dt"] == 600.0 and d.attrs["time_units"] == "s" and d.attrs["start"] == "2009-01-01T00:10:00"
    assert list(d["channel"].values) == ["T (degC)"]
    assert np.allclose(ds.to_physical(d)["x"].values[:, 0], np.round(temp, 2), atol=1e-9)
    assert ds.data.card(path)["dims"][:2] == ["p (mbar)", "T (degC)"]   # the Date Time column is the time


def test_edf_round_trip(tmp_path):
    edfio = pytest.importorskip("edfio")
    x = systems.simulate("lorenz", PAPER, dt=1 / 160, n_samples=1600, transient=500, seed=0)
    sigs = [edfio.EdfSignal(x[:, k] * 10, sampling_frequency=160, label=lab, physical_dimension="uV")
            for k, lab in enumerate(["Fc5.", "Cz..", "Oz.."])]
    edfio.Edf(sigs).write(tmp_path / "r.edf")
    d = ds.load(tmp_path / "r.edf", columns=["Cz.."])
    assert d.attrs["dt"] == pytest.approx(1 / 160) and list(d["channel"].values) == ["Cz.."]
    # EDF stores 16-bit integers between the physical min and max: resolution (max - min) / 65535
    res = np.ptp(x[:, 1] * 10) / 65535
    assert np.allclose(ds.to_physical(d)["x"].values[:, 0], x[:, 1] * 10, atol=res)


def test_missing_edf_reader_names_the_extra(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_edfio(name, *a, **k):
        if name == "edfio":
            raise ImportError("no edfio")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_edfio)
    (tmp_path / "r.edf").write_bytes(b"0" * 300)
    with pytest.raises(DataError, match=r"pip install dsrecon\[edf\]"):
        ds.load(tmp_path / "r.edf")


# ---------------------------------------------------------------------------------- bad input
def _csv(tmp_path, text, name="bad.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _rows(n, f=lambda i: f"{np.sin(i / 5):.6f},{np.cos(i / 7):.6f}"):
    return "".join(f"{i * 0.1:.1f},{f(i)}\n" for i in range(n))


@pytest.mark.parametrize("make, kwargs, message", [
    (lambda: "t,a,b\n" + _rows(600).replace("0.0,0.000000", "0.0,nan", 1) + "60.0,,1\n", {},
     r"channel 'a' has 2 NaN/missing values at sample\(s\) 0, 600 .*interpolate=True"),
    (lambda: "t,a,b,c\n" + _rows(600).replace("\n", ",abc\n"), {},
     r"column 'c' is not numeric \(sample 0: 'abc'\)"),
    (lambda: "t,a,b\n" + _rows(600, lambda i: f"{np.sin(i):.4f},3.0"), {}, r"channel\(s\) 'b' are constant"),
    (lambda: "t,a,b\n" + _rows(100), {}, "only 100 samples"),
    (lambda: "t,a,b\n" + _rows(300) + "".join(f"{30 + i * 0.1:.1f},{i},{-i}\n" for i in range(5, 600)), {},
     r"1 gap\(s\) in time column 't', the first before sample 300 \(t = 30.5: 5 missing samples of step 0.1\)"),
    (lambda: "t,a,b\n" + _rows(300) + "30.05,1,2\n" + "".join(f"{30.1 + i * 0.1:.1f},{i},{-i}\n" for i in range(300)), {},
     r"not evenly spaced: step 0.15 at sample 300 \(t = 30.05\)"),
    (lambda: "t,a,b\n" + _rows(600) + "0.0,1,2\n", {}, r"goes backwards at sample 600 \(t = 0 after 59.9"),
    (lambda: "t,a,b\n" + _rows(600) + "59.9,1,2\n", {}, r"repeats t = 59.9 at sample 600"),
    (lambda: "t,a,b\n" + _rows(600), {"dt": 0.5}, "dt = 0.5 disagrees with the time column 't'"),
    (lambda: "t,a,b\n" + _rows(600), {"columns": ["q"]}, "no column 'q'; columns: 'a', 'b'"),
])
def test_bad_files_are_one_line_data_errors(tmp_path, make, kwargs, message, _private_cache):
    path = _csv(tmp_path, make())
    before = sorted(p.name for p in _private_cache.rglob("*"))
    with pytest.raises(DataError, match=message) as err:
        ds.load(path, **kwargs)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in _private_cache.rglob("*")) == before       # nothing written


def test_interpolate_fills_nans_and_gaps_only_when_asked(tmp_path):
    rows = ["t,a,b\n"] + [f"{i * 0.1:.1f},{np.sin(i / 50):.6f},{np.cos(i / 70):.6f}\n" for i in range(700)]
    rows[1 + 100] = "10.0,nan,0.5\n"
    del rows[1 + 50: 1 + 52]
    path = _csv(tmp_path, "".join(rows))
    with pytest.raises(DataError, match="gap"):
        ds.load(path)
    d = ds.to_physical(ds.load(path, interpolate=True))
    assert d.sizes["time"] == 700
    # linear interpolation across the 2-sample gap and the NaN at sample 100: error <= H^2/8 max|f''| with
    # H = 3 samples = 0.06 in the argument of sin, i.e. 4.5e-4 (plus the 1e-6 rounding of the file)
    assert d["x"].values[50, 0] == pytest.approx(np.sin(50 / 50), abs=5e-4)
    assert d["x"].values[100, 0] == pytest.approx(np.sin(100 / 50), abs=5e-4)
    assert json.loads(d.attrs["provenance"])[0]["interpolated_values"] == 3


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        ds.load(tmp_path / "nope.csv")
    (tmp_path / "a.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        ds.load(tmp_path / "a.xlsx")
    with pytest.raises(ConfigError, match="dt must be a positive number"):
        ds.load(_csv(tmp_path, "1\n2\n"), dt=-1)


def test_embed_auto_on_a_scalar_file(tmp_path):
    x = systems.simulate("lorenz", PAPER, dt=0.01, n_samples=6000, transient=500, seed=1)[:, 0]
    np.save(tmp_path / "x.npy", x)
    d = ds.load(tmp_path / "x.npy", dt=0.01, embed="auto")
    step = json.loads(d.attrs["provenance"])[-2]
    assert step["step"] == "delay_embed" and d.sizes["channel"] == step["emb_dim"] >= 3


def test_user_card_toml(tmp_path, lorenz3):
    np.save(tmp_path / "rec.npy", lorenz3[:, 0])
    (tmp_path / "rec.toml").write_text(
        'name = "my-rec"\nversion = 2\nkind = "file"\ndescription = "x of Lorenz"\n'
        '[file]\npath = "rec.npy"\n[read]\ndt = 0.01\n'
        '[[preprocess]]\nstep = "delay_embed"\nemb_dim = 3\ndelay = 10\n[split]\ntrain_fraction = 0.5\n')
    assert ds.data.card(tmp_path / "rec.toml")["dims"] == ["c0"]      # what `dsrecon fit rec.toml` checks
    d = ds.load(tmp_path / "rec.toml")
    assert d.attrs["name"] == "my-rec" and d.attrs["card_version"] == 2 and d.sizes["channel"] == 3
    assert d.attrs["n_train"] == (2000 - 20) // 2 and d.attrs["dt"] == 0.01


def test_read_series_reads_a_csv_with_a_header(tmp_path, lorenz3):
    from dsrecon.data import read_series

    np.savetxt(tmp_path / "s.csv", lorenz3[:, :2], delimiter=",", header="a,b", comments="")
    assert read_series(tmp_path / "s.csv").shape == (2000, 2)


def test_options_of_the_other_kind_are_refused(tmp_path, lorenz3):
    np.save(tmp_path / "a.npy", lorenz3)
    with pytest.raises(ConfigError, match="n_train do\\(es\\) not apply to the file"):
        ds.load(tmp_path / "a.npy", n_train=100)
    with pytest.raises(ConfigError, match="columns do\\(es\\) not apply to dataset 'lorenz'"):
        ds.load("lorenz", columns=["x"])


def test_lyap_cli_takes_dt_from_the_time_column(tmp_path, capsys):
    from dsrecon.cli import main

    x = systems.simulate("lorenz", PAPER, dt=0.01, n_samples=10_000, transient=2000, seed=0)[:, 0]
    path = tmp_path / "rec.csv"
    pd.DataFrame({"time": 5.0 + np.arange(10_000) * 0.01, "x": x}).to_csv(path, index=False)
    assert main(["lyap", str(path), "--plot", str(tmp_path / "d.png")]) == 0
    out = capsys.readouterr().out
    # per time unit with dt = 0.01 from the file: Lorenz 1.50 (Wolf et al. 1985); 10^4 samples, so loose
    assert float(out.split("lambda_max = ")[1].split()[0]) == pytest.approx(1.50, rel=0.2)


def test_interpolate_repairs_order_and_duplicates(tmp_path):
    rows = [f"{i * 0.1:.1f},{np.sin(i / 50):.6f}\n" for i in range(700)]
    rows[10], rows[11] = rows[11], rows[10]            # two stamps swapped
    rows.insert(300, rows[299])                          # one duplicated row
    path = _csv(tmp_path, "t,a\n" + "".join(rows))
    with pytest.raises(DataError, match="goes backwards at sample 11"):
        ds.load(path)
    d = ds.to_physical(ds.load(path, interpolate=True))
    assert d.sizes["time"] == 700
    assert np.allclose(d["x"].values[:, 0], [float(f"{np.sin(i / 50):.6f}") for i in range(700)])
    assert json.loads(d.attrs["provenance"])[0]["reordered_samples"] == 2


# ---------------------------------------------------------------------------------- dialects, fingerprint
def test_european_csv_semicolons_and_decimal_commas(tmp_path, lorenz3):
    # "time;x;y;z" with decimal commas (Excel in a German/French locale): read as three channels, dt from the
    # time column, and the dialect said in provenance -- not one channel named "time;x;y;z"
    path = tmp_path / "euro.csv"
    rows = "".join(f"{i * 0.01:.2f};{a:.6f};{b:.6f};{c:.6f}\n".replace(".", ",") for i, (a, b, c) in enumerate(lorenz3))
    path.write_text("time;x;y;z\n" + rows, encoding="latin-1")
    d = ds.load(path)
    assert list(d["channel"].values) == ["x", "y", "z"] and d.attrs["dt"] == pytest.approx(0.01)
    assert np.allclose(ds.to_physical(d)["x"].values, lorenz3, atol=1e-6)     # 6 decimals in the file
    read = json.loads(d.attrs["provenance"])[0]
    assert (read["delimiter"], read["decimal"]) == (";", ",")
    assert ds.data.card(path)["dims"] == ["x", "y", "z"]


def test_utf16_csv_reads_as_its_utf8_twin(tmp_path, lorenz3):
    # Excel's "Unicode text" export is UTF-16 with a byte-order mark: the same table as the UTF-8 file, not
    # "binary data"
    text = "time,x,y,z\n" + "".join(f"{i * 0.01:.2f},{a:.6f},{b:.6f},{c:.6f}\n" for i, (a, b, c) in enumerate(lorenz3))
    (tmp_path / "u8.csv").write_text(text, encoding="utf-8")
    (tmp_path / "u16.csv").write_text(text, encoding="utf-16")
    u8, u16 = ds.load(tmp_path / "u8.csv"), ds.load(tmp_path / "u16.csv")
    assert np.array_equal(u8["x"].values, u16["x"].values) and u16.attrs["dt"] == u8.attrs["dt"]
    assert json.loads(u16.attrs["provenance"])[0]["encoding"] == "utf-16"


def test_tsv_with_decimal_commas_and_a_quoted_header(tmp_path, lorenz3):
    path = tmp_path / "rec.txt"
    rows = "".join(f"{a:.6f}\t{b:.6f}\n".replace(".", ",") for a, b in lorenz3[:, :2])
    path.write_text('"x (m)"\t"y (m)"\n' + rows)
    d = ds.load(path, dt=0.01)
    assert list(d["channel"].values) == ["x (m)", "y (m)"]
    assert np.allclose(ds.to_physical(d)["x"].values, lorenz3[:, :2], atol=1e-6)


def test_npz_reads_x_and_says_so(tmp_path, lorenz3):
    np.savez(tmp_path / "r.npz", x=lorenz3, other=lorenz3[:, :1])
    d = ds.load(tmp_path / "r.npz")
    assert d.sizes["channel"] == 3 and json.loads(d.attrs["provenance"])[0]["array"] == "x"
    np.savez(tmp_path / "one.npz", series=lorenz3[:, 0])       # the only array, whatever its name
    assert ds.load(tmp_path / "one.npz").sizes["channel"] == 1


def test_pickled_npy_is_never_loaded(tmp_path, monkeypatch):
    # numpy would unpickle with allow_pickle=True: it must never be asked to
    import pickle

    calls = []
    monkeypatch.setattr(pickle, "load", lambda *a, **k: calls.append(a) or None)
    np.save(tmp_path / "o.npy", np.array([{"a": 1}] * 600, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="never unpickles") as err:
        ds.load(tmp_path / "o.npy")
    assert not calls and "allow_pickle" not in str(err.value)


def test_data_fingerprint_is_the_values_dims_and_dt(tmp_path, lorenz3):
    from dsrecon.data import data_fingerprint

    np.save(tmp_path / "a.npy", lorenz3)
    d = ds.load(tmp_path / "a.npy", dt=0.01)
    fp = data_fingerprint(d)
    assert len(fp) == 64 and fp == data_fingerprint(ds.load(tmp_path / "a.npy", dt=0.01))
    swapped = d.copy()
    swapped["x"] = (("time", "channel"), d["x"].values.astype(">f8"))  # big-endian storage: the same numbers
    assert data_fingerprint(swapped) == fp
    changed = d.copy(deep=True)
    changed["x"].values[5, 1] += 1e-12
    assert data_fingerprint(changed) != fp
    assert data_fingerprint(d.assign_attrs(dt=0.02)) != fp
    assert data_fingerprint(d.assign_coords(channel=["a", "b", "c"])) != fp
    assert data_fingerprint(d.assign_attrs(provenance="[]")) == fp     # provenance is not data
    with pytest.raises(DataError, match="data_fingerprint needs a dataset"):
        data_fingerprint(lorenz3)


def test_data_fingerprint_did_not_change_with_the_channel_rename():
    # runs record the fingerprint of their data; these values were computed before the channel dimension was
    # renamed from "dim" to "channel", so runs fitted then still pass their data check
    from dsrecon.data import _make_dataset, data_fingerprint

    x = np.arange(12.0).reshape(6, 2) / 7
    d = _make_dataset(x, dt=0.01, dims=["a", "b"], attrs={})
    assert data_fingerprint(d) == "a66eb8c71ecdf04919cd7294214bbfeee49105e7694f2a972f3f1d658515d061"
    driven = _make_dataset(x, dt=0.01, dims=["a", "b"], attrs={}, s=np.ones((6, 1)), inputs=["u"])
    assert data_fingerprint(driven) == "3664616de8d630fa0f1cb72c905e61646121f04d64e80ff3e8e165afed1b5235"


def test_a_file_written_before_the_channel_rename_loads(tmp_path, lorenz3):
    # dsrecon wrote x (time, dim) with a coordinate "dim" of channel names before it named the dimension "channel"
    from dsrecon.files import peek_channels

    path = tmp_path / "old.nc"
    xr.Dataset({"x": (("time", "dim"), lorenz3[:, :2])}, coords={"time": np.arange(2000) * 0.01, "dim": ["x", "y"]},
               attrs={"dt": 0.01}).to_netcdf(path)
    d = ds.load(path)
    assert d["x"].dims == ("time", "channel") and list(d["channel"].values) == ["x", "y"] and "dim" not in d.variables
    assert np.allclose(ds.to_physical(d)["x"].values, lorenz3[:, :2], atol=1e-9)
    assert list(ds.load(path, columns=["y"])["channel"].values) == ["y"]
    assert peek_channels(path) == ["x", "y"]
    back = ds.data.read_netcdf(path)
    assert back["x"].dims == ("time", "channel") and list(back["channel"].values) == ["x", "y"]


@pytest.mark.parametrize("name, text", [
    ("ws.txt", lambda x: "a b\n" + "".join(f"{u:.6f} {v:.6f}\n".replace(".", ",") for u, v in x[:, :2])),
    ("one.csv", lambda x: "a\n" + "".join(f"{u:.6f}\n".replace(".", ",") for u in x[:, 0])),
    ("int.csv", lambda x: "a,b\n" + "".join(f"{round(u)},{round(v)}\n" for u, v in x[:, :2])),
], ids=["whitespace-decimal-comma", "one-column-decimal-comma", "comma-integers"])
def test_the_table_dialect_is_the_one_that_matches_the_header(tmp_path, lorenz3, name, text):
    # the delimiter is the one splitting every line into as many fields as the header: "1,5 2,5" under "a b"
    # is two decimal-comma numbers, "1,2" under "a,b" two integers
    (tmp_path / name).write_text(text(lorenz3))
    d = ds.to_physical(ds.load(tmp_path / name, dt=0.01))
    n = 1 if name == "one.csv" else 2
    want = np.round(lorenz3[:, :n]) if name == "int.csv" else lorenz3[:, :n]
    assert d.sizes["channel"] == n and np.allclose(d["x"].values, want, atol=1e-6)


def test_lyap_reads_a_user_card(tmp_path, lorenz3, capsys):
    # `dsrecon lyap CARD.toml` loads the card (its preprocessing and split), not the TOML text as a table
    from dsrecon import cli

    np.save(tmp_path / "rec.npy", lorenz3[:, 0])
    (tmp_path / "rec.toml").write_text(
        'name = "my-rec"\nkind = "file"\n[file]\npath = "rec.npy"\n[read]\ndt = 0.01\n'
        '[[preprocess]]\nstep = "delay_embed"\nemb_dim = 3\ndelay = 10\n')
    code = cli.main(["lyap", str(tmp_path / "rec.toml"), "--plot", str(tmp_path / "l.png")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "per time unit" in out.out and (tmp_path / "l.png").exists()
