"""What a figure shows of a recording with many channels (issue 22, part 6): pure NumPy choices, drawn by
:mod:`dsrecon.report`.

- :func:`principal_projection`: the true data's leading principal components, and the generated run projected on
  the *same* axes (its own components would rotate with every model, and hide a run that fills the wrong
  directions).
- :func:`chosen_channels`: a few channels to show as time series: the one that loads most on each leading
  principal component, so the panels show different motions, not four copies of one.
- :func:`shared_limits`: one range for the true and the generated panel, from the true data (with a margin), so a
  shrunken or inflated free run looks so instead of being rescaled to fill its panel.
- :func:`display_name`: a dataset's name for a title: a card's name, or a file's name without its folders.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

MANY_CHANNELS = 6   # above this, figures show principal components and a few chosen channels, not one panel each


def principal_projection(true: np.ndarray, gen: np.ndarray, k: int = 3):
    """(true (T, k), generated (T', k), labels): both series projected on the top-``k`` principal directions of
    ``true`` (centred on its mean; the generated run on the same centre and axes); labels say each component's
    share of the true data's variance. Non-finite generated rows stay non-finite."""
    true = np.asarray(true, dtype=float)
    mean = true.mean(axis=0)
    _, s, vt = np.linalg.svd(true - mean, full_matrices=False)
    k = min(k, vt.shape[0])
    share = s[:k] ** 2 / max(float(np.sum(s ** 2)), 1e-300)
    labels = [f"PC{i + 1} ({100 * share[i]:.0f} % of the variance)" for i in range(k)]
    return (true - mean) @ vt[:k].T, (np.asarray(gen, dtype=float) - mean) @ vt[:k].T, labels


def chosen_channels(true: np.ndarray, k: int = 4) -> list[int]:
    """Up to ``k`` distinct channels: for each leading principal component of ``true`` (centred, in its own units,
    as the attractor's projection), the channel with the largest absolute loading not chosen yet; in channel
    order. (Standardised, a recording's many quiet channels would weigh as much as its few active ones.)"""
    true = np.asarray(true, dtype=float)
    _, _, vt = np.linalg.svd(true - true.mean(0), full_matrices=False)
    chosen: list[int] = []
    for row in vt:
        for c in np.argsort(-np.abs(row)):
            if int(c) not in chosen:
                chosen.append(int(c))
                break
        if len(chosen) == min(k, true.shape[1]):
            break
    return sorted(chosen)


def shared_limits(true: np.ndarray, margin: float = 0.25) -> list[tuple[float, float]]:
    """Per column of ``true``: its range widened by ``margin`` of itself on each side, for both panels."""
    true = np.asarray(true, dtype=float)
    lo, hi = np.nanmin(true, axis=0), np.nanmax(true, axis=0)
    pad = margin * np.where(hi > lo, hi - lo, 1.0)
    return [(float(a), float(b)) for a, b in zip(lo - pad, hi + pad)]


def display_name(name) -> str:
    """A dataset's name for a figure title: a file's name (``/home/me/rec.npy`` -> ``rec.npy``), a card's as is."""
    text = str(name)
    return Path(text).name if ("/" in text or "\\" in text) else text
