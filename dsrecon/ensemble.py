"""Ensembles: K members of one architecture trained in one pass by :func:`dsrecon.train.train_loop`.

Seeds matter more than most settings (D_stsp of one configuration ranged 0.145-1.24 across seeds), and
small models are bound by per-operation overhead, not arithmetic: K members whose parameters are stacked
along a leading member axis run every time step as one batched matmul instead of K small ones.

How (docs/ensembles.md):

- :class:`Ensemble` holds K ordinary models (``members``, e.g. ``PLRNN(seed=s + k)``); each keeps its own
  parameters as leaves, so each gets its own Adam (exactly K separate optimisers: own step count, own
  learning rate after a divergence recovery) and its own gradient-norm clip.
- Once per training step :meth:`Ensemble.stacked` builds a view of member 0 whose parameters are the
  members' stacked (differentiable ``torch.stack``, so gradients flow back to every member's leaves).
  The architecture's own ``step``/``observe``/``force`` run on it unchanged: they use ``.mT`` and
  broadcasting, so a state (K, B, M) meets weights (K, M, M) in one batched matmul and vectors stored as
  (K, 1, M). One update rule per architecture stays in its own file (STYLE §1, §3).
- Member k samples its batches with its own generator seeded ``seed + k`` and is initialised with
  ``seed + k``: exactly what a single run with that seed does, so per-member results equal K separate
  runs up to float rounding (the batched matmul rounds differently from K small ones; tests/test_ensemble.py).

Supported: PLRNN, shPLRNN, RNN and LSTM (architectures whose update rule broadcasts over a leading member
axis; the LSTM's state [h, c] is one tensor); every training method; no external inputs and no gradient
flossing (refused in one line).
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .config import MEMORY_SHARE, host_available_bytes
from .errors import ConfigError, DataError
from .models import LSTM, PLRNN, RNN, ShallowPLRNN
from .score import median_mad

SUPPORTED = (PLRNN, ShallowPLRNN, RNN, LSTM)
MAX_MEMBERS = 4096   # a bound on --ensemble beyond any memory estimate (one Adam per member)


def _supported_names() -> str:
    return ", ".join(c.__name__ for c in SUPPORTED)


class Ensemble(nn.Module):
    """K members of one architecture, trained together by :func:`dsrecon.train.train_loop` (final class).

    ``Ensemble(model, k)``: ``k`` members rebuilt from ``model.hparams`` with seeds ``seed, seed + 1, ...,
    seed + k - 1`` (``seed`` = the model's); ``Ensemble([m0, m1, ...])``: the given models, which must share
    the architecture and every hyperparameter but the seed.
    Attributes: ``members`` (nn.ModuleList), ``obs_dim``, ``latent_dim``, ``input_dim`` (those of every member).
    Raises: ConfigError for an unsupported architecture, a driven model (input_dim > 0), k < 1, or members
      that differ in shape or settings.
    Pitfall: the ensemble is not itself a :class:`~dsrecon.models.base.Model` for generation or Lyapunov
      spectra; use a member (``ens.members[k]``), e.g. the one :func:`dsrecon.fit` keeps as the best.
    """

    def __init__(self, model, k: int | None = None):
        super().__init__()
        if isinstance(model, (list, tuple)):
            members = list(model)
        else:
            if k is None or isinstance(k, bool) or int(k) != k or k < 1:
                raise ConfigError(f"ensemble size must be a positive integer, got {k!r}")
            if int(k) > MAX_MEMBERS:
                raise ConfigError(f"ensemble size {k} exceeds {MAX_MEMBERS} members; use at most {MAX_MEMBERS}")
            check_supported(model)
            seed = int(model.hparams.get("seed", 0))
            members = [type(model)(**{**model.hparams, "seed": seed + i}) for i in range(int(k))]
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        first = members[0]
        check_supported(first)
        same = {k_: v for k_, v in first.hparams.items() if k_ != "seed"}
        for m in members[1:]:
            if type(m) is not type(first) or {k_: v for k_, v in m.hparams.items() if k_ != "seed"} != same:
                raise ConfigError("ensemble members must share the architecture and every hyperparameter but the "
                                  f"seed; got {type(first).__name__}({same}) and {type(m).__name__}")
        self.members = nn.ModuleList(members)
        self.obs_dim, self.latent_dim, self.input_dim = first.obs_dim, first.latent_dim, 0
        self.hparams = dict(first.hparams)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def seeds(self) -> list[int]:
        return [int(m.hparams.get("seed", 0)) for m in self.members]

    def stacked(self, indices=None) -> nn.Module:
        """A view of member 0 whose parameters are the members' stacked along a leading axis (K, ...),
        vectors as (K, 1, D) so they broadcast over the batch; buffers (equal in every member) are member 0's.
        ``indices``: only these members, in this order (those still training: a member dropped by successive
        halving or stopped early costs nothing after that; None: all).

        Built once per training step: ``torch.stack`` is differentiable, so a loss on the view's outputs
        back-propagates into every member's own parameters (and their hooks, e.g. the PLRNN's off-diagonal
        mask of W, run as usual). The view's methods are the architecture's own: step (K, B, M) -> (K, B, M).
        """
        first = self.members[0]
        view = copy.copy(first)   # shares member 0's module dicts; the stacked tensors shadow its parameters
        chosen = list(self.members) if indices is None else [self.members[k] for k in indices]
        for name, _ in first.named_parameters(recurse=False):
            t = torch.stack([getattr(m, name) for m in chosen])
            # instance attributes win over nn.Module.__getattr__'s parameter lookup, and bypassing
            # nn.Module.__setattr__ leaves member 0's registered parameters untouched
            object.__setattr__(view, name, t.unsqueeze(1) if t.dim() == 2 else t)
        return view


def sampling_seeds(ens: Ensemble, seed: int) -> list[int]:
    """The seeds of the members' sampling generators: ``seed + (s_k - s_0)``, s_k member k's model seed.

    For ``Ensemble(model, K)`` these are ``seed, ..., seed + K - 1``, as before; for given members (a sweep's
    job of runs that differ by seed and τ, e.g. seeds 0, 0, 1, 1 with ``seed = 0``) each member samples with
    its own run's seed, so it draws exactly the batches of its single run."""
    first = ens.seeds[0]
    return [int(seed) + s - first for s in ens.seeds]


def check_supported(model) -> None:
    """One-line ConfigError for a model an ensemble cannot batch (architecture, external inputs, submodules)."""
    if not isinstance(model, SUPPORTED):
        raise ConfigError(f"ensembles support {_supported_names()} (models whose update rule broadcasts over a "
                          f"member axis); {type(model).__name__} is not batched: train its seeds as separate runs")
    if int(getattr(model, "input_dim", 0) or 0):
        raise ConfigError("ensembles support autonomous models only (input_dim = 0); train a driven model's seeds "
                          "as separate runs")
    if any(True for _ in model.children()):
        raise ConfigError(f"ensembles need a model without submodules; {type(model).__name__} has some")


def check_config(cfg) -> None:
    """One-line ConfigError for training settings an ensemble does not support (flossing)."""
    if cfg.floss_k:
        raise ConfigError("ensembles do not support gradient flossing (--floss); train flossed seeds as separate "
                          "runs, or drop --floss")


def member_bytes(model, cfg) -> int:
    """Estimated memory of one member's training (bytes): parameters with gradient, Adam's two moments and
    the kept copies (last good state with its optimiser, best state: ~8 copies), plus the activations kept for
    back-propagation, ~6 tensors of the state size M (and 3 of a hidden width L) per time step and sample."""
    n_params = sum(p.numel() for p in model.parameters())
    width = 6 * model.latent_dim + 3 * int(getattr(model, "hidden_dim", 0) or 0)
    return 4 * (8 * n_params + (cfg.seq_len + 1) * cfg.batch_size * width)


def available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` (bytes): CUDA's free memory, MemAvailable of /proc/meminfo on the CPU;
    None where it cannot be read."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return host_available_bytes()


def check_memory(model, k: int, cfg, device: torch.device, flag: str = "--ensemble") -> None:
    """One-line ConfigError, before anything is allocated, when ``k`` members of ``model`` need more than
    80 % of the device's free memory (estimated from the shapes by :func:`member_bytes`)."""
    per = member_bytes(model, cfg)
    free = available_bytes(device)
    if free is None:
        return
    if k * per > MEMORY_SHARE * free:
        fit = max(0, int(MEMORY_SHARE * free // per))
        raise ConfigError(f"{flag} {k} needs about {k * per / 2**30:.1f} GiB ({per / 2**20:.1f} MiB per member, "
                          f"estimated from the shapes), but {device.type} has {free / 2**30:.1f} GiB free; "
                          f"use {flag} {fit} or fewer (or a smaller batch_size or seq_len)")


def check_checkpoint(ens: Ensemble, ck: dict, path) -> None:
    """One-line DataError when a checkpoint does not hold this ensemble (another size or architecture)."""
    try:
        mem = ck["members"]
        if len(mem) != len(ens):
            raise ValueError
        for m, c in zip(ens.members, mem):
            m.load_state_dict(c["best_state"])
            m.load_state_dict(c["model"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError):
        raise DataError(f"{path} does not hold an ensemble of {len(ens)} {type(ens.members[0]).__name__} members "
                        f"(another size or architecture, or a single run); resume with the run's own settings, or "
                        f"start again with --overwrite") from None


def halving_survivors(scores: dict) -> list[int]:
    """The members that go on after a rung of successive halving: the better half, rounded up, of ``scores``
    ({member: its best held-out validation D_stsp so far}; lower is better, inf last, ties to the lower index)."""
    order = sorted(scores, key=lambda k: (scores[k] if math.isfinite(scores[k]) else math.inf, k))
    return sorted(order[: math.ceil(len(order) / 2)])


PER_MEMBER = ("loss", "lr", "alpha", "val_d_stsp")   # an ensemble history's per-step entries: lists over members
MEMBER_FINAL = ("best_step", "best_val_d_stsp", "status")


def member_history(history: dict, k: int) -> dict:
    """Member k's history out of an ensemble's (whose per-step entries are lists over the members, None where
    member k was not training: dropped or stopped; those steps are left out of its history)."""
    out = {key: (v[k] if key in MEMBER_FINAL else v) for key, v in history.items() if key not in PER_MEMBER}
    for steps, keys in (("step", ("loss", "lr", "alpha")), ("val_step", ("val_d_stsp",))):
        kept = [i for i, e in enumerate(history.get(keys[0], [])) if e[k] is not None]
        out[steps] = [history[steps][i] for i in kept]
        for key in keys:
            if key in history:
                v = history[key]
                out[key] = [v[i][k] for i in kept] if len(v) == len(history[steps]) else \
                    [e[k] for e in v if e[k] is not None]
    return out


def best_member(result, failures=None) -> int:
    """Index of the member kept as the run's model: the fewest ``failures`` (one count per member: its long free
    runs on held-out data that collapsed or diverged, :func:`dsrecon.validation.long_run_failures`; None: not
    counted), then the lowest held-out validation D_stsp, then the lowest final training loss (runs without
    validation), then the lowest index."""
    scores = result.history["best_val_d_stsp"]
    losses = [(m.history["loss"] or [math.inf])[-1] for m in result.members]
    failures = [0] * len(scores) if failures is None else list(failures)
    key = [(f, s if math.isfinite(s) else math.inf, l if math.isfinite(l) else math.inf, k)
           for k, (f, s, l) in enumerate(zip(failures, scores, losses))]
    return min(key)[3]


def member_summary(values) -> dict:
    """{"median", "mad", "n"} over the members' finite values (:func:`dsrecon.score.median_mad`: MAD = median
    |v - median|, unscaled, the robust spread leaderboards report over seeds); None where no value is finite
    (a diverged member's inf is left out here: metrics.json lists it per member)."""
    v = [float(x) for x in values if x is not None and math.isfinite(x)]
    if not v:
        return {"median": None, "mad": None, "n": 0}
    med, mad = median_mad(v)
    return {"median": med, "mad": mad, "n": len(v)}
