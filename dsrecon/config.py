"""Every setting of a run as frozen dataclasses with a default and a one-line reason.

``RunConfig.to_dict()`` is what ``config.json`` holds; ``RunConfig.from_dict`` rebuilds it and rejects
unknown keys with a ConfigError that lists the valid ones. The CLI only overrides fields.

Every field declares its allowed values next to its default (``_in(default, ge=1)``: a :class:`Range`);
``__post_init__`` checks the type, that a float is finite, and the range, so the CLI, ``--set``, sweeps and
the Python API all refuse a bad value with one line naming it as ``section.key`` ("train.lr must be > 0,
got -1"). Limits that depend on the data (``seq_len`` and ``batch_size`` against the training split) are
checked by :meth:`TrainConfig.check_series` once the data are loaded.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field, fields

from .errors import ConfigError


FORCINGS = ("phase", "input")  # driven cards: the forcing observed as cos/sin channels, or an input
MODEL_KINDS = ("plrnn", "shplrnn", "rnn", "lstm", "gru")
RNN_INITS = ("gaussian", "orthogonal")   # models.rnn.INITS
FORCE_CELLS = ("keep", "zero")           # models.lstm.FORCE_CELL
METHODS = ("stf", "gtf", "id-tf", "bptt-clip", "window")
OPTIMIZERS = ("adam", "radam")
DEVICES = ("auto", "cpu", "cuda", "mps")
ADAPTIVE_ALPHAS = ("auto", "auto-norm")   # GTF alpha adapted from the model (docs/training.md)
SEED_LIMIT = 2**32   # seeds in [0, 2^32): numpy's legacy range; torch takes [0, 2^64), but seeds get offsets added
MAX_BATCH_STEPS = 10**7   # batch_size x (seq_len + 1): each step keeps M latents for backprop (M = 100: 4 GB per tensor)
MAX_STEPS = 10**7   # optimiser (and flossing) steps: the default 10^4 is ~2 min of one core, so 10^7 is ~1.4 days
# runs a sweep may hold unless raised (--max-runs, load_sweep(max_runs=...)): counted from its lists' lengths before
# anything is expanded; 10^4 runs of the default 2-minute fit are ~2 weeks of one core, and a 10^6-run grid's specs
# alone took 880 MB and growing after 60 s (issue 26)
MAX_RUNS = 10_000
OVERSUBSCRIBE = 4   # torch threads (and sweep workers x threads) at most this many per core: beyond, they only stall


@dataclass(frozen=True)
class Range:
    """The allowed values of one numeric config field: bounds (``gt``/``ge``/``lt``/``le``), and ``choices``
    for the strings a numeric field also takes (``tau = "auto"``)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple = ()

    def text(self) -> str:
        lo = f"> {_num(self.gt)}" if self.gt is not None else f">= {_num(self.ge)}" if self.ge is not None else ""
        hi = f"< {_num(self.lt)}" if self.lt is not None else f"<= {_num(self.le)}" if self.le is not None else ""
        if lo and hi:
            left = "(" if self.gt is not None else "["
            right = ")" if self.lt is not None else "]"
            lo_v = self.gt if self.gt is not None else self.ge
            hi_v = self.lt if self.lt is not None else self.le
            span = f"in {left}{_num(lo_v)}, {_num(hi_v)}{right}"
        else:
            span = lo or hi
        return span

    def holds(self, v) -> bool:
        return ((self.gt is None or v > self.gt) and (self.ge is None or v >= self.ge)
                and (self.lt is None or v < self.lt) and (self.le is None or v <= self.le))


def _num(v) -> str:
    if v == SEED_LIMIT:
        return "2^32"
    return f"{v:g}" if isinstance(v, float) else f"{v:_}".replace("_", ",") if abs(v) >= 10**4 else str(v)


MAX_NOISE = 10.0   # noise std as a fraction of the signal's: beyond 10x its spread nothing is left to reconstruct


def _in(default, **bounds):
    """A dataclass field with ``default`` whose values must lie in ``Range(**bounds)``."""
    return field(default=default, metadata={"range": Range(**bounds)})


@dataclass(frozen=True)
class DataConfig:
    name: str = "lorenz"          # a registered dataset (see `dsrecon.available()`), a user card or a file path
    seed: int | None = _in(None, ge=0, lt=SEED_LIMIT)  # None: the card's seed; another value gives an independent orbit
    noise: float | None = _in(None, ge=0, le=MAX_NOISE)  # observation noise (fraction of each channel's std);
    #                               None: the card's
    forcing: str | None = None    # driven cards (duffing): "phase" (observed cos/sin) or "input"; None: the card's
    columns: list | None = None   # files: the channels to use (names or indices); None: every numeric column
    dt: float | None = _in(None, gt=0)  # files: sampling interval; None: from the time column, else 1 per sample
    embed: str | None = None      # files: "auto" delay-embeds (mutual information + false nearest neighbours)
    interpolate: bool = False     # files: fill NaNs and gaps linearly instead of refusing them
    data_dir: str | None = None   # downloads (jena, eeg): where the recordings are looked for and stored

    def __post_init__(self):
        _check_fields(self)
        if not self.name.strip():
            raise ConfigError("data.name must name a dataset or a file, got ''")
        if self.forcing is not None:
            _one_of("data.forcing", self.forcing, FORCINGS)
        if self.embed is not None:
            _one_of("data.embed", self.embed, ("auto",))
        if self.columns is not None and not self.columns:
            raise ConfigError("data.columns must list at least one channel (or be null for every column), got []")
        if self.data_dir is not None and not self.data_dir.strip():
            raise ConfigError("data.data_dir must be a folder (or null for the default), got ''")

    def load_options(self) -> dict:
        """The keyword arguments of :func:`dsrecon.data.load` that differ from its defaults."""
        opts = {k: getattr(self, k) for k in ("noise", "forcing", "columns", "dt", "embed", "data_dir")}
        opts = {k: v for k, v in opts.items() if v is not None}
        if self.interpolate:
            opts["interpolate"] = True
        return opts


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "shplrnn"         # architecture: plrnn | shplrnn | rnn | lstm | gru (docs/models.md); the clipped
    #                               shPLRNN stays bounded where unclipped models diverged (EEG; docs/defaults.md "Real
    #                               recordings"); on clean Lorenz the PLRNN scores ~2x better D_stsp
    latent_dim: int | None = _in(None, ge=1, le=10_000)  # units M (<= 10^4: W has M^2 weights); None -> from the
    #                               data: shPLRNN max(N, 10) (model_sizes), others the architecture's (PLRNN max(100, N))
    a_init: float = _in(0.9, ge=-1, le=1)  # PLRNN/shPLRNN: initial diagonal A: near-identity map (|a| > 1 expands)
    w_scale: float = _in(0.1, ge=0, le=100)  # PLRNN: initial off-diagonal W std x sqrt(M)
    hidden_dim: int | None = _in(None, ge=1, le=100_000)  # shPLRNN: width L of the hidden ReLU layer; None: 30 M
    #                               (model_sizes; Hess et al. 2023 use L of tens of M)
    clipped: bool | None = None   # shPLRNN: the clipped, bounded variant (Hess et al. 2023); None: clipped (unclipped
    #                               PLRNNs diverged in free runs on the EEG recording, docs/defaults.md "Real recordings")
    g: float | None = _in(None, ge=0, le=100)  # RNN: recurrent gain, W ~ N(0, g^2/M); None -> the model's default
    init: str | None = None       # RNN: "gaussian" or "orthogonal" initial W (docs/models.md); None -> the model's
    forget_bias: float | None = _in(None, ge=-100, le=100)  # LSTM: initial forget-gate bias; None -> the model's (1)
    force_cell: str | None = None  # LSTM: "keep" or "zero", the cell state at a forcing step; None -> the model's
    ridge: float = _in(0.0, ge=0)  # 0: pseudo-inverse of B for forcing; > 0: ridge inverse
    keep_unobserved: bool = False  # True: forcing keeps the model's unobserved latents; stalled training
    learn_observation: bool = True  # learn B; False fixes x = first N latents (identity forcing; --method id-tf)

    def __post_init__(self):
        _check_fields(self)
        _one_of("model", self.kind, MODEL_KINDS)
        if self.init is not None:
            _one_of("model.init", self.init, RNN_INITS)
        if self.force_cell is not None:
            _one_of("model.force_cell", self.force_cell, FORCE_CELLS)


SHPLRNN_MIN_LATENT = 10      # shPLRNN latents for data of fewer channels: on Lorenz (N = 3, seed 0, 10 000 gtf steps)
#                              M = 3 / 6 / 10 gave D_stsp 0.242 / 0.087 / 0.039 (floor 0.046; docs/defaults.md)
SHPLRNN_HIDDEN_PER_LATENT = 30   # shPLRNN hidden units per latent (L = 30 M: 90 for Lorenz, 300 for the 10-d EEG)


SHPLRNN_CLIPPED = True       # the shPLRNN of a fit is the clipped one unless model.clipped = false


SHPLRNN_MAX_LATENT = 16     # at most this many latents chosen from data of many channels: M L = 30 M^2 sets a step's cost;
#                              16 as a published reconstruction of a 64-channel EEG (issue 22; docs/defaults.md)


def model_sizes(cfg: ModelConfig, obs_dim: int, data_dim=None) -> tuple[int | None, int | None]:
    """(latent_dim, hidden_dim) that a model of ``cfg`` gets for data of ``obs_dim`` channels: the config's own
    values where given; for the shPLRNN, None is chosen from the data, L = 30 M (Hess et al. 2023: L of tens of M),

    - without ``data_dim``: M = max(N, 10) (Hess et al.'s at least as many latents as observations; below 10 latents
      Lorenz's attractor came out measurably worse; docs/defaults.md, "Real recordings");
    - with ``data_dim`` d (an int, or :func:`dsrecon.dimension.linear_dimension`: the principal components holding
      99 % of the standardised variance): M = max(10, min(N, d, 16)), the same up to 10 channels (Lorenz: 10,
      L = 300), and for more no more latents than the data have dimensions, nor than ``SHPLRNN_MAX_LATENT``, with an
      affine observation of M < N latents (:mod:`dsrecon.models.observation`): 64 channels must not cost 64^2 / 10^2
      times 3 (issue 22). PCA, not the correlation dimension: milliseconds for 64 x 10^4, and it gave 3 for 3
      sources mixed into 64 channels (5 % noise) and 21 for 24; D_2 took seconds, gave 2.1 and found no scaling
      region for 24 (docs/defaults.md, "Sizes from the data"); FNN (:mod:`dsrecon.embedding`) embeds one channel.

    For the other architectures None stays None (the class's default, PLRNN max(100, N))."""
    M, L = cfg.latent_dim, cfg.hidden_dim
    if cfg.kind == "shplrnn":
        if M is None:
            N = int(obs_dim)
            d = None if data_dim is None else int(getattr(data_dim, "value", data_dim))
            M = max(N, SHPLRNN_MIN_LATENT) if d is None else \
                max(SHPLRNN_MIN_LATENT, min(N, d, SHPLRNN_MAX_LATENT))
        L = SHPLRNN_HIDDEN_PER_LATENT * M if L is None else L
    return M, L


def sizes_note(cfg: ModelConfig, obs_dim: int, data_dim=None) -> str:
    """One line saying where :func:`model_sizes` took the model's sizes from (for the fit's log); ``data_dim`` as
    there (the estimate's own description is quoted when it has one)."""
    M, L = model_sizes(cfg, obs_dim, data_dim)
    N = int(obs_dim)
    if M is None:
        return f"model sizes: the {cfg.kind}'s own defaults for {N} channels"
    if cfg.latent_dim is not None:
        why = f"latent_dim M = {M} set by model.latent_dim"
    elif data_dim is None:
        why = f"latent_dim M = max(N, {SHPLRNN_MIN_LATENT}) = {M} for {N} channels"
    else:
        d = int(getattr(data_dim, "value", data_dim))
        said = "" if isinstance(data_dim, int) else f" ({data_dim})"
        why = (f"latent_dim M = max({SHPLRNN_MIN_LATENT}, min(N = {N}, d = {d}, {SHPLRNN_MAX_LATENT})) = {M} from "
               f"the data's linear dimension d{said}")
    hid = f"hidden_dim L = {L} set by model.hidden_dim" if cfg.hidden_dim is not None else \
        f"hidden_dim L = {SHPLRNN_HIDDEN_PER_LATENT} M = {L}"
    obs = f"; an affine observation of {M} latents < {N} channels (forcing by least squares)" if M < N else ""
    return f"model sizes: {why}, {hid}{obs}"


def seq_len_for(method: str) -> int:
    """The default subsequence length of ``method``: 50 steps for gtf (its gradient fades like (1 - alpha)^t: after
    50 steps at alpha 0.15 by 3e-4, so longer windows cost time and teach nothing; 4x cheaper per step than 200),
    200 for the others (several forcing intervals at tau ~ 46, the sparse-forcing paper's setting)."""
    return 50 if method == "gtf" else 200


AUTO_CANDIDATES = 4          # members of an "auto" ensemble on a short recording
SHORT_RECORDING = 1000       # a training split spanning fewer decorrelation times than this is a short recording


def ensemble_for(n_train: int, decorrelation_steps: float) -> int:
    """The members that ``train.ensemble = "auto"`` trains: ``AUTO_CANDIDATES`` = 4 candidates (seeds seed..seed+3,
    the best by held-out validation kept) when the training split spans fewer than ``SHORT_RECORDING`` = 1000
    decorrelation times (``n_train / decorrelation_steps``), one model otherwise. Why: on a short recording the
    validation segment holds few independent stretches and single seeds differ most (the 5-d weather embedding,
    54 decorrelation times: of 4 seeds one collapsed to a fixed point, 3 did not; docs/defaults.md "Real
    recordings"), while the simulated cards (Lorenz: 8000 decorrelation times) keep the cost of one model."""
    return AUTO_CANDIDATES if n_train < SHORT_RECORDING * max(float(decorrelation_steps), 1.0) else 1


@dataclass(frozen=True)
class TrainConfig:
    method: str = "gtf"           # stf | gtf | id-tf | bptt-clip | window (docs/training.md); gtf beat stf on Lorenz and
    #                               the real recordings at the same budget (docs/defaults.md, "Real recordings")
    tau: str | int = _in("auto", ge=1, choices=("auto",))  # forcing interval in steps; "auto" = round(ln2 / lambda_max per step)
    gtf_alpha: str | float = _in(0.15, ge=0, le=1, choices=ADAPTIVE_ALPHAS)  # GTF alpha (best of 0.058-0.5 on Lorenz, docs/training.md); "auto" | "auto-norm" adapt it
    clip_norm: float = _in(1.0, gt=0)  # bptt-clip: gradient-norm clip ("How to train RNNs on chaotic data" §4.2: norm 1)
    optimizer: str = "adam"       # adam (the paper's) | radam (less sensitive to the first steps' lr)
    obs_noise: float = _in(0.0, ge=0, le=MAX_NOISE)  # std of Gaussian noise added to the forcing signal (not the targets); regularises
    latent_reg: float = _in(0.0, ge=0)  # weight of mean(z^2) of the latent states in the loss; keeps free runs bounded
    early_stop: int = _in(10, ge=0)  # patience: stop after this many validations without improvement (0: never); 10:
    #                               Lorenz's validation improved again 10 validations after a best (docs/defaults.md)
    floss_k: int = _in(0, ge=0, le=10_000)  # gradient flossing: number of exponents pushed to floss_target (0: off; <= M)
    floss_target: float = _in(0.0, ge=-100, le=100)  # target of the flossed exponents, per step ("Gradient Flossing" Eq. 4: 0)
    prefloss_epochs: int = _in(0, ge=0, le=MAX_STEPS)  # flossing updates before training ("Gradient Flossing" §6: 500)
    floss_every: int = _in(0, ge=0)  # training steps between flossing episodes (0: none during training)
    floss_epochs: int = _in(100, ge=1, le=MAX_STEPS)  # flossing updates per episode during training
    floss_weight: float = _in(0.0, ge=0)  # > 0: add weight x flossing loss to every floss_every-th training step instead of episodes
    floss_steps: int = _in(100, ge=1, le=10**6)  # T_f: steps of the differentiable QR estimate (must bridge the time scales to learn)
    floss_qr_every: int = _in(1, ge=1)  # t_ONS of the flossing estimate ("Gradient Flossing" App. J); <= floss_steps
    floss_lr: float = _in(1e-3, gt=0)  # Adam learning rate of the flossing updates
    steps: int = _in(10000, ge=1, le=MAX_STEPS)  # optimiser steps (deterministic); gtf, 50-step windows: ~2 min of one idle core
    time_budget: float | None = _in(None, gt=0)  # seconds; stop early when exceeded (then results depend on speed)
    batch_size: int = _in(32, ge=1)  # subsequences per step; 32 trained more steadily than 16 (docs/defaults.md)
    seq_len: int | None = _in(None, ge=1)  # steps per subsequence; None: seq_len_for(method) (gtf 50, others 200)
    tau_anneal: float = _in(0.0, ge=0, le=1)  # fraction of the steps over which tau grows geometrically from 1 to tau
    lr: float = _in(1e-3, gt=0)   # Adam, as in "How to train RNNs on chaotic data" §4.2
    lr_end: float = _in(1e-5, gt=0)  # exponential decay to this value: smoother late training (docs/defaults.md)
    seed: int = _in(0, ge=0, lt=SEED_LIMIT)  # batch sampling and model initialisation
    ensemble: int | str = _in("auto", ge=1, le=4096, choices=("auto",))  # members trained as one batched model, seeds
    #                               seed..seed+K-1; the best by held-out validation is kept (docs/ensembles.md); "auto":
    #                               ensemble_for(the data) (4 candidates on a short recording, else 1)
    device: str = "auto"          # auto | cpu | cuda | mps
    checkpoint_every: int = _in(500, ge=1)  # steps between checkpoints/last.pt
    validate_every: int = _in(500, ge=0)  # steps between short free-run validations (keeps the best model; 0: off)
    halving: int = _in(2, ge=0)  # validations per rung of successive halving among a fit's candidates (the worse half
    #                               by validation stops training; 0: every member trains to the end; docs/ensembles.md)
    val_fraction: float = _in(0.1, ge=0, le=0.5)  # last share of the training split held out for validation:
    #                               the best model is chosen on data it was not fitted to (0: validate on training data)
    val_len: int = _in(20000, ge=1, le=10**7)  # steps of each validation free run (long: late collapses must show)
    val_runs: int = _in(4, ge=1, le=1000)  # initial conditions of the validation free runs
    max_recoveries: int = _in(3, ge=0)  # non-finite losses survived (restore + halve lr) before giving up
    explode_loss: float = _in(1e4, gt=0)  # a loss above this (on standardized data) counts as diverged, like a non-finite one

    def __post_init__(self):
        for name in ("gtf_alpha", "tau", "ensemble"):   # the CLI and --set pass numbers as strings
            v = getattr(self, name)
            if isinstance(v, str) and v not in _range(self, name).choices:
                try:
                    f = float(v)
                except ValueError:
                    f = None
                if f is not None:
                    object.__setattr__(self, name, f if name == "gtf_alpha" else _int_or(f))
        if isinstance(self.ensemble, float) and self.ensemble == int(self.ensemble):
            object.__setattr__(self, "ensemble", int(self.ensemble))
        if isinstance(self.gtf_alpha, int):
            object.__setattr__(self, "gtf_alpha", float(self.gtf_alpha))
        _check_fields(self)
        _one_of("method", self.method, METHODS)
        if self.seq_len is None:   # the method's own default (seq_len_for); stored resolved in config.json
            object.__setattr__(self, "seq_len", seq_len_for(self.method))
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        _one_of("device", self.device, DEVICES)
        if self.floss_qr_every > self.floss_steps:
            raise ConfigError(f"train.floss_qr_every ({self.floss_qr_every}) must be <= train.floss_steps "
                              f"({self.floss_steps}): no QR step would fall inside the flossing estimate")
        if self.batch_size * (self.seq_len + 1) > MAX_BATCH_STEPS:
            raise ConfigError(f"train.batch_size x (train.seq_len + 1) = {self.batch_size} x {self.seq_len + 1} steps "
                              f"per batch exceeds {_num(MAX_BATCH_STEPS)} (each keeps M latents for backprop: tens of "
                              f"GB); lower train.batch_size or train.seq_len")
        if self.floss_k == 0:
            defaults = {f.name: f.default for f in fields(self)}
            given = [k for k in ("prefloss_epochs", "floss_every", "floss_weight", "floss_target", "floss_epochs",
                                 "floss_steps", "floss_qr_every", "floss_lr") if getattr(self, k) != defaults[k]]
            if given:
                raise ConfigError(f"flossing settings were given ({', '.join(given)}) but floss_k = 0; set the "
                                  "number of exponents to floss (--floss K), or drop them")

    def check_series(self, n_steps: int, what: str = "the training split") -> None:
        """ConfigError unless a series of ``n_steps`` can feed this config: ``seq_len + 2`` steps for one
        subsequence, at most as many subsequences per batch as it has distinct windows, and an explicit
        ``tau`` shorter than the series. Call it once the data are loaded, before anything is written."""
        n = int(n_steps)
        if n < self.seq_len + 2:
            raise ConfigError(f"train.seq_len = {self.seq_len} needs at least seq_len + 2 = {self.seq_len + 2} steps, "
                              f"but {what} has {n}; use train.seq_len <= {max(1, n - 2)}")
        windows = n - self.seq_len - 1
        if self.batch_size > windows:
            raise ConfigError(f"train.batch_size = {self.batch_size} exceeds the {windows} distinct windows of "
                              f"seq_len + 1 = {self.seq_len + 1} steps in {what} ({n} steps); use at most {windows}")
        if isinstance(self.tau, int) and self.tau >= n:
            raise ConfigError(f"train.tau = {self.tau} steps is not shorter than {what} ({n} steps): nothing would "
                              f"ever be forced again; use tau < {n} (the predictability time is usually tens of steps)")


@dataclass(frozen=True)
class EvalConfig:
    t_gen: int = _in(100_000, ge=1000, le=10**8)  # generated steps scored against the test split (>= 1000: the
    #                               spectra and histograms need that many; <= 10^8 fits memory)
    n_bins: int = _in(30, ge=2, le=1000)  # D_stsp bins per dimension (1 bin says nothing; n_bins^N cells are held)
    alpha: float = _in(1e-5, gt=0, le=1)  # D_stsp Laplace smoothing (a pseudo-probability per bin)
    sigma: float = _in(20.0, gt=0)  # D_H / PSC Gaussian smoothing (frequency bins)
    # the model's Lyapunov spectrum, one recipe for `dsrecon eval`, fit's scores and `dsrecon lyap RUN`
    # (evaluation.model_spectrum: QR from forced states of the test split)
    lyap_k: int = _in(5, ge=1, le=10_000)  # exponents (λ_1..λ_k; D_KY of these): enough for D_KY of 3-d attractors
    lyap_steps: int = _in(1000, ge=1, le=10**7)  # QR steps averaged (the standard error over starts is reported)
    lyap_transient: int = _in(200, ge=0, le=10**7)  # steps discarded first, so Q aligns with the leading directions
    lyap_qr_every: int = _in(5, ge=1, le=1000)  # steps between QR re-orthonormalisations (t_ONS; 5 is safe for k <= 5)
    lyap_n_init: int = _in(4, ge=1, le=1000)  # starts: forced states at random test samples (seeded)

    def __post_init__(self):
        _check_fields(self)
        if self.lyap_qr_every > self.lyap_steps:
            raise ConfigError(f"eval.lyap_qr_every ({self.lyap_qr_every}) must be <= eval.lyap_steps "
                              f"({self.lyap_steps}): no QR step would fall inside the spectrum's run")


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        m, t = self.model, self.train
        if m.latent_dim is not None and t.floss_k > m.latent_dim:
            raise ConfigError(f"train.floss_k = {t.floss_k} exceeds model.latent_dim = {m.latent_dim}: a model has "
                              f"as many Lyapunov exponents as units; floss at most {m.latent_dim}")

    def check_data(self, card: dict) -> None:
        """ConfigError for data options that the dataset's ``card`` (:func:`dsrecon.data.card`) would ignore:
        ``forcing`` on a card that is not driven (it has no ``[forcing]`` table)."""
        if self.data.forcing is not None and not card.get("forcing"):
            raise ConfigError(f"data.forcing = {self.data.forcing!r} does not apply to {card.get('name', self.data.name)!r}: "
                              f"it is not a driven system (forcing applies to cards with a [forcing] table, e.g. duffing); "
                              f"drop it")

    def check_series(self, n_steps: int, n_channels: int, what: str = "the training split") -> None:
        """The checks that need the loaded data, run once they are loaded and before anything is written:
        :meth:`TrainConfig.check_series` (``seq_len``, ``batch_size``, ``tau`` against ``n_steps``), and
        ``model.latent_dim`` at least ``n_channels`` under the identity observation (id-tf, or
        ``model.learn_observation = false``: each channel is written into its own latent unit); a learned observation
        takes fewer latents than channels (forcing by least squares, :mod:`dsrecon.models.observation`)."""
        self.train.check_series(n_steps, what)
        identity = self.train.method == "id-tf" or not self.model.learn_observation
        if identity and self.model.latent_dim is not None and self.model.latent_dim < int(n_channels):
            raise ConfigError(f"model.latent_dim = {self.model.latent_dim} is smaller than the number of channels "
                              f"({n_channels}) of {what}, but the identity observation (id-tf, learn_observation = "
                              f"false) writes each channel into its own latent; use model.latent_dim >= {n_channels}, "
                              f"or a learned observation")
        self.check_memory(n_channels)

    def check_memory(self, n_channels: int) -> None:
        """ConfigError when the free run of ``eval.t_gen`` steps that scores the model cannot fit this machine's
        free memory: the estimate of :func:`dsrecon.evaluation.check_batch_memory` (per step the float32
        observations and latents, and two float64 copies of the observations), with the fewest latents the
        model can have (``model_sizes``, else one per channel), so only a run that cannot fit is refused, before
        any training instead of after it."""
        n = int(n_channels)
        per_step = 4 * (n + max(model_sizes(self.model, n)[0] or n, n)) + 16 * n
        free = host_available_bytes()
        if free is not None and self.eval.t_gen * per_step > MEMORY_SHARE * free:
            most = int(MEMORY_SHARE * free // per_step)
            raise ConfigError(f"eval.t_gen = {self.eval.t_gen} generated steps need at least "
                              f"{self.eval.t_gen * per_step / 2**30:.1f} GiB, but this machine has {free / 2**30:.1f} "
                              f"GiB free; use eval.t_gen <= {most} (or free memory)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        parts = {f.name: f.type for f in fields(cls)}
        unknown = set(d) - set(parts)
        if unknown:
            raise ConfigError(f"unknown config section(s) {sorted(unknown)}; valid: {sorted(parts)}")
        kinds = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}
        return cls(**{k: _build(kinds[k], v, k) for k, v in d.items()})

    def replace(self, **sections) -> "RunConfig":
        return dataclasses.replace(self, **sections)

    def override(self, assignments) -> "RunConfig":
        """Apply ``section.key=value`` strings (the CLI's ``--set``); values are parsed as JSON when they
        can be (numbers, true/false, null, quoted strings), else taken as strings. The same key given twice
        with two values is refused: which one would win is no answer the user gave."""
        d = self.to_dict()
        seen: dict = {}   # key -> (the assignment, its value): one value per setting
        for item in assignments:
            key, sep, raw = str(item).partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise ConfigError(f"--set takes section.key=value (e.g. train.lr=3e-4), got {item!r}")
            if section not in d:
                raise ConfigError(f"unknown config section {section!r} in --set {item}; valid: {sorted(d)}")
            if name not in d[section]:
                raise ConfigError(f"unknown key {name!r} in [{section}] (--set {item}); valid keys: "
                                  f"{sorted(d[section])}")
            value = parse_value(raw)
            first = seen.setdefault(key.strip(), (item, value))
            if not _same(first[1], value):
                raise ConfigError(f"--set {first[0]} and --set {item} give {key.strip()} two values; give it once")
            d[section][name] = value
        given = {str(item).partition("=")[0].strip() for item in assignments}
        if ("train.method" in given and "train.seq_len" not in given
                and self.train.seq_len == seq_len_for(self.train.method)):
            d["train"]["seq_len"] = None   # a default length follows the new method (seq_len_for)
        try:
            return RunConfig.from_dict(d)
        except TypeError as err:
            raise ConfigError(f"invalid --set value: {err}") from None


def parse_value(raw: str):
    """A ``--set`` value: JSON where it parses (numbers, true/false, null, quoted strings), else the string."""
    import json

    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:   # numbers JSON does not spell: .5, 1., nan, inf (the dataclasses take no numbers as text)
        return float(raw)
    except ValueError:
        return str(raw).strip()


def _same(a, b) -> bool:
    """Whether two given values of one setting agree (7 and 7.0 do; true and 1 do not)."""
    both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return (a == b or both_nan) and isinstance(a, bool) == isinstance(b, bool)


_NONFINITE = ("inf", "infinity", "nan")
_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),),
          "list": (list, tuple)}


def _check_fields(obj) -> None:
    """Each field's value has one of the types its annotation names (bools are not numbers here), is finite
    if it is a number, and lies in the field's :class:`Range`; so a ``lr = "fast"`` or ``lr = -1`` fails with
    one line naming ``train.lr`` and its allowed values instead of deep inside torch. Numbers written as
    strings are not numbers (``TrainConfig(steps="5")`` is refused), except the spellings of inf and nan that config.json
    stores (JSON has no such numbers); integral floats for integer fields (``1e4``) are converted first."""
    section = type(obj).__name__.replace("Config", "").lower()
    for f in fields(obj):
        value = shown = getattr(obj, f.name)   # shown: as given (1e308, not its 309 digits as an integer)
        names = [t.strip() for t in str(f.type).split("|")]
        rng = f.metadata.get("range")
        numeric = "int" in names or "float" in names
        if isinstance(value, str) and numeric and "str" not in names and value.strip().lower().lstrip("+-") in _NONFINITE:
            value = float(value)   # config.json spells inf and nan as strings (JSON has none): read them back
        if isinstance(value, float) and "int" in names and "float" not in names and value.is_integer():
            value = int(value)
        object.__setattr__(obj, f.name, value)
        ok = any(isinstance(value, _TYPES.get(t, (object,))) and not (isinstance(value, bool) and t != "bool")
                 for t in names)
        key = f"{section}.{f.name}"
        if not ok:
            if rng is not None:
                raise ConfigError(f"{key} must be {_describe(names, rng)}, got {value!r}")
            raise ConfigError(f"{key} must be {' or '.join(names)}, got {value!r}")
        if rng is None or value is None or isinstance(value, bool):
            continue
        if isinstance(value, str):
            if rng.choices and value not in rng.choices:
                raise ConfigError(f"{key} must be {_describe(names, rng)}, got {value!r}")
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be {_describe(names, rng, finite=True)}, got {value!r}")
        if not rng.holds(value):
            raise ConfigError(f"{key} must be {_describe(names, rng)}, got {shown!r}")


def _describe(names, rng: Range, finite: bool = False) -> str:
    """'one of auto, auto-norm or a number in [0, 1]', 'auto or an integer >= 1', 'a finite number > 0'."""
    kind = "integer" if "int" in names and "float" not in names else "number"
    kind = f"a finite {kind}" if finite else "an integer" if kind == "integer" else "a number"
    span = f"{kind} {rng.text()}".strip()
    if span == "an integer >= 1":
        span = "a positive integer"
    elif rng.ge == 1 and rng.gt is None and rng.le is not None and kind == "an integer":   # "a positive integer <= 10"
        span = f"a positive integer <= {_num(rng.le)}"
    if not rng.choices:
        return span
    if len(rng.choices) == 1:
        return f"{rng.choices[0]} or {span}"
    return f"one of {', '.join(rng.choices)} or {span}"


MEMORY_SHARE = 0.8   # at most this share of the free memory may be planned for one run's tensors


def host_available_bytes() -> int | None:
    """Free memory of this machine (bytes): MemAvailable of /proc/meminfo, else the free pages; None where
    neither can be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_threads(n, what: str = "--threads") -> None:
    """ConfigError unless ``n`` torch threads fit this machine: at most ``OVERSUBSCRIBE`` per core (beyond that
    they only stall, and a million threads would exhaust the machine before any work)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"{what} must be a positive integer, got {n!r}")
    cores = os.cpu_count() or 1
    if n > OVERSUBSCRIBE * cores:
        raise ConfigError(f"{what} {n} exceeds this machine's limit of {OVERSUBSCRIBE * cores} threads "
                          f"({OVERSUBSCRIBE} per core, {cores} cores); use at most {OVERSUBSCRIBE * cores}")


def _range(obj, name: str) -> Range:
    return next(f.metadata["range"] for f in fields(obj) if f.name == name)


def _int_or(f: float):
    return int(f) if f.is_integer() else f


def _one_of(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; available: {', '.join(allowed)}")


def _build(kind, values: dict, section: str):
    valid = {f.name for f in fields(kind)}
    unknown = set(values) - valid
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in [{section}]; valid keys: {sorted(valid)}")
    return kind(**values)


def parse_tau(value) -> str | int:
    """'auto' or a positive integer number of steps; anything else is a ConfigError."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"--tau must be 'auto' or a positive integer number of steps, got {value!r}") from None
    if not f.is_integer() or f < 1:
        raise ConfigError(f"--tau must be 'auto' or a positive integer number of steps, got {value!r}")
    return int(f)


def parse_duration(value: str | float | None) -> float | None:
    """'90s', '3m', '1.5h' or a number of seconds -> seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", str(value))
        if not m:
            raise ConfigError(f"--time-budget must look like 90s, 3m or 1.5h, got {value!r}")
        seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if seconds <= 0:
        raise ConfigError(f"--time-budget must be positive, got {value!r}")
    return seconds
