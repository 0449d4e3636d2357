"""One fit path (issue 13): `ds.fit(model, data, run_dir=...)` and `dsrecon fit` write the same run directory.

Both go through experiment._fit, so the same model, data, seed and settings give the same files and the same
scores (bit for bit: the same function on the same machine), and `Run.config` is a RunConfig either way.
"""
import json

import dsrecon as ds
from dsrecon import runs
from hostile import run_cli

TINY = ["--model", "plrnn", "--method", "stf", "--tau", "20", "--steps", "10", "--t-gen", "1000", "--latent-dim", "8", "--quiet",
        "--set", "train.validate_every=0"]
TIMES = ("train_seconds", "total_seconds", "eval_seconds")   # wall-clock: the only fields that may differ


def _metrics(run_dir):
    m = json.loads((run_dir / "metrics.json").read_text())
    return {k: v for k, v in m.items() if k not in TIMES}


def test_api_fit_writes_the_run_directory_the_cli_writes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["fit", "lorenz", *TINY, "--out", tmp_path / "cli"], capsys)
    assert code == 0, err

    data = ds.load("lorenz")
    cfg = ds.RunConfig(train=ds.TrainConfig(method="stf", steps=10, validate_every=0), eval=ds.EvalConfig(t_gen=1000))
    run = ds.fit(ds.PLRNN(3, 8, seed=0), data, tau=20, config=cfg, run_dir=tmp_path / "api", progress=False)

    assert isinstance(run.config, ds.RunConfig) and run.run_dir == tmp_path / "api"
    files = lambda d: sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))  # noqa: E731
    assert files(tmp_path / "api") == files(tmp_path / "cli")
    assert _metrics(tmp_path / "api") == _metrics(tmp_path / "cli")
    assert run.metrics["D_stsp"] == _metrics(tmp_path / "cli")["D_stsp"]
    api_cfg = json.loads((tmp_path / "api" / "config.json").read_text())
    cli_cfg = json.loads((tmp_path / "cli" / "config.json").read_text())
    assert api_cfg["config"]["train"] == cli_cfg["config"]["train"]
    assert api_cfg["data_fingerprint"] == cli_cfg["data_fingerprint"]
    assert api_cfg["data_in_memory"] is True and "data_in_memory" not in cli_cfg

    # the API's run directory opens like any other: same data (fingerprint checked), same model
    opened = runs.open(tmp_path / "api")
    assert opened.config.model.kind == "plrnn" and opened.config.model.latent_dim == 8
    assert runs.data_fingerprint(opened.data()) == api_cfg["data_fingerprint"]


def test_api_fit_without_run_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = ds.load("lorenz")
    run = ds.fit(ds.PLRNN(3, 8, seed=0), data, tau=20, config=ds.TrainConfig(method="stf", steps=3, validate_every=0),
                 progress=False)
    assert isinstance(run.config, ds.RunConfig) and run.config.train.steps == 3 and run.config.train.tau == 20
    assert run.run_dir is None and run.metrics is None and list(tmp_path.iterdir()) == []


def test_lyap_and_eval_report_the_same_model_lambda_max(tmp_path, tmp_path_factory, capsys, monkeypatch):
    # one recipe (evaluation.model_spectrum, settings in EvalConfig) behind both commands: the same number, bit
    # for bit (same function, same model, same data, same seed)
    from hostile import make_finished_run

    from dsrecon import evaluation

    monkeypatch.chdir(tmp_path)
    run_dir = make_finished_run(tmp_path / "run", tmp_path_factory)
    seen = []
    real = evaluation.model_spectrum

    def spy(*a, **k):
        out = real(*a, **k)
        seen.append(out["lambda_max"].value)
        return out

    monkeypatch.setattr(evaluation, "model_spectrum", spy)
    code, out, err = run_cli(["eval", run_dir, "--t-gen", "1000", "--json"], capsys)
    assert code == 0, err
    from_eval = json.loads(out)["model_lambda_max"]
    code, out, err = run_cli(["lyap", run_dir], capsys)
    assert code == 0, err
    assert len(seen) == 2 and seen[0] == seen[1] == from_eval
    assert f"model lambda_max = {from_eval:.4g}" in out
    # and the number fit wrote into metrics.json is the same recipe's
    assert json.loads((run_dir / "metrics.json").read_text())["model_lambda_max"] == from_eval


def test_fit_parses_the_card_once_and_loads_the_data_once(tmp_path, capsys, monkeypatch):
    # the walk of `dsrecon fit lorenz --tau auto` (docs/architecture.md): the CLI reads the card to refuse ignored
    # options, fit_run loads the dataset, scoring and the report reuse both (the card from cards' parse cache)
    import tomllib

    from dsrecon import cards, data as data_mod

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cards, "_PARSED", {})   # a cold parse cache, as in a fresh `dsrecon` process
    parsed, loaded = [], []
    real_parse, real_load = tomllib.load, data_mod.load
    monkeypatch.setattr(cards.tomllib, "load", lambda fh: parsed.append(fh.name) or real_parse(fh))
    monkeypatch.setattr(data_mod, "load", lambda *a, **k: loaded.append(a[0]) or real_load(*a, **k))
    code, _, err = run_cli(["fit", "lorenz", "--tau", "auto", "--steps", "3", "--t-gen", "1000", "--quiet",
                            "--set", "train.validate_every=0", "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    lorenz = [p for p in parsed if p.endswith("lorenz.toml")]
    assert len(lorenz) == 1, parsed
    assert loaded == ["lorenz"], loaded
