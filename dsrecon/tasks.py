"""The delayed tasks of "Gradient Flossing" (Engelken, NeurIPS 2023) and the loop that trains an RNN on them.

Tasks (§6-7, App. H, Eq. 20; digest §7.5), each a stream of i.i.d. inputs x_t, t = 0..T-1, and a target
defined only where its delayed inputs exist (t >= d; the ``mask``):

- ``copy``:        y_t = x_{t-d} (App. H.1); x ~ U(0, 1), K = 1; MSE; input-blind MSE Var y = 1/12
- ``xor``:         y_t = |x_{t-d/2} - x_{t-d}| (Eq. 20); x ~ U(0, 1), K = 1; MSE; Var y = 1/18
- ``binary_xor``:  y_t = x_{t-d/2} XOR x_{t-d} (§7); fair Bernoulli {0, 1}, K = 1; cross-entropy; chance 50 %
- ``spatial_xor``: y_t = x¹_{t-d} XOR x²_{t-d} XOR x³_{t-d} (§7); three Bernoulli streams, K = 3;
  cross-entropy; chance 50 %

The temporal XOR needs d even (d/2 steps); Table 2 of the paper labels its columns x_{t-d}, x_{t-2d},
an erratum (digest §12 #3): we follow §7 and Eq. 20. No auxiliary signal shortens the credit-assignment
path (§7.1): the only way to y_t is to hold x_{t-d} for d steps.

Training (:func:`train_task`): the RNN reads s_t = x_t through ``model.step(z, s_t)`` from z = 0, the
prediction at step t is ``model.observe(z_t)`` (a logit for the binary tasks), the loss is averaged over
the masked steps, one Adam step per "epoch" on a fresh batch of ``batch`` sequences (the paper's epoch:
§6, Fig. 3, batch b = 16, T = 300, 10⁴ epochs, lr 1e-3). Gradient flossing on the first ``floss_k``
exponents runs before training (preflossing, §6) and/or in episodes at chosen epochs (§7, Fig. 7C, 8;
digest §7.4), driven by inputs drawn from the task's own input distribution and starting from z = 0
(digest §7.2: "input identical to the task").

Success (our criterion; the paper plots the loss/accuracy against d, Fig. 3C-D, 4C-D): MSE tasks succeed
when the final test MSE is below ``SUCCESS_FRACTION`` of the trivial predictor's (the target mean, MSE =
Var y); binary tasks when the final test accuracy exceeds ``SUCCESS_ACCURACY``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from tqdm.auto import tqdm

from .config import MAX_BATCH_STEPS, MAX_STEPS, SEED_LIMIT
from .errors import ConfigError, DivergenceError
from .flossing import floss
from .models import RNN
from .models.base import device_dtype

TASKS = ("copy", "xor", "binary_xor", "spatial_xor")
BINARY = ("binary_xor", "spatial_xor")
SUCCESS_FRACTION = 0.1   # MSE tasks: final test MSE < 10 % of Var y (a net that ignores x_{t-d} sits near 100 %)
SUCCESS_ACCURACY = 0.9   # binary tasks: the "XOR accuracy > 90 %" of the brief; chance is 50 %
MAX_T = 10**6            # steps per sequence: BPTT keeps them all (the paper's T is 300)
MAX_UNITS = 10_000       # RNN units: W has N^2 weights (10^8 at the limit)
MAX_GAIN = 100.0         # initial gain g: the paper's is 1 (critical); g >> 1 saturates every tanh unit


@dataclass(frozen=True)
class Task:
    """One delayed task: its ``name`` (one of :data:`TASKS`), delay ``d`` and sequence length ``T``.

    Defaults are the paper's (T = 300, "Gradient Flossing" Fig. 3-4). Raises ConfigError for an unknown
    name, d < 1, d >= T (no step would have a target) or an odd d for the temporal XOR tasks.
    """

    name: str
    delay: int
    T: int = 300   # steps per sequence ("Gradient Flossing" Fig. 3-5: T = 300); <= MAX_T

    def __post_init__(self):
        if self.name not in TASKS:
            raise ConfigError(f"unknown task {self.name!r}; use one of {', '.join(TASKS)}")
        for key, v in (("delay", self.delay), ("T", self.T)):
            try:
                ok = not isinstance(v, bool) and int(v) == v and v >= 1
            except (TypeError, ValueError, OverflowError):   # None, 'x', nan, inf
                ok = False
            if not ok:
                raise ConfigError(f"task {self.name}: {key} must be a positive integer, got {v!r}")
            object.__setattr__(self, key, int(v))
        if self.T > MAX_T:
            raise ConfigError(f"task {self.name}: T = {self.T} steps exceeds {MAX_T:,}: backpropagation through T "
                              f"steps keeps every state; use a shorter sequence (the paper's is 300)")
        if self.delay >= self.T:
            raise ConfigError(f"task {self.name}: delay d = {self.delay} leaves no step with a target in "
                              f"T = {self.T} steps; use T > d (e.g. T = {max(300, 2 * self.delay)})")
        if self.name in ("xor", "binary_xor") and self.delay % 2:
            raise ConfigError(f"task {self.name}: the delay must be even (y_t uses x_(t-d/2)), got d = {self.delay}")

    @property
    def input_dim(self) -> int:
        return 3 if self.name == "spatial_xor" else 1

    @property
    def output_dim(self) -> int:
        return 1

    @property
    def binary(self) -> bool:
        """True for the cross-entropy tasks (the readout is a logit), False for the MSE tasks."""
        return self.name in BINARY

    @property
    def trivial_loss(self) -> float:
        """Loss of the best predictor that ignores the inputs: Var y for the MSE tasks (copy: Var U(0,1) =
        1/12; xor: E|a-b|² − (E|a-b|)² = 1/6 − 1/9 = 1/18), ln 2 (cross-entropy of p = ½) for the binary ones."""
        return {"copy": 1 / 12, "xor": 1 / 18}.get(self.name, math.log(2))


@dataclass(frozen=True)
class TaskBatch:
    """inputs (T, B, K), targets (T, B, 1) (0 where undefined), mask (T,) bool: True where t >= d."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor


# -- targets from given inputs (pure; these are the definitions) ------------------------------------
def _delayed(x: torch.Tensor, d: int) -> torch.Tensor:
    """x shifted by d steps along time (dim 0): out[t] = x[t-d] for t >= d, 0 before."""
    out = torch.zeros_like(x)
    out[d:] = x[:-d]
    return out


def delayed_copy(x: torch.Tensor, d: int) -> torch.Tensor:
    """y_t = x_{t-d} ("Gradient Flossing" §6, App. H.1); x (T, B, 1)."""
    return _delayed(x, d)


def temporal_xor(x: torch.Tensor, d: int) -> torch.Tensor:
    """y_t = |x_{t-d/2} − x_{t-d}| (Eq. 20), defined for t >= d; x (T, B, 1), d even."""
    y = (_delayed(x, d // 2) - _delayed(x, d)).abs()
    y[:d] = 0
    return y


def binary_temporal_xor(x: torch.Tensor, d: int) -> torch.Tensor:
    """y_t = x_{t-d/2} XOR x_{t-d} (§7; not Table 2's x_{t-2d}, digest §12 #3); x in {0, 1}, (T, B, 1)."""
    return temporal_xor(x, d)   # |a − b| is XOR on {0, 1} (App. H.2, Table 2)


def spatial_xor(x: torch.Tensor, d: int) -> torch.Tensor:
    """y_t = x¹_{t-d} XOR x²_{t-d} XOR x³_{t-d} (§7); x (T, B, 3) in {0, 1} -> (T, B, 1)."""
    return _delayed(torch.remainder(x.sum(-1, keepdim=True), 2), d)


TARGETS = {"copy": delayed_copy, "xor": temporal_xor, "binary_xor": binary_temporal_xor, "spatial_xor": spatial_xor}


def sample_inputs(task: Task, n_steps: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """(n_steps, batch, K) i.i.d. inputs of ``task``: U(0, 1) for copy/xor (App. H.1), fair Bernoulli
    {0, 1} for the binary tasks (§7). Also the input stream of flossing and of ``lyapunov_spectrum``."""
    u = torch.rand(int(n_steps), int(batch), task.input_dim, generator=generator)
    return (u < 0.5).to(u.dtype) if task.binary else u


def make_batch(task: Task, batch: int, generator: torch.Generator) -> TaskBatch:
    """A fresh batch of ``batch`` sequences of ``task`` (pure: all randomness from ``generator``)."""
    x = sample_inputs(task, task.T, batch, generator)
    mask = torch.arange(task.T) >= task.delay
    return TaskBatch(inputs=x, targets=TARGETS[task.name](x, task.delay), mask=mask)


# -- model, loss and training ---------------------------------------------------------------------
def task_model(task: Task, *, latent_dim: int = 80, g: float = 1.0, init: str = "gaussian", seed: int = 0):
    """The paper's vanilla tanh RNN for ``task``: N = 80 units, g = 1 ("critical" init, §6, Fig. 3-4),
    input size K and one output (a logit for the binary tasks). ConfigError for units outside
    [1, MAX_UNITS], a gain outside [0, MAX_GAIN] (or NaN) or a seed outside [0, 2^32)."""
    latent_dim = _check_int("latent_dim", latent_dim, 1, MAX_UNITS, where="task_model")
    g = _check_float("g", g, ge=0.0, le=MAX_GAIN, where="task_model")
    seed = _check_int("seed", seed, 0, SEED_LIMIT - 1, where="task_model")

    return RNN(task.output_dim, latent_dim, input_dim=task.input_dim, g=g, init=init, seed=seed)


def run_task(model, inputs: torch.Tensor) -> torch.Tensor:
    """Readouts (T, B, out) of ``model`` driven by ``inputs`` (T, B, K) from z = 0: z_t = step(z_{t-1}, x_t),
    ŷ_t = observe(z_t) (so ŷ_t has seen x_t; y_t = x_{t-d} must be held for d steps)."""
    device, dtype = device_dtype(model)
    inputs = inputs.to(device=device, dtype=dtype)
    z = torch.zeros(inputs.shape[1], model.latent_dim, device=device, dtype=dtype)
    out = []
    for s in inputs:
        z = model.step(z, s)
        out.append(model.observe(z))
    return torch.stack(out)


def task_loss(task: Task, pred: torch.Tensor, data: TaskBatch) -> tuple[torch.Tensor, float | None]:
    """(loss over the masked steps, accuracy or None): MSE for copy/xor, binary cross-entropy of the
    logits for the binary tasks ("Gradient Flossing" Fig. 3-4 captions), accuracy = sign(logit) == y."""
    y = data.targets.to(pred)[data.mask]
    p = pred[data.mask]
    if not task.binary:
        return torch.mean((p - y) ** 2), None
    loss = torch.nn.functional.binary_cross_entropy_with_logits(p, y)
    return loss, float(((p > 0).to(y) == y).float().mean())


@dataclass
class TaskResult:
    """What :func:`train_task` did: the history of the test loss/accuracy, the flossing episodes, timing."""

    task: Task
    epoch: list = field(default_factory=list)          # epochs at which the test set was scored
    test_loss: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)  # binary tasks only
    train_loss: list = field(default_factory=list)     # every epoch
    floss_epoch: list = field(default_factory=list)    # epochs before which a flossing episode ran (0: preflossing)
    floss_lambda: list = field(default_factory=list)   # λ_1..λ_k (per step) at the end of each episode
    seconds: float = 0.0
    floss_seconds: float = 0.0

    @property
    def final_loss(self) -> float:
        return self.test_loss[-1]

    @property
    def final_accuracy(self) -> float | None:
        return self.test_accuracy[-1] if self.test_accuracy else None

    @property
    def success(self) -> bool:
        """Final test MSE < SUCCESS_FRACTION x trivial loss (MSE tasks) or accuracy > SUCCESS_ACCURACY."""
        if self.task.binary:
            return self.final_accuracy > SUCCESS_ACCURACY
        return self.final_loss < SUCCESS_FRACTION * self.task.trivial_loss

    def __str__(self) -> str:
        acc = "" if self.final_accuracy is None else f", accuracy {self.final_accuracy:.3f}"
        return (f"{self.task.name} d={self.task.delay}: test loss {self.final_loss:.4g} "
                f"(trivial {self.task.trivial_loss:.4g}){acc}, success={self.success}, {self.seconds:.1f} s")


def _check_int(name, v, lo, hi=None, where="train_task"):
    try:
        ok = not isinstance(v, bool) and int(v) == v and v >= lo and (hi is None or v <= hi)
    except (TypeError, ValueError, OverflowError):   # None, 'x', nan, inf
        ok = False
    if not ok:
        span = f">= {lo}" if hi is None else "in [0, 2^32)" if hi == SEED_LIMIT - 1 else f"in [{lo}, {hi:,}]"
        raise ConfigError(f"{where}: {name} must be an integer {span}, got {v!r}")
    return int(v)


def _check_steps(name, v, lo):
    """An integer >= ``lo`` and at most :data:`MAX_STEPS` (10^7, as fit's train.steps: 10^8 trained until killed)."""
    v = _check_int(name, v, lo)
    if v > MAX_STEPS:
        raise ConfigError(f"train_task: {name} must be an integer >= {lo} and <= {MAX_STEPS:,}, got {v!r}")
    return v


def _check_float(name, v, *, gt=None, ge=None, le=None, where="train_task"):
    """A finite number within the bounds, or a one-line ConfigError naming ``name``."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (gt is None or v > gt) and (ge is None or v >= ge) and (le is None or v <= le)
    if not ok:
        lo = f"> {gt:g}" if gt is not None else f">= {ge:g}" if ge is not None else ""
        span = f"in [{ge:g}, {le:g}]" if ge is not None and le is not None else lo or (f"<= {le:g}" if le else "")
        raise ConfigError(f"{where}: {name} must be a finite number {span}".rstrip() + f", got {v!r}")
    return float(v)


def train_task(model, task: Task, *, epochs: int = 10_000, lr: float = 1e-3, batch: int = 16,
               prefloss_epochs: int = 0, floss_k: int = 75, floss_at: Sequence[int] = (), floss_every: int = 0,
               floss_epochs: int = 500, floss_steps: int | None = None, floss_lr: float = 1e-3,
               floss_target: float = 0.0, floss_qr_every: int = 1, test_batch: int = 256,
               eval_every: int | None = None, seed: int = 0, progress: bool = False) -> TaskResult:
    """Train ``model`` (any driven Model, e.g. :func:`task_model`) on ``task`` with Adam, with optional
    gradient flossing ("Gradient Flossing" §6-7, Alg. 1).

    Parameters (defaults: the paper's, Fig. 3-4: b = 16, 10⁴ epochs, Adam lr 1e-3, E_f = 500, k = 75):
      epochs — Adam steps, each on a fresh batch of ``batch`` sequences (0: only preflossing);
      prefloss_epochs — flossing updates before training (§6: 500; 0 = none);
      floss_at — epochs before which an episode of ``floss_epochs`` updates runs (Fig. 7C: 0, 100, ..., 400);
      floss_every — also an episode every this many epochs (0: never; throughout training it hurts,
        App. D.2, Fig. 12);
      floss_k, floss_target, floss_lr, floss_qr_every — the flossing loss Σ_{i<=k} (λ_i − target)² and its Adam;
      floss_steps — T_f, steps of each estimate (default T: it must bridge the delay, App. F);
      test_batch, eval_every — size of the fixed test set and how often it is scored (default ~50 times);
      seed — training batches, test set and flossing inputs (the model's init has its own seed).
    Returns :class:`TaskResult` (its ``success`` applies the module's criterion).
    Raises ConfigError on bad settings, before any work; DivergenceError on a non-finite loss.
    """
    epochs, batch = _check_steps("epochs", epochs, 0), _check_int("batch", batch, 1)
    test_batch = _check_int("test_batch", test_batch, 1)
    for name, b in (("batch", batch), ("test_batch", test_batch)):
        if b * task.T > MAX_BATCH_STEPS:
            raise ConfigError(f"train_task: {name} = {b} sequences x T = {task.T} steps exceeds {MAX_BATCH_STEPS:,} "
                              f"steps per batch (each keeps its states for backprop); use {name} <= "
                              f"{MAX_BATCH_STEPS // task.T}")
    lr, floss_lr = _check_float("lr", lr, gt=0.0), _check_float("floss_lr", floss_lr, gt=0.0)
    floss_target = _check_float("floss_target", floss_target)
    floss_qr_every = _check_int("floss_qr_every", floss_qr_every, 1)
    seed = _check_int("seed", seed, 0, SEED_LIMIT - 1)
    prefloss_epochs = _check_steps("prefloss_epochs", prefloss_epochs, 0)
    floss_every = _check_int("floss_every", floss_every, 0)
    floss_at = sorted({_check_int("floss_at", e, 0) for e in floss_at})
    if floss_at and floss_at[-1] >= max(epochs, 1):
        raise ConfigError(f"train_task: flossing episode at epoch {floss_at[-1]} but training has {epochs} epochs; "
                          f"use floss_at epochs below {max(epochs, 1)}")
    wants_floss = prefloss_epochs > 0 or floss_every > 0 or len(floss_at) > 0
    floss_epochs = _check_steps("floss_epochs", floss_epochs, 1) if wants_floss else floss_epochs
    if wants_floss and (isinstance(floss_k, bool) or not isinstance(floss_k, int)
                        or not 1 <= floss_k <= model.latent_dim):
        raise ConfigError(f"train_task: floss_k = {floss_k} must be between 1 and the model's {model.latent_dim} units")
    if getattr(model, "input_dim", task.input_dim) != task.input_dim:
        raise ConfigError(f"train_task: the model reads {model.input_dim} inputs but task {task.name} has "
                          f"{task.input_dim}; build it with task_model(task) or input_dim={task.input_dim}")
    T_f = task.T if floss_steps is None else _check_int("floss_steps", floss_steps, 1)
    eval_every = max(1, epochs // 50) if eval_every is None else _check_int("eval_every", eval_every, 1)

    gen = torch.Generator().manual_seed(int(seed))
    test = make_batch(task, test_batch, torch.Generator().manual_seed(int(seed) + 1_000_003))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    result = TaskResult(task=task)
    t_start = time.perf_counter()

    def episode(epoch: int, n: int):
        t0 = time.perf_counter()
        res = floss(model, k=floss_k, target=floss_target, epochs=n, n_steps=T_f, qr_every=floss_qr_every,
                    lr=floss_lr, batch=1, seed=int(seed) + 7919 * (len(result.floss_epoch) + 1),
                    init=lambda b, g: torch.zeros(b, model.latent_dim),          # z = 0, as in training
                    inputs=lambda n_, b, g: sample_inputs(task, n_, b, g),       # the task's input statistics
                    progress=progress, desc=f"flossing (epoch {epoch})")
        result.floss_epoch.append(epoch)
        result.floss_lambda.append(res.final.tolist())
        result.floss_seconds += time.perf_counter() - t0

    def evaluate(epoch: int):
        with torch.no_grad():
            loss, acc = task_loss(task, run_task(model, test.inputs), test)
        result.epoch.append(epoch)
        result.test_loss.append(loss.item())
        if acc is not None:
            result.test_accuracy.append(acc)

    if prefloss_epochs:
        episode(0, prefloss_epochs)
    bar = tqdm(range(epochs), disable=not progress, desc=f"{task.name} d={task.delay}", dynamic_ncols=True)
    for e in bar:
        if (e in floss_at or (floss_every and e > 0 and e % floss_every == 0)) and not (e == 0 and prefloss_epochs):
            episode(e, floss_epochs)
        if e % eval_every == 0:
            evaluate(e)
        data = make_batch(task, batch, gen)
        loss, _ = task_loss(task, run_task(model, data.inputs), data)
        if not torch.isfinite(loss):
            raise DivergenceError(f"train_task: non-finite loss at epoch {e} of {task.name} d={task.delay}; "
                                  f"lower lr (now {lr}) or the initial gain g of the model")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        result.train_loss.append(loss.item())
        if progress and e % eval_every == 0:
            bar.set_postfix(test_loss=f"{result.test_loss[-1]:.4g}")
    bar.close()
    evaluate(epochs)
    result.seconds = time.perf_counter() - t_start
    return result
