"""A (T, N) float array from whatever holds a series: an ``xarray.Dataset`` (its variable ``x``), a DataArray, a
torch tensor or an array (:func:`as_array`). The metrics, the evaluation and the training loop all read their
inputs through it."""
from __future__ import annotations

import numpy as np
import xarray as xr

from .errors import DataError


def transposed_hint(shape: tuple) -> str:
    """For a 2-d series with more channels than samples, the hint that it is probably stored time-last
    (" (shape (3, 3000) reads as 3 samples of 3000 channels; pass x.T if time is the second axis)"); else ""."""
    if len(shape) == 2 and shape[1] > shape[0]:
        return f" (shape {tuple(shape)} reads as {shape[0]} samples of {shape[1]} channels; pass x.T if time is the " \
               f"second axis)"
    return ""


def as_array(x, *, what: str = "data", allow_nonfinite: bool = False) -> np.ndarray:
    """A (T, N) float array from an xr.Dataset (variable ``x``), a DataArray, a torch tensor or an
    array; a 1-d series becomes (T, 1). NaN/inf raise a DataError naming the count and the first
    index, unless ``allow_nonfinite`` (metrics accept a diverged generated run and report it)."""
    if isinstance(x, xr.Dataset):
        if "x" not in x:
            raise DataError(f"{what}: xarray.Dataset has no variable 'x' (variables: {list(x.data_vars)})")
        x = x["x"].values
    elif isinstance(x, xr.DataArray):
        x = x.values
    elif hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{what}: expected a numeric array, got {type(x).__name__}") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{what}: expected shape (time, channel), got {arr.shape}")
    if not allow_nonfinite:
        bad = ~np.isfinite(arr)
        if bad.any():
            first = int(np.argwhere(bad)[0, 0])
            raise DataError(
                f"{what}: {int(bad.sum())} NaN/inf values (first at time index {first}); "
                "fill or drop them first, e.g. data.interpolate_na('time')"
            )
    return arr
