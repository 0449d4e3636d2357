"""Download cards (jena, eeg): fetch with SHA-256 checks, offline hints, and the preprocessing pipelines run end
to end on synthetic stand-ins written in the real formats (no network in the tests)."""
import hashlib
import json
import zipfile

import numpy as np
import pytest

import dsrecon as ds
from dsrecon import systems
from dsrecon.cli import main
from dsrecon.errors import DataError

from test_data_files import write_jena_like

OFFLINE_URL = "http://127.0.0.1:9/rec.csv"     # port 9 (discard): refused at once, no network needed


def _card(tmp_path, sha="", member=None, url=OFFLINE_URL, filename="rec.csv"):
    text = (f'name = "rec"\nversion = 1\nkind = "download"\n[file]\nurl = "{url}"\nfilename = "{filename}"\n'
            f'sha256 = "{sha}"\n' + (f'member = "{member}"\n' if member else "") + '[read]\ndt = 0.1\n')
    (tmp_path / "rec.toml").write_text(text)
    return tmp_path / "rec.toml"


def _series_csv(path, n=800):
    x = systems.simulate("lorenz", dict(sigma=16.0, rho=45.92, beta=4.0), dt=0.01, n_samples=n, transient=200,
                         seed=0)
    np.savetxt(path, x, delimiter=",", header="x,y,z", comments="")
    return x


def test_offline_fetch_says_which_file_to_place_where(tmp_path):
    card = _card(tmp_path)
    with pytest.raises(DataError, match=r"cannot download rec.csv \(ConnectionError\).*place it in "
                                        + str(tmp_path / "dl") + r" \(or pass --data-dir DIR / set DSRECON_DATA_DIR\)"
                       ) as err:
        ds.data.fetch(ds.data.card(card), data_dir=tmp_path / "dl")
    assert "\n" not in str(err.value)


def test_a_file_placed_by_hand_is_used_and_hash_checked(tmp_path):
    dl = tmp_path / "dl"
    dl.mkdir()
    x = _series_csv(dl / "rec.csv")
    sha = hashlib.sha256((dl / "rec.csv").read_bytes()).hexdigest()
    d = ds.load(_card(tmp_path, sha=sha), data_dir=dl)
    assert np.allclose(ds.to_physical(d)["x"].values, x, atol=1e-9)
    assert json.loads(d.attrs["provenance"])[0]["sha256"] == sha
    with pytest.raises(DataError, match="SHA-256 .* does not match the expected 0000000000000000"):
        ds.load(_card(tmp_path, sha="0" * 64), data_dir=dl)


def test_unpinned_hash_is_recorded_on_first_use(tmp_path, monkeypatch):
    dl = tmp_path / "dl"
    dl.mkdir()
    _series_csv(dl / "rec.csv")
    monkeypatch.setenv("DSRECON_DATA_DIR", str(dl))
    ds.load(_card(tmp_path))
    rec = (dl / "rec.csv.sha256").read_text().split()[0]
    assert rec == hashlib.sha256((dl / "rec.csv").read_bytes()).hexdigest()
    with open(dl / "rec.csv", "a") as fh:                  # the file changes afterwards: refused
        fh.write("1,2,3\n")
    with pytest.raises(DataError, match="does not match"):
        ds.load(_card(tmp_path))


def test_zip_archive_member_is_extracted(tmp_path):
    dl = tmp_path / "dl"
    dl.mkdir()
    _series_csv(tmp_path / "rec.csv")
    with zipfile.ZipFile(dl / "rec.zip", "w") as z:
        z.write(tmp_path / "rec.csv", "rec.csv")
    path = ds.data.fetch(ds.data.card(_card(tmp_path, member="rec.csv", filename="rec.zip")), data_dir=dl)
    assert path == dl / "rec.csv" and path.read_bytes() == (tmp_path / "rec.csv").read_bytes()


def test_cli_data_fetch_offline_and_list(tmp_path, capsys):
    assert main(["data", "fetch", str(_card(tmp_path)), "--data-dir", str(tmp_path / "dl")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "place it in" in err
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ["duffing", "eeg", "jena", "lorenz", "lorenz-yz", "mackey-glass", "rossler"]:
        assert f"\n{name} " in "\n" + out
    assert main(["data", "fetch"]) == 2 and "needs a NAME" in capsys.readouterr().err


def test_jena_card_reads_the_real_format(tmp_path):
    # The card's [read] options on a 3000-row stand-in in the exact jena_climate_2009_2016.csv format, with a
    # shortened pipeline (the card's own runs in test_jena_pipeline_end_to_end, marked slow)
    write_jena_like(tmp_path / "jena_climate_2009_2016.csv", 3000)
    steps = [{"step": "detrend"}, {"step": "ghkss", "emb_dim": 5, "q": 2},
             {"step": "gaussian_smooth", "sigma": 20}, {"step": "subsample", "every": 2},
             {"step": "delay_embed", "emb_dim": 3, "delay": 10}]
    d = ds.load("jena", data_dir=tmp_path, preprocess=steps)
    assert d.attrs["dt"] == 1200.0 and d.sizes["channel"] == 3 and d.attrs["name"] == "jena"
    again = ds.load("jena", data_dir=tmp_path, preprocess=steps)     # from the recordings cache this time
    assert again.identical(d)
    other = ds.load("jena", data_dir=tmp_path, preprocess=steps[:-1])  # other options: another cache entry
    assert other.sizes["channel"] == 1
    assert [p["step"] for p in json.loads(d.attrs["provenance"])] == [
        "read", "detrend", "ghkss", "gaussian_smooth", "subsample", "delay_embed", "standardize"]


@pytest.mark.slow
def test_jena_pipeline_end_to_end(tmp_path):
    # the card's full pipeline (yearly cycle, GHKSS, sigma 200, every 5th, m = 5 with delay 500) needs more
    # than a year of 10-minute samples: 60 000 rows (417 days)
    write_jena_like(tmp_path / "jena_climate_2009_2016.csv", 60_000)
    d = ds.load("jena", data_dir=tmp_path)
    assert list(map(str, d["channel"].values)) == ds.data.card("jena")["dims"]
    assert d.attrs["dt"] == 3000.0 and d.sizes["time"] == 12_000 - 2000
    steps = [p["step"] for p in json.loads(d.attrs["provenance"])]
    assert steps == ["read", "detrend", "remove_cycle", "ghkss", "gaussian_smooth", "subsample", "delay_embed",
                     "standardize"]


def test_eeg_pipeline_end_to_end_on_a_synthetic_edf(tmp_path):
    edfio = pytest.importorskip("edfio")
    # a 61-second, 160 Hz, 3-channel EDF like S001R01.edf (labels as in eegmmidb: "Fc5.", "Cz..", "Oz..")
    n = 61 * 160
    x = systems.simulate("rossler", dict(a=0.15, b=0.2, c=10.0), dt=0.05, n_samples=n, transient=500, seed=0)
    x = 20 * x + np.random.default_rng(0).standard_normal(x.shape)
    sigs = [edfio.EdfSignal(x[:, k], sampling_frequency=160, label=lab, physical_dimension="uV")
            for k, lab in enumerate(["Fc5.", "Cz..", "Oz.."])]
    edfio.Edf(sigs).write(tmp_path / "S001R01.edf")
    d = ds.load("eeg", data_dir=tmp_path)
    assert list(map(str, d["channel"].values)) == ds.data.card("eeg")["dims"]
    assert d.attrs["dt"] == pytest.approx(3 / 160)
    assert d.sizes["time"] == int(np.ceil((n - 9 * 500) / 3))
    assert [p["step"] for p in json.loads(d.attrs["provenance"])] == [
        "read", "ghkss", "gaussian_smooth", "delay_embed", "subsample", "standardize"]


# ---------------------------------------------------------------------------------- corrupt downloads
def zipped_csv(tmp_path, n=800) -> bytes:
    """A deflate-compressed zip holding rec.csv (a Lorenz series), as bytes."""
    src = tmp_path / "_rec.csv"
    _series_csv(src, n)
    out = tmp_path / "_rec.zip"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.write(src, "rec.csv")
    data = out.read_bytes()
    src.unlink()
    out.unlink()
    return data


def corrupt_zip(data: bytes) -> bytes:
    """The same archive with garbage in the middle of its deflate stream (headers intact)."""
    start = 30 + int.from_bytes(data[26:28], "little") + int.from_bytes(data[28:30], "little")
    mid = start + 200
    return data[:mid] + bytes(b ^ 0x5A for b in data[mid: mid + 64]) + data[mid + 64:]


def fake_download(monkeypatch, payloads: list):
    """pooch.retrieve replaced by a fake that 'downloads' the next payload (no network), checking a known hash
    the way pooch does (a mismatch raises ValueError and keeps nothing)."""
    import pooch

    def retrieve(url, known_hash, fname, path, progressbar=False):
        data = payloads.pop(0)
        if known_hash and hashlib.sha256(data).hexdigest() != known_hash.split(":")[-1]:
            raise ValueError(f"SHA256 hash of downloaded file ({fname}) does not match the known hash: expected "
                             f"{known_hash}. The file may have been corrupted or the known hash may be outdated.")
        target = path / fname
        target.write_bytes(data)
        return str(target)

    monkeypatch.setattr(pooch, "retrieve", retrieve)


def _zip_card(tmp_path, sha=""):
    return _card(tmp_path, sha=sha, member="rec.csv", filename="rec.zip", url="https://example.org/rec.zip")


def test_corrupt_deflate_download_is_removed_and_its_hash_never_recorded(tmp_path, monkeypatch):
    dl = tmp_path / "dl"
    good = zipped_csv(tmp_path)
    fake_download(monkeypatch, [corrupt_zip(good), good])
    card = ds.data.card(_zip_card(tmp_path))
    with pytest.raises(DataError, match=r"rec.zip: cannot extract rec.csv \(.*\); the archive is corrupt: the download "
                                        r"was removed: fetch again") as err:
        ds.data.fetch(card, data_dir=dl)
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)
    assert not dl.exists()           # created for the download, removed with it: no .part, no archive, no .sha256
    path = ds.data.fetch(card, data_dir=dl)            # fetching again works: the good copy is accepted ...
    assert path == dl / "rec.csv"
    assert (dl / "rec.zip.sha256").read_text().split()[0] == hashlib.sha256(good).hexdigest()   # ... and recorded
    assert sorted(p.name for p in dl.iterdir()) == ["rec.csv", "rec.zip", "rec.zip.sha256"]


def test_a_corrupt_archive_placed_by_hand_is_kept_but_never_recorded(tmp_path):
    dl = tmp_path / "dl"
    dl.mkdir()
    good = zipped_csv(tmp_path)
    (dl / "rec.zip").write_bytes(corrupt_zip(good))
    card = ds.data.card(_zip_card(tmp_path))
    with pytest.raises(DataError, match="the archive is corrupt: delete it and fetch again"):
        ds.data.fetch(card, data_dir=dl)
    assert sorted(p.name for p in dl.iterdir()) == ["rec.zip"]       # the user's file stays; no .part, no record
    (dl / "rec.zip").write_bytes(good)                               # what the message advises: a good copy
    assert ds.data.fetch(card, data_dir=dl) == dl / "rec.csv"


def test_a_download_failing_the_pinned_hash_keeps_nothing(tmp_path, monkeypatch):
    dl = tmp_path / "dl"
    dl.mkdir()
    good = zipped_csv(tmp_path)
    fake_download(monkeypatch, [corrupt_zip(good), good])
    card = ds.data.card(_zip_card(tmp_path, sha=hashlib.sha256(good).hexdigest()))
    with pytest.raises(DataError, match="does not match the known hash"):
        ds.data.fetch(card, data_dir=dl)
    assert list(dl.iterdir()) == []
    assert ds.data.fetch(card, data_dir=dl) == dl / "rec.csv"
    assert not (dl / "rec.zip.sha256").exists()            # a pinned card never records a hash of its own


def test_an_unreadable_unpinned_download_is_not_recorded(tmp_path, monkeypatch):
    # the recording itself is garbage (not a zip member): the trust-on-first-use hash is recorded only for a
    # copy whose header reads
    dl = tmp_path / "dl"
    fake_download(monkeypatch, [b"\x00\x01garbage" * 50])
    card = ds.data.card(_card(tmp_path, url="https://example.org/rec.csv"))
    with pytest.raises(DataError, match=r"rec.csv is not a readable text table .* the download was removed"):
        ds.data.fetch(card, data_dir=dl)
    assert not dl.exists()


def test_a_stale_record_names_itself(tmp_path):
    dl = tmp_path / "dl"
    dl.mkdir()
    _series_csv(dl / "rec.csv")
    (dl / "rec.csv.sha256").write_text("0" * 64 + "  rec.csv\n")      # recorded from another copy
    with pytest.raises(DataError, match=r"recorded in rec.csv.sha256 when it was first used.*delete rec.csv.sha256 "
                                        r"too only if you trust"):
        ds.data.fetch(ds.data.card(_card(tmp_path)), data_dir=dl)


def test_data_dir_that_is_a_file_or_cannot_be_created(tmp_path):
    (tmp_path / "afile").write_text("x")
    card = ds.data.card(_card(tmp_path))
    with pytest.raises(DataError, match="is a file, not a folder"):
        ds.data.fetch(card, data_dir=tmp_path / "afile")
    with pytest.raises(DataError, match=r"cannot create the data directory /proc/x/dl .*--data-dir DIR"):
        ds.data.fetch(card, data_dir="/proc/x/dl")
