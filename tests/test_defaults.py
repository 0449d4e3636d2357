"""The defaults of `dsrecon fit` (issue 15, part 3) and the rules that choose them from the data.

Why these defaults (docs/defaults.md, "Real recordings"): a clipped shPLRNN with M = max(N, 3) latents and L = 30 M
hidden units, trained by GTF (α = 0.15) on 50-step windows for 10 000 steps. On the EEG recording both unclipped
models (PLRNN, shPLRNN) learned diverging free runs, the clipped one did not; on Lorenz GTF reaches the noise floor
where the paper's sparse forcing does not at the same budget. The tests pin the rules (what the code chooses for a
given channel count and method), not a score: the scores are in docs/defaults.md with the commands that made them.
`--method stf` must stay the sparse-forcing paper's method, with its 200-step windows.
"""
import json

import numpy as np
import pytest

from dsrecon import cli
from dsrecon.config import ModelConfig, RunConfig, TrainConfig, model_sizes, seq_len_for
from dsrecon.errors import ConfigError
from dsrecon.experiment import build_model
from dsrecon.models import PLRNN, ShallowPLRNN


@pytest.mark.parametrize("n, sizes", [(1, (3, 90)), (2, (3, 90)), (3, (3, 90)), (5, (5, 150)), (10, (10, 300))])
def test_shplrnn_sizes_follow_the_channel_count(n, sizes):
    # as many latents as channels (Hess et al.'s setting), at least 3 (a flow needs 3 dimensions to be chaotic)
    assert model_sizes(ModelConfig(), n) == sizes
    m = build_model(ModelConfig(), n, method="gtf")
    assert isinstance(m, ShallowPLRNN) and (m.latent_dim, m.hidden_dim) == sizes and m.clipped


def test_given_sizes_and_other_architectures_are_left_alone():
    assert model_sizes(ModelConfig(latent_dim=20), 3) == (20, 600)
    assert model_sizes(ModelConfig(hidden_dim=40), 3) == (3, 40)
    assert model_sizes(ModelConfig(kind="plrnn"), 3) == (None, None)
    m = build_model(ModelConfig(kind="plrnn"), 3)
    assert isinstance(m, PLRNN) and m.latent_dim == 100   # the class's own default, max(100, N)
    assert not build_model(ModelConfig(clipped=False), 3).clipped


def test_an_older_config_still_builds_and_clipped_stays_a_shplrnn_option():
    # every config.json written before this change says clipped = false, for every architecture
    old = ModelConfig(kind="plrnn", clipped=False)
    assert isinstance(build_model(old, 3), PLRNN)
    with pytest.raises(ConfigError, match="does not apply to --model lstm"):
        build_model(ModelConfig(kind="lstm", clipped=True), 3)


def test_the_window_length_follows_the_method():
    assert TrainConfig().method == "gtf" and TrainConfig().seq_len == 50 == seq_len_for("gtf")
    for method in ("stf", "id-tf", "bptt-clip", "window"):
        assert TrainConfig(method=method).seq_len == 200 == seq_len_for(method)   # the paper's windows
    assert TrainConfig(method="stf", seq_len=80).seq_len == 80
    # --set train.method=stf on a default config: the default window follows the method, a given one stays
    assert RunConfig().override(["train.method=stf"]).train.seq_len == 200
    assert RunConfig().override(["train.method=stf", "train.seq_len=70"]).train.seq_len == 70
    given = RunConfig(train=TrainConfig(seq_len=70))
    assert given.override(["train.method=stf"]).train.seq_len == 70
    # the resolved length is what config.json stores, so a run reloads with the same windows
    cfg = RunConfig(train=TrainConfig(method="stf"))
    assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).train.seq_len == 200


def test_cli_default_fit_and_the_papers_method(tmp_path, capsys, lorenz_data):
    out = tmp_path / "gtf"
    assert cli.main(["fit", "lorenz", "--steps", "3", "--t-gen", "1000", "--set", "train.validate_every=0",
                     "--out", str(out), "--quiet"]) == 0
    info = json.loads((out / "config.json").read_text())
    assert info["config"]["model"]["kind"] == "shplrnn" and info["config"]["train"]["method"] == "gtf"
    assert info["config"]["train"]["seq_len"] == 50 and info["tau_steps"] is None
    lam = json.loads((out / "lambda_max.json").read_text())   # λ_max is still estimated and reported
    assert lam["tau_steps"] > 0
    paper = tmp_path / "stf"
    assert cli.main(["fit", "lorenz", "--model", "plrnn", "--method", "stf", "--steps", "3", "--t-gen", "1000",
                     "--set", "train.validate_every=0", "--out", str(paper), "--quiet"]) == 0
    info = json.loads((paper / "config.json").read_text())
    t = info["config"]["train"]
    assert (t["method"], t["seq_len"], info["tau_steps"]) == ("stf", 200, lam["tau_steps"])


def test_default_fit_refuses_white_noise_in_one_line(tmp_path, capsys):
    np.save(tmp_path / "noise.npy", np.random.default_rng(0).standard_normal((3000, 3)))
    out = tmp_path / "run"
    assert cli.main(["fit", str(tmp_path / "noise.npy"), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "white noise" in err
    assert "--tau N" not in err          # the default gtf ignores tau: no advice to set it
    assert not out.exists()
