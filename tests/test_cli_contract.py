"""The CLI's contract for bad input (tests/hostile.py): argparse errors and unknown names are one line, exit 2."""
import pytest

from hostile import assert_refused, make_finished_run, run_cli


@pytest.mark.parametrize("argv, match", [
    (["fit", "lorenz", "--steps", "many"], ["--steps", "invalid int value", "dsrecon fit --help"]),
    (["fit", "lorenz", "--nonsense"], ["unrecognized arguments: --nonsense"]),
    (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    (["fit", "lorenzz"], ["unknown dataset 'lorenzz'"]),
], ids=["non-integer-steps", "unknown-option", "unknown-command", "unknown-dataset"])
def test_argument_errors_are_refused_in_one_line(argv, match, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_refused(argv, capsys, watch=tmp_path, match=match)


def test_the_harness_catches_a_touched_run(tmp_path, tmp_path_factory, capsys):
    # the harness itself must be able to fail: a command that succeeds (exit 0) is not "refused"
    run = make_finished_run(tmp_path / "run", tmp_path_factory)
    assert (run / "model.pt").exists() and (run / "metrics.json").exists()
    with pytest.raises(AssertionError, match="exit 0"):
        assert_refused(["compare", str(run)], capsys, watch=run)


def test_an_internal_error_is_one_line_with_the_debug_hint(capsys, monkeypatch):
    from dsrecon import cli

    def boom(args):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(cli, "_cmd_compare", boom)
    code, _, err = run_cli(["compare", "x"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "--debug" in err and "Traceback" not in err
