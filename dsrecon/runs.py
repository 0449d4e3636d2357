"""Run directories: layout, atomic writes, safe loading.

Layout of ``runs/<dataset>-<model>-<timestamp>/``:
  config.json          every setting, the seed and package versions (enough to rerun)
  model.pt             {"state_dict", "config"}: load with torch.load(..., weights_only=True)
  checkpoints/last.pt  training state for --resume (model, optimiser, rng, step, history, best)
  metrics.json         D_stsp, D_H, PSC, T_gen, lambda_max, tau, noise_floor, ...
  generated.nc         the free run in physical units (xarray, dims time x dim)
  train.log            the log of the run
  *.png                attractor, spectra, loss curve, lambda_max divergence curve
"""
from __future__ import annotations

import io
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from .errors import DataError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then os.replace: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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


def read_json(path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def save_torch(path, obj) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_torch(path, map_location="cpu"):
    """torch.load with weights_only=True: a run directory never executes pickled code."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    return torch.load(path, map_location=map_location, weights_only=True)


def new_run_dir(root: str | os.PathLike, dataset: str, model: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{Path(str(dataset)).stem}-{model}-{stamp}"  # a file dataset: its name, not its path
    path, i = base, 1
    while path.exists():
        i += 1
        path = Path(f"{base}-{i}")
    path.mkdir(parents=True)
    return path


def package_versions() -> dict:
    import numpy
    import scipy
    import xarray

    from . import __version__

    return {
        "dsrecon": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__, "scipy": scipy.__version__, "xarray": xarray.__version__,
        "platform": platform.platform(),
    }
