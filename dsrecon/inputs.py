"""External inputs of a driven model (``input_dim = K > 0``): the one check that a model and its inputs agree,
the windows of inputs that runs read, and the continuation of a periodic forcing.

Every place that runs a model on inputs (training, forcing, generation, metrics, Lyapunov spectra) asks
:func:`check_inputs` (or :func:`model_inputs`, which first takes the inputs out of a dataset); a mismatch is
one :class:`dsrecon.errors.InputError` line. Arrays and tensors in: a dataset is read duck-typed (its variable
``s`` and coordinate ``input``), so this core module imports neither xarray nor the data layer.
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import InputError

PHASE_TOL = 1e-6   # rad: largest deviation of a periodic input's phase step from its mean (float64 data: ~1e-12)


def input_dim(model) -> int | None:
    """K, the number of external inputs ``model`` reads (0: autonomous; ``model`` may be that number itself);
    None for a model that does not declare ``input_dim`` (a hand-written map): it is then trusted with whatever
    inputs it is given."""
    K = model if isinstance(model, int) else getattr(model, "input_dim", None)
    return None if K is None else int(K or 0)


def check_inputs(model, s, *, what: str = "the data", fix: str | None = None):
    """The one check that ``model`` and the external inputs ``s`` (..., K) it is given agree; returns ``s``.

    InputError (one line, naming ``what`` and the fix) when a driven model gets none, inputs reach a model built
    with ``input_dim=0``, or the number of channels differs. ``what``: where the inputs come from (a dataset, or
    with ``fix`` a call: "the call of fit"); ``fix``: what to do about missing inputs in a call."""
    K = input_dim(model)
    if s is None:
        if K:
            if fix is None:     # inputs from a dataset
                raise InputError(f"the model is driven by {K} external inputs (input_dim={K}) but {what} carry no "
                                 f"input variable s; load data with inputs (e.g. dsrecon.load('duffing', "
                                 f"forcing='input')) or build the model with input_dim=0")
            raise InputError(f"the model is driven by {K} external inputs (input_dim={K}) but {what} has none; {fix}")
        return None
    n = int(s.shape[-1]) if getattr(s, "ndim", 0) else 1
    if K == 0:
        raise InputError(f"{what}: {n} external input(s), but the model was built with input_dim=0; build it "
                         f"with input_dim={n} (dsrecon fit does this), or drop the inputs (a driven card: load it "
                         f"with forcing='phase')")
    if K is not None and n != K:
        raise InputError(f"{what}: {n} external inputs, but the model reads {K} (input_dim={K}); build it with "
                         f"input_dim={n}")
    return s


def external_inputs(data) -> np.ndarray | None:
    """The external input series s (T, K) of a dataset that drives a model, or None.

    A dataset's ``s`` is an external input unless its channels are also observed in ``x``: the forced
    Duffing oscillator with ``forcing="phase"`` carries ``s`` as a copy of its observed cos/sin channels
    (an autonomous model fits it), with ``forcing="input"`` x = (x, v) and ``s`` must drive the model.
    """
    if not hasattr(data, "data_vars") or "s" not in data:
        return None
    names = [str(v) for v in data["input"].values] if "input" in data.coords else []
    if names and set(names) <= {str(v) for v in data["channel"].values}:
        return None
    return np.asarray(data["s"].values, dtype=float).reshape(data.sizes["time"], -1)


def model_inputs(model, data=None, inputs=None, *, what: str = "the data") -> np.ndarray | None:
    """The inputs (T, K) float64 that drive ``model`` along ``data``: ``inputs`` when given, else the dataset's
    external inputs (an observed phase may also drive a driven model); None for an autonomous model on data
    without external inputs. :func:`check_inputs` refuses a mismatch."""
    if inputs is not None:
        s = np.asarray(inputs, dtype=float)
    else:
        s = external_inputs(data)
        if s is None and input_dim(model) and hasattr(data, "data_vars") and "s" in data:
            s = np.asarray(data["s"].values, dtype=float)
    return check_inputs(model, s, what=what, fix=None if inputs is not None or hasattr(data, "data_vars") else
                        f"pass inputs= (T, {input_dim(model)}) aligned with the data, or a Dataset with its input "
                        f"variable s")


def check_covers(s, n_steps: int, what: str = "the inputs") -> None:
    """InputError unless the inputs ``s`` (time first) cover ``n_steps`` steps."""
    if s is not None and len(s) < int(n_steps):
        raise InputError(f"{what} cover {len(s)} steps, fewer than n_steps = {int(n_steps)}")


def input_windows(s, starts, n_steps: int, *, time_first: bool = False, clamp: bool = False):
    """The inputs of runs of ``n_steps`` steps from each start: s[t_b], ..., s[t_b + n − 1] for the starts t_b
    (any shape S) of the inputs ``s`` (T, K), numpy or torch -> (*S, n, K), or (n, *S, K) with ``time_first``.
    ``clamp`` repeats the last input where a window runs past the end; otherwise that is an InputError."""
    if torch.is_tensor(s):
        st = torch.as_tensor(starts, device=s.device)
        offs = torch.arange(int(n_steps), device=s.device)
    else:
        st, offs = np.asarray(starts), np.arange(int(n_steps))
    if time_first:
        idx = st[None] + offs.reshape(-1, *([1] * st.ndim))
    else:
        idx = st[..., None] + offs
    if clamp:
        idx = idx.clamp_max(len(s) - 1) if torch.is_tensor(idx) else np.minimum(idx, len(s) - 1)
    elif st.numel() if torch.is_tensor(st) else st.size:
        need = int(st.max()) + int(n_steps)
        if need > len(s):
            raise InputError(f"the inputs cover {len(s)} steps but runs of {n_steps} steps from index "
                             f"{int(st.max())} need {need}; pass longer inputs or a shorter run")
    return s[idx]


def continue_periodic(s: np.ndarray, n_steps: int) -> np.ndarray | None:
    """``s`` (T, K) continued to ``n_steps`` rows if it is a periodic forcing, else None.

    The rule: the channels come in pairs (cos θ, sin θ) of unit norm (to 1e-6) whose phase θ advances by
    the same angle Δ every step (to :data:`PHASE_TOL` rad); for the forced Duffing oscillator θ = ω t and
    Δ = ω dt (card: ω = 1.4, dt = 0.17, Δ = 0.238). Such an input is continued exactly, pair by pair,
    by θ_{T−1+k} = θ_{T−1} + kΔ. Anything else (a recorded input, noise) has no continuation: None.
    """
    s = np.asarray(s, dtype=float)
    T, K = s.shape
    if n_steps <= T:
        return s[:n_steps]
    if K % 2 or T < 3:
        return None
    out = [s]
    k = np.arange(1, n_steps - T + 1)
    for j in range(0, K, 2):
        u = s[:, j] + 1j * s[:, j + 1]
        if np.max(np.abs(np.abs(u) - 1.0)) > 1e-6:
            return None
        steps = np.angle(u[1:] / u[:-1])
        delta = float(np.mean(steps))
        if np.max(np.abs(steps - delta)) > PHASE_TOL:
            return None
        theta = np.angle(u[-1]) + k * delta
        out.append(np.stack([np.cos(theta), np.sin(theta)], axis=1))
    tail = np.concatenate(out[1:], axis=1) if K > 2 else out[1]
    return np.concatenate([s, tail], axis=0)


def extend_inputs(s: np.ndarray | None, n_extra: int) -> np.ndarray | None:
    """``s`` continued by ``n_extra`` steps when it is a periodic forcing (:func:`continue_periodic`), else ``s``
    itself; None stays None. Runs that start late in a split read their inputs from this."""
    if s is None:
        return None
    longer = continue_periodic(s, len(s) + int(n_extra))
    return s if longer is None else longer


def starts_with_inputs(s: np.ndarray | None, n_data: int, window: int, n: int, seed: int):
    """``n`` random starts in [0, n_data) and, for a driven model, the input windows (window, n, K) that follow
    them; with inputs the starts are drawn only where a whole window of inputs exists. Returns (starts,
    windows or None); ``starts`` is empty when no start fits."""
    hi = n_data if s is None else min(n_data, len(s) - int(window) + 1)
    if hi < 1:
        return np.empty(0, dtype=int), None
    idx = np.random.default_rng(seed).integers(0, hi, n)
    return idx, None if s is None else input_windows(s, idx, int(window), time_first=True)


def input_series(model, data, n_steps: int, what: str = "test split") -> np.ndarray | None:
    """The external inputs (n_steps, K) of a free run of ``model`` that starts at ``data``'s first sample:
    ``data``'s inputs, continued by :func:`continue_periodic` when ``n_steps`` exceeds them; None for an
    autonomous model. Raises a one-line InputError when they cannot cover ``n_steps``."""
    s = model_inputs(model, data, what=f"the {what}")
    if s is None:
        return None
    out = continue_periodic(s, int(n_steps))
    if out is None:
        raise InputError(f"T_gen = {n_steps} steps is longer than the {len(s)} steps of external inputs in the {what}, "
                         f"and they are not a periodic forcing that can be continued; use --t-gen {len(s)} or "
                         f"less (EvalConfig(t_gen=...)), or give longer inputs")
    return out
