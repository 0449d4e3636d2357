"""The cards chaosrnn-eeg and chaosrnn-weather (issue 15, part 4): the sparse-forcing paper's two recordings,
downloaded from DurstewitzLab/ChaosRNN pinned to a commit and a SHA-256.

Tests read the copies in /work/shared/data/chaosrnn (skipped with a reason where that folder is absent) through
``data_dir``, never the network: the offline case is simulated by making pooch's download raise a connection
error. Oracles: the shapes and hashes listed in that folder's README.md (the pinned values were taken from it),
the arrays themselves (np.load of the same files), and the paper's λ_max → τ_pred = ln 2 / λ_max (41 and 43 steps,
the README's numbers).
"""
import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import dsrecon as ds
from dsrecon.cli import main
from dsrecon.errors import DataError

CHAOSRNN = Path("/work/shared/data/chaosrnn")
CARDS = {"chaosrnn-eeg": ("tde_eegf.npy", (9259, 10), 41),
         "chaosrnn-weather": ("tde_temperature_MoreSmoothedNoYearShort.npy", (5900, 5), 43)}


def _copies():
    if not all((CHAOSRNN / f).is_file() for f, _, _ in CARDS.values()):
        pytest.skip(f"{CHAOSRNN} lacks the copies of DurstewitzLab/ChaosRNN's recordings (tests never download them)")
    return CHAOSRNN


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_pins_the_commit_and_hash_and_states_the_papers_figures(name):
    c = ds.data.card(name)
    filename, shape, tau_pred = CARDS[name]
    f = c["file"]
    assert c["kind"] == "download" and f["filename"] == filename
    assert "/0e84b300e03a250cdafbf0128f4644226201572a/" in f["url"] and f["url"].endswith("/" + filename)
    assert len(f["sha256"]) == 64 and len(c["dims"]) == shape[1]
    assert c["read"]["dt"] == 1.0 and "GPLv3" in c["source"] and "CC-BY" in c["source"]
    # the reference λ_max per step gives the paper's τ_pred = ln 2 / λ_max
    assert round(math.log(2) / c["reference"]["lambda_max"]) == tau_pred == c["paper"]["tau_pred"]
    assert set(c["paper"]["d_stsp"]) == set(c["paper"]["d_h"]) == {"LSTM", "RNN", "PLRNN"}
    readme = (CHAOSRNN / "README.md").read_text() if (CHAOSRNN / "README.md").is_file() else None
    if readme is not None:   # the pinned hash is the one the copy's README lists
        assert f["sha256"] in readme


@pytest.mark.parametrize("name", sorted(CARDS))
def test_load_reads_the_local_copy_and_checks_its_hash(name):
    folder = _copies()
    filename, shape, _ = CARDS[name]
    d = ds.load(name, data_dir=folder)
    raw = np.load(folder / filename)
    assert d["x"].shape == shape and d.attrs["dt"] == 1.0 and d.attrs["name"] == name
    assert np.allclose(ds.to_physical(d)["x"].values, raw, atol=1e-10)
    read = json.loads(d.attrs["provenance"])[0]
    on_disk = hashlib.sha256((folder / filename).read_bytes()).hexdigest()
    assert read["sha256"] == ds.data.card(name)["file"]["sha256"] == on_disk
    assert d.attrs["n_train"] == int(0.8 * shape[0])
    assert d.attrs["lambda_ref"] == ds.data.card(name)["reference"]["lambda_max"]


def test_a_changed_copy_is_refused(tmp_path):
    folder = _copies()
    filename = CARDS["chaosrnn-weather"][0]
    shutil.copy(folder / filename, tmp_path / filename)
    with open(tmp_path / filename, "r+b") as fh:     # one byte of the data changed
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(DataError, match="SHA-256 .* does not match the expected e24324e14ca79360"):
        ds.load("chaosrnn-weather", data_dir=tmp_path)


def test_offline_without_a_copy_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import pooch
    import requests

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    dl = tmp_path / "dl"
    assert main(["fit", "chaosrnn-eeg", "--data-dir", str(dl), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "cannot download tde_eegf.npy (ConnectionError)" in err and f"place it in {dl}" in err
    assert not dl.exists() and not (tmp_path / "run").exists()


def test_cli_fit_finds_the_copy_through_data_dir(tmp_path, capsys):
    folder = _copies()
    out = tmp_path / "run"
    assert main(["fit", "chaosrnn-weather", "--data-dir", str(folder), "--steps", "20", "--t-gen", "1000",
                 "--set", "train.validate_every=0", "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["dataset"] == "chaosrnn-weather" and m["T_test"] == 5900 - int(0.8 * 5900)
