"""Run directories: layout, atomic writes, and the one reader of a run (:func:`open`).

Layout of ``runs/<dataset>-<model>-<timestamp>/``:
  config.json          every setting, the seed, package versions and the data's fingerprint (enough to rerun)
  model.pt             {"state_dict", "config"}: load with torch.load(..., weights_only=True)
  checkpoints/last.pt  training state for --resume (model, optimiser, rng, step, history, best, lr scale)
  metrics.json         D_stsp, D_H, PSC, T_gen, lambda_max, tau, noise_floor, ...
  generated.nc         the free run in physical units (xarray, dims time x channel)
  train.log            the log of the run
  history.json         training loss and validation scores per step
  lambda_max.json      λ_max of the training data and how τ was chosen (tau="auto" only)
  *.png, report.html   attractor, spectra, loss curve, lambda_max divergence curve; the page that shows them

Every read of a run directory (``dsrecon fit --resume``, ``eval``, ``lyap``, ``compare``, the report, a sweep
recovering a lost result) goes through :func:`open` (``dsrecon.runs.open(RUN)``), which returns a
:class:`RunDir`: ``.config`` (always a :class:`dsrecon.config.RunConfig`), ``.model()``, ``.data()`` (with the
fingerprint check), ``.metrics()``, ``.read(name)`` for the other JSON files and ``.generated()``; whatever is wrong with a file (missing, unreadable, truncated, not JSON, not a
weights-only torch file, weights of another architecture, data changed since training) becomes one
:class:`DataError` naming the file and what to do.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy
import scipy
import torch
import xarray


from . import __version__, data as data_mod
from .config import RunConfig
from .errors import ConfigError, DataError
from .models import MODELS, upgrade_hparams
from .fileio import WriteError, atomic_write_bytes, check_path, why as _why  # noqa: F401 - re-exported: runs' public names
from .ownership import (CHECKPOINT_FILES, FIGURES, LOCK, MANIFEST, REPLACED, RUN_FILES, RunLock,  # noqa: F401
                        drop_replaced, foreign_entries, is_ours, is_run, name_list, read_manifest, restore_replaced,
                        set_old_run_aside, sha256, write_manifest)


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)  # JSON has no inf/nan; "inf"/"nan" strings keep the information
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def write_json(path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(_json_safe(obj), indent=2) + "\n").encode())


_FIX = "restore it from a backup, or fit the run again"


def read_json(path, fix: str = _FIX) -> dict:
    """A JSON object from ``path``; a missing, unreadable, truncated or non-JSON file is a one-line
    DataError naming it and ``fix``."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            obj = json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; {fix}") from None
    except OSError as err:
        raise DataError(f"{path} cannot be read ({err.strerror or type(err).__name__}); {fix}") from None
    except (ValueError, UnicodeDecodeError) as err:   # JSONDecodeError is a ValueError
        where = f" at line {err.lineno}" if isinstance(err, json.JSONDecodeError) else ""
        raise DataError(f"{path} is not valid JSON (corrupt or truncated{where}); {fix}") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a JSON {type(obj).__name__}, not the object dsrecon writes; {fix}")
    return obj


def save_torch(path, obj) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path, map_location="cpu", fix: str = _FIX):
    """torch.load with weights_only=True: a run directory never executes pickled code.

    A missing file, a truncated or corrupt one, or one holding anything but tensors and plain values is a
    one-line DataError naming it and ``fix`` (torch's own advice to load unsafely is never passed on)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; {fix}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except OSError as err:
        raise DataError(f"{path} cannot be read ({err.strerror or type(err).__name__}); {fix}") from None
    except Exception:  # noqa: BLE001 - UnpicklingError, RuntimeError (bad zip), EOFError, ...: all mean "not ours"
        raise DataError(f"{path} is not a readable dsrecon torch file (corrupt, truncated, or not written by "
                        f"dsrecon); {fix}") from None


def data_fingerprint(dataset) -> str:
    """sha256 of a dataset's values, channel names and dt (:func:`dsrecon.data.data_fingerprint`): a run records
    it in config.json at fit time, and re-scoring or resuming refuses data that changed since."""
    return data_mod.data_fingerprint(dataset)


def _fingerprint_checked(data_config) -> bool:
    """Files and downloaded recordings can be replaced under a run; simulated datasets are regenerated from
    their card and seed (bit-for-bit only on the same platform), so they are not checked."""
    if data_mod.is_path(data_config.name):
        return True
    try:
        return data_mod.card(data_config.name).get("kind") == "download"
    except Exception:  # noqa: BLE001 - an unknown name fails later, in load_for, with its own message
        return False


def load_model(path):
    """Rebuild a model from ``model.pt`` (state_dict + constructor arguments), weights_only; one-line
    DataErrors for a file that is unreadable or whose weights do not fit the architecture it names."""
    path = Path(path)
    blob = load_torch(path)
    try:
        kind, hparams, state = blob["config"]["kind"], blob["config"]["hparams"], blob["state_dict"]
    except (KeyError, TypeError):
        raise DataError(f"{path} is not a dsrecon model file (no state_dict and config in it); {_FIX}") from None
    if kind not in MODELS:
        raise DataError(f"{path} names an unknown architecture {kind!r} (known: {', '.join(MODELS)}); {_FIX}")
    try:
        model = MODELS[kind](**upgrade_hparams(kind, hparams))   # older files: parameter names of their time
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, ConfigError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: its weights do not fit the {kind} architecture it names ({first[:120]}); "
                        f"{_FIX}") from None
    return model


def _model_kind(model) -> str | None:
    return next((k for k, cls in MODELS.items() if type(model) is cls), None)


def check_model_matches(model, model_config, path) -> None:
    """One DataError when the model rebuilt from ``path`` is not what the run's config.json names: another
    architecture, or a latent or hidden size other than one the config fixed (a size the config leaves open was
    chosen from the data at fit time: :func:`dsrecon.config.model_sizes`, nothing to compare it with)."""
    kind = _model_kind(model)
    if kind is not None and kind != model_config.kind:
        raise DataError(f"{path} holds a {kind} model but the run's config.json names {model_config.kind}: the file "
                        f"was replaced or copied from another run; restore the run's own model.pt, or fit it again")
    hp = getattr(model, "hparams", {}) or {}
    for field, keys in (("latent_dim", ("latent_dim", "units")), ("hidden_dim", ("hidden_dim",))):
        want = getattr(model_config, field, None)
        have = next((hp[k] for k in keys if k in hp), None)
        if want is not None and have is not None and int(want) != int(have):
            raise DataError(f"{path} holds a {kind or model_config.kind} model with {field} {have} but the run's "
                            f"config.json says {want}: the file was replaced or copied from another run; restore the "
                            f"run's own model.pt, or fit it again")


CHECKPOINT_KEYS = ("model", "optimizer", "rng", "step", "elapsed", "history", "best_score", "best_state", "best_step")


@dataclass
class RunDir:
    """A run directory opened by :func:`open`: its config.json read and checked; the other files are
    read on demand, each with one-line errors naming the file."""

    path: Path
    info: dict          # config.json: {"config", "tau_steps", "versions", "data_fingerprint"?}

    @property
    def config(self):
        """config.json's settings as a :class:`dsrecon.config.RunConfig` (a DataError when they are invalid)."""
        cj = self.path / "config.json"
        try:
            return RunConfig.from_dict(self.info["config"])
        except (KeyError, TypeError, AttributeError):
            raise DataError(f"{cj} has no valid \"config\" section; {_FIX}") from None
        except ConfigError as err:
            raise DataError(f"{cj}: {err}; fix the file, or fit the run again") from None

    @property
    def config_dict(self) -> dict:
        """config.json's settings as written, unchecked (for tables of old runs)."""
        c = self.info.get("config")
        return c if isinstance(c, dict) else {}

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def finished(self) -> bool:
        """Training and scoring completed: metrics.json is written last."""
        return (self.path / "metrics.json").exists()

    def metrics(self) -> dict:
        p = self.path / "metrics.json"
        if not p.exists():
            raise DataError(f"{self.path}: no metrics.json; the run did not finish (continue it with "
                            f"`dsrecon fit --resume {self.path}`)")
        return read_json(p, fix=f"re-score the run with `dsrecon eval {self.path}`, or fit it again")

    def model(self):
        """model.pt, rebuilt and checked against config.json: a model file of another architecture or other sizes
        than the config names (copied in from another run) is a one-line DataError, not scored under the wrong
        name."""
        p = self.path / "model.pt"
        if not p.exists():
            raise DataError(f"{self.path}: no model.pt; the run did not finish training (continue it with "
                            f"`dsrecon fit --resume {self.path}`)")
        model = load_model(p)
        check_model_matches(model, self.config.model, p)
        return model

    def checkpoint(self, map_location="cpu") -> dict:
        ck = load_torch(self.checkpoint_path, map_location,
                        fix="the run cannot be resumed from it: start it again with `dsrecon fit ... --out "
                            f"{self.path} --overwrite`")
        missing = [k for k in CHECKPOINT_KEYS if not isinstance(ck, dict) or k not in ck]
        try:
            if not missing:
                int(ck["step"]), int(ck["best_step"]), float(ck["elapsed"]), float(ck["best_score"])
                [ck["history"][k].append for k in ("step", "loss", "val_step", "val_d_stsp", "lr", "alpha")]
        except (TypeError, ValueError, KeyError, AttributeError):
            missing = ["numeric step or history"]
        if missing:
            raise DataError(f"{self.checkpoint_path} is not a dsrecon training checkpoint (no {', '.join(missing)}); "
                            f"the run cannot be resumed from it: start it again with --overwrite")
        return ck

    @property
    def fingerprint(self) -> str | None:
        return self.info.get("data_fingerprint")

    def check_data(self, data) -> None:
        """Refuse data that differ from those the run was trained on (runs without a fingerprint: no check)."""
        if self.fingerprint is None or not (self.info.get("data_in_memory") or _fingerprint_checked(self.config.data)):
            return
        if data_fingerprint(data) != self.fingerprint:
            if self.info.get("data_in_memory"):
                raise DataError(f"{self.path} was fitted by dsrecon.fit on a dataset given in memory, and loading "
                                f"{self.config.data.name!r} as its config.json names it gives other data (another "
                                f"split, preprocessing or edit); pass that dataset yourself, e.g. "
                                f"dsrecon.evaluate(run.model, data)")
            raise DataError(f"{self.config.data.name} changed since the run {self.path} was trained (its data "
                            f"fingerprint differs); scores against it would mean nothing: restore the original "
                            f"file, or fit a new run on the new data")

    def read(self, name: str) -> dict | None:
        """A JSON file of the run (``history.json``, ``lambda_max.json``, ...), or None when it is absent; a
        damaged one is a one-line DataError naming it."""
        p = self.path / name
        return read_json(p, fix=f"delete it and re-create it with `dsrecon eval {self.path}`, or fit the run "
                                f"again") if p.exists() else None

    def generated(self):
        """generated.nc: the free run of the fit, in physical units (an xr.Dataset)."""
        p = self.path / "generated.nc"
        if not p.exists():
            raise DataError(f"{self.path}: no generated.nc; the run did not finish (continue it with "
                            f"`dsrecon fit --resume {self.path}`)")
        try:
            return data_mod.read_netcdf(p)
        except Exception as err:  # noqa: BLE001 - each netCDF backend fails its own way on a damaged file
            raise DataError(f"{p} is not a readable netCDF file ({type(err).__name__}); {_FIX}") from None

    def data(self):
        """The dataset the run was fitted on (:func:`dsrecon.data.load_for`), checked against its fingerprint."""
        try:
            data = data_mod.load_for(self.config.data)
        except DataError as err:
            if data_mod.is_path(self.config.data.name) and not Path(self.config.data.name).is_absolute():
                raise DataError(f"{err} (the run was fitted on the relative path {self.config.data.name!r}: run "
                                "this from the directory it was fitted in)") from None
            raise DataError(f"{err} (the data of {self.path / 'config.json'})") from None
        self.check_data(data)
        return data


def open(path, require=("config.json",)) -> RunDir:  # noqa: A001 - runs.open(RUN), as the issue names it
    """Open a run directory written by ``dsrecon fit``: its config.json read (``.config`` validates it).

    Raises DataError (one line, naming the file and the fix) for a missing folder, a file where the folder
    should be, a missing file of ``require``, or a missing, corrupt or truncated config.json."""
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"the run directory must be a folder path (a str or a Path), got {type(path).__name__}")
    check_path(path, "the run directory")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; give a run directory written by `dsrecon fit`")
    if not path.is_dir():
        raise DataError(f"{path} is a file, not a run directory written by `dsrecon fit`")
    for name in require:   # in the order the caller needs them (compare: metrics.json first)
        if not (path / name).exists():
            what = "a finished run directory" if name == "metrics.json" else "a run directory"
            raise DataError(f"{path}: no {name} there; is it {what} written by `dsrecon fit`?")
    cj = path / "config.json"
    if not cj.exists():
        raise DataError(f"{path}: no config.json there; is it a run directory written by `dsrecon fit`?")
    return RunDir(path=path, info=read_json(cj))


MAX_STEM = 60


def run_dir_name(dataset: str, model: str) -> str:
    """``<dataset>-<model>-<timestamp>``; a file dataset gives its name (not its path), shortened to 60
    characters plus 8 of its hash when longer, so the folder name stays within the file system's limit."""
    stem = Path(str(dataset)).stem
    if len(stem) > MAX_STEM:
        stem = f"{stem[:MAX_STEM]}-{hashlib.sha256(stem.encode()).hexdigest()[:8]}"
    return f"{stem}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_writable_dir(path, what: str, existing_ok: bool = False) -> None:
    """One line, before any work, when ``path`` cannot become a folder: it is a file, a parent is a file,
    or the nearest existing parent is not writable. ``existing_ok``: an existing folder passes unprobed
    (one that is only read, like a read-only --data-dir holding the recordings)."""
    check_path(path, what, ConfigError)
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, not a folder; choose another path")
    if existing_ok and path.is_dir():
        return
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"{what} {path}: {probe} is a file, so no folder can be made under it; choose another path")
    if not probe.exists():
        return
    try:   # a real probe: os.access says yes to root on read-only or virtual file systems (/proc)
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise ConfigError(f"{what} {path}: nothing can be written in {probe} ({err.strerror or type(err).__name__}); "
                          "choose another folder") from None


def check_writable_file(path, what: str, suffix: str | None = None) -> None:
    """One line, before any work, when ``path`` cannot be written as a file: it is a folder, a parent is
    a file, the nearest existing parent is not writable, or its name does not end in ``suffix`` (what will be
    written, e.g. ".png": a PNG saved as p.txt opens nowhere)."""
    check_path(path, what, ConfigError)
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give a file name, e.g. {path / 'plot.png'}")
    if suffix is not None and path.suffix.lower() != suffix:
        raise ConfigError(f"{what} {path}: the file written is a {suffix[1:].upper()} image; name it "
                          f"{path.with_suffix(suffix).name}")
    check_writable_dir(path.parent, what)


def check_out(run_dir: Path, overwrite: bool, what: str = "--out", locked: bool = False) -> None:
    """``--out``: a new or empty folder, or one holding a dsrecon run (finished or interrupted only with
    ``overwrite``); one-line ConfigErrors otherwise, before any work: a non-empty folder that is not a run, a run
    folder holding anything dsrecon did not write, a run another process is writing. A folder is looked at before
    it is probed for writing: the probe may leave a trace (a named temporary file where an anonymous one cannot be
    made, as through a symlink), and a run that is refused must stay untouched. ``locked``: the caller holds the
    folder's :class:`RunLock` (the check again, under the lock)."""
    check_path(run_dir, what, ConfigError)
    if not run_dir.is_dir():
        check_writable_dir(run_dir, what)
        return
    try:
        entries = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK)   # the lock: ours, held or stale
        if entries and not is_run(run_dir):
            raise ConfigError(f"{what} {run_dir} is a folder that is not a dsrecon run (it holds {name_list(entries)}); "
                              "choose a new or empty folder")
        foreign = foreign_entries(run_dir) if entries else []
    except OSError as err:
        raise ConfigError(f"{what} {run_dir} cannot be read ({_why(err)}); choose another folder") from None
    if foreign:
        raise ConfigError(f"{what} {run_dir} holds what dsrecon did not write ({name_list(foreign)}); move it out of the "
                          "folder or choose another folder: dsrecon replaces only its own files")
    holder = None if locked else RunLock.holder(run_dir)   # locked: the caller holds the lock itself
    if holder is not None:
        raise ConfigError(f"{what} {run_dir} is being written by another dsrecon process ({holder}); wait for it to "
                          "finish, or choose another folder")
    if not overwrite:
        if (run_dir / "model.pt").exists() or (run_dir / "metrics.json").exists():
            raise ConfigError(f"{what} {run_dir} holds a finished run (model.pt, metrics.json); choose another --out, "
                              f"or pass --overwrite to replace it")
        if (run_dir / "checkpoints" / "last.pt").exists():
            raise ConfigError(f"{what} {run_dir} holds an interrupted run; continue it with `dsrecon fit --resume "
                              f"{run_dir}`, or pass --overwrite to start it again")
    check_writable_dir(run_dir, what)


def clear_run(run_dir: Path) -> None:
    """Remove the files of a run that never finished (a sweep's attempt that wrote no checkpoint): only what
    :func:`foreign_entries` counts as dsrecon's; anything else there is a one-line ConfigError and nothing is
    removed."""
    run_dir = Path(run_dir)
    foreign = foreign_entries(run_dir)
    if foreign:
        raise ConfigError(f"{run_dir} holds what dsrecon did not write ({name_list(foreign)}); move it out of the folder "
                          "or choose another folder: dsrecon removes only its own files")
    for p in run_dir.iterdir():
        if p.name != LOCK:
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def new_run_dir(root: str | os.PathLike, dataset: str, model: str) -> Path:
    base = Path(root) / run_dir_name(dataset, model)
    path, i = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            if not path.exists():   # a file among the parents
                raise WriteError(f"could not create {path}: a file is in the way; choose another folder") from None
            i += 1
            path = Path(f"{base}-{i}")
        except OSError as err:
            raise WriteError(f"could not create {path}: {_why(err)}") from None


def package_versions() -> dict:
    return {
        "dsrecon": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__, "scipy": scipy.__version__, "xarray": xarray.__version__,
        "platform": platform.platform(),
    }
