"""The contract every bad input to the CLI must keep (issue 12, part 4).

`assert_refused(argv, ...)` runs ``dsrecon ARGV`` in process and asserts, for one hostile case:
- exit status 2;
- exactly one line on stderr, with no traceback, naming what the test expects (the offending file or
  option, and the fix);
- nothing new, changed or removed under the watched folders (no half-written run directory, a finished run
  byte-for-byte untouched).

Test modules import it as ``from hostile import assert_refused, make_finished_run`` (pytest puts tests/ on
sys.path). The test-module convention: one parametrised ``test_..._refused`` per area, each case an id that
says what was tried.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from dsrecon import cli


def snapshot(*roots) -> dict:
    """Every file and folder under ``roots``: path -> sha256 of its bytes (None for a folder), plus modes."""
    state = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        if root.is_file():
            state[str(root)] = (hashlib.sha256(root.read_bytes()).hexdigest(), root.stat().st_mode)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            state[dirpath] = None
            for name in filenames:
                path = Path(dirpath) / name
                if not path.is_file() and path.exists():   # a pipe or device: reading it would block, its presence counts
                    state[str(path)] = ("special", path.stat().st_mode)
                    continue
                try:
                    state[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode)
                except OSError:  # unreadable on purpose (a permissions case): its presence still counts
                    state[str(path)] = ("unreadable", None)
    return state


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """``dsrecon ARGV`` in process: (exit status, stdout, stderr). argparse's SystemExit counts as a status."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_refused(argv, capsys, *, watch, match=(), status: int = 2) -> str:
    """Run the CLI on a hostile input and assert the contract above; returns the one stderr line.

    ``watch``: folders (or files) that must be untouched, e.g. the test's tmp_path and a finished run.
    ``match``: substrings the line must contain (case-sensitive), e.g. the file name and the fix.
    """
    watch = [watch] if isinstance(watch, (str, os.PathLike)) else list(watch)
    before = snapshot(*watch)
    code, _, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert code == status, f"exit {code}, expected {status}; stderr: {err}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    for m in [match] if isinstance(match, str) else match:
        assert m in lines[0], f"{m!r} not in {lines[0]!r}"
    after = snapshot(*watch)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), f"files touched: added {added}, removed {removed}, changed {changed}"
    return lines[0]


_TEMPLATE: dict = {}


def make_finished_run(dest: Path, tmp_path_factory) -> Path:
    """A finished tiny `dsrecon fit lorenz` run copied to ``dest`` (trained once per test session)."""
    if "run" not in _TEMPLATE:
        import contextlib
        import io

        root = tmp_path_factory.mktemp("finished-run")
        src = root / "run"
        argv = ["fit", "lorenz", "--model", "plrnn", "--method", "stf", "--tau", "20", "--steps", "10", "--t-gen",
                "1000", "--out", str(src), "--quiet",
                "--set", "train.validate_every=0"]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            code = cli.main(argv)
        assert code == 0, err.getvalue()
        _TEMPLATE["run"] = src
    shutil.copytree(_TEMPLATE["run"], dest)
    return dest
