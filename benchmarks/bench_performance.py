"""Performance: training throughput, Lyapunov-spectrum cost against N and k, peak memory, ensembles.

Four parts, all in one run, each timing printed with a ratio against a named baseline of the same run:

1. *Training throughput* of ``dsrecon.train.train_loop`` (sparse teacher forcing, tau = 25, 200-step subsequences,
   Adam, validation and checkpoints off) for the PLRNN, RNN and LSTM at their default sizes (M = 100, 100, and
   50 LSTM units, whose state [h, c] has 100 entries: the printed M is the state size)
   on standardized Lorenz-63, at batch 32 and 256: optimiser steps/s (wall clock, after 2 warm-up steps), CPU
   seconds per step, and the per-sample throughput of batch 256 against batch 32 (baseline: batch 32). On the
   CPU with ``--threads`` torch threads (default 1: the machine is shared); on CUDA as well when
   ``torch.cuda.is_available()``, with the GPU/CPU ratio of steps/s (baseline: the CPU run of the same model
   and batch); otherwise it says that CUDA was not available.
2. *Lyapunov-spectrum cost*: ``dsrecon.lyapunov.lyapunov_spectrum`` of a randomly initialised PLRNN (1000 steps
   after a 100-step transient, one initial condition): against N with k = N (baseline: the smallest N; the
   log-log slope is printed, the QR method costs O(N² k) per step for the Jacobian product plus O(N k²) for QR),
   against k at fixed N (baseline: k = 1), and with QR every 5 steps against every step (baseline:
   qr_every = 1). With CUDA, the largest case again on the GPU (baseline: the CPU run).
3. *Peak memory* of every case above (model, warm-up and timed run together): on the CPU each case runs in a
   forked child of the same parent, and the figure is its peak resident set size (VmHWM, reset through
   /proc/self/clear_refs; where that is unavailable, ``resource.getrusage`` max RSS) minus its RSS at the start;
   on CUDA ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, in this process.

4. *Ensembles and the distance to the hardware* (``--part ensemble``; issue 14): the measured float32 matmul peak
   (1024³, the current threads) next to each model's achieved GFLOP/s per training step (matmul FLOPs counted
   analytically, forward + backward = 3 × forward) for one member and K members (``--ens-k``, default 1,8) of
   the default PLRNN (stf) and a shallow PLRNN M = 3, L = 100 (gtf): wall time of K members against one, and
   per-member throughput against K single runs in a row (baseline: the K = 1 row). On the CPU the rates are per
   CPU-second (robust to a shared machine); with CUDA also the CUDA/CPU ratio of member-steps/s. Every case runs
   with the fused rollout of ``dsrecon.fused`` (the default path) and with the eager one (baseline: eager, the same
   case in the same run).

λ_max estimation from data against nolds (speed and accuracy) is benchmarks/bench_lyapunov.py; not repeated here.

    python benchmarks/bench_performance.py                 # ~1-2 min on 2 shared cores
    python benchmarks/bench_performance.py --steps 50 --threads 2 --lyap-n 50,100,200,400,800
    python benchmarks/bench_performance.py --part ensemble --steps 30 --no-fork          # ~20 s
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import sys
import time

import numpy as np
import torch

from dsrecon import fused
from dsrecon.config import TrainConfig
from dsrecon.lyapunov import lyapunov_spectrum
from dsrecon.ensemble import Ensemble
from dsrecon.models import LSTM, PLRNN, RNN, ShallowPLRNN
from dsrecon.systems import simulate
from dsrecon.train import train_loop

MODELS = {"PLRNN": PLRNN, "RNN": RNN, "LSTM": LSTM}


# -- memory ---------------------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"{field}:\s+(\d+)\s+kB", f.read())
        return int(m.group(1)) if m else None
    except OSError:
        return None


class PeakMemory:
    """Peak extra memory (MB) of the code inside ``with``: CPU RSS above the start, or CUDA allocated."""

    def __init__(self, device: str):
        self.device, self.mb = device, float("nan")

    def __enter__(self):
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return self
        self.hwm = False
        try:                                           # Linux >= 4.0: "5" resets the peak RSS (VmHWM)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.hwm = _status_kb("VmHWM") is not None
        except OSError:
            pass
        self.start = _status_kb("VmRSS") if self.hwm else self._maxrss()
        return self

    @staticmethod
    def _maxrss() -> int:
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r // 1024 if sys.platform == "darwin" else r     # bytes on macOS, kB on Linux

    def __exit__(self, *exc):
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.mb = (torch.cuda.max_memory_allocated() - self.start) / 2**20
        else:
            peak = _status_kb("VmHWM") if self.hwm else self._maxrss()
            self.mb = max(peak - self.start, 0) / 1024
        return False


def measured(fn, device: str, fork: bool) -> dict:
    """``fn()`` (a dict of timings) plus its peak extra memory ``peak_mb``.

    CPU cases run in a forked child when ``fork``: every case then starts from the same parent state, so the
    memory that an earlier case freed but the allocator kept does not hide the next case's (in one process
    the RSS peak only shows what exceeds everything before). CUDA cases run in this process (a forked child
    cannot use CUDA; ``max_memory_allocated`` is exact anyway).
    """
    if device == "cuda" or not fork:
        with PeakMemory(device) as mem:
            out = fn()
        return {**out, "peak_mb": mem.mb}
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                           # child: measure, report, exit without cleanup
        code = 0
        try:
            os.close(r)
            with PeakMemory("cpu") as mem:
                out = fn()
            payload = json.dumps({**out, "peak_mb": mem.mb})
        except BaseException as e:                        # noqa: BLE001 - reported by the parent
            payload, code = json.dumps({"error": f"{type(e).__name__}: {e}"}), 1
        with os.fdopen(w, "w") as f:
            f.write(payload)
        os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        payload = f.read()
    os.waitpid(pid, 0)
    out = json.loads(payload) if payload else {"error": "the measuring child process died"}
    if "error" in out:
        raise RuntimeError(f"benchmark case failed: {out['error']}")
    return out


def memory_method(fork: bool) -> str:
    with PeakMemory("cpu") as m:
        pass
    how = ("peak RSS (VmHWM, reset per case)" if m.hwm else
           "getrusage max RSS (monotone: only cases that raise the process peak show memory)")
    return how + (", each CPU case in a forked child" if fork else ", all cases in this process")


# -- 1. training throughput -----------------------------------------------------------------------------
def lorenz(n: int) -> np.ndarray:
    x = simulate("lorenz", {"sigma": 10.0, "rho": 28.0, "beta": 8 / 3}, dt=0.01, n_samples=n, transient=1000, seed=0)
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def throughput(name: str, batch: int, device: str, steps: int, x: np.ndarray, seq_len: int) -> dict:
    """Steps/s of fit after a 2-step warm-up fit of the same model (the memory figure covers both)."""
    def cfg(n):
        return TrainConfig(method="stf", steps=n, batch_size=batch, seq_len=seq_len, validate_every=0,
                           checkpoint_every=10**9, device=device, seed=0)

    model = MODELS[name](x.shape[1], seed=0)
    train_loop(model, x, tau=25, config=cfg(2), progress=False)                 # warm-up: allocations, kernels
    t0, c0 = time.perf_counter(), time.process_time()
    train_loop(model, x, tau=25, config=cfg(steps), progress=False)
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"model": name, "M": model.latent_dim, "batch": batch, "device": device, "steps": steps,
            "steps_per_s": steps / wall, "cpu_ms_per_step": 1000 * cpu / steps}


def prime() -> None:
    """Run every code path once, tiny, in the parent, so that the forked children inherit torch's lazily
    loaded libraries and kernels instead of counting them as their own peak memory."""
    x = np.random.default_rng(0).standard_normal((200, 3)).astype(np.float32)
    for cls in MODELS.values():
        train_loop(cls(x.shape[1], latent_dim=4, seed=0), x, tau=5, progress=False,
            config=TrainConfig(method="stf", steps=2, batch_size=2, seq_len=10, validate_every=0, device="cpu"))
    lyapunov_spectrum(PLRNN(3, 4, seed=0), k=4, n_steps=10, transient=2, qr_every=1)
    lyapunov_spectrum(PLRNN(3, 4, seed=0), k=4, n_steps=10, transient=2, qr_every=5)


def part_training(args, devices: list[str]) -> None:
    x = lorenz(args.n_data)
    print(f"1. training throughput: dsrecon.train.train_loop, stf tau = 25, seq_len {args.seq_len}, Adam, no validation; "
          f"Lorenz-63 ({args.n_data} samples, standardized); {args.steps} timed steps at batch 32, "
          f"{max(2, args.steps // 4)} at batch 256; torch threads {torch.get_num_threads()}")
    if args.fork:
        tiny = x[:200]
        floor = measured(lambda: {"fit": train_loop(PLRNN(3, 4, seed=0), tiny, tau=5, progress=False, config=TrainConfig(
            method="stf", steps=2, batch_size=2, seq_len=10, validate_every=0, device="cpu")).steps_done}, "cpu", True)
        print(f"(memory floor: a forked child running the same code at a tiny size (PLRNN M = 4, batch 2) peaks at "
              f"{floor['peak_mb']:.1f} MB, the library pages it touches again; subtract it from the figures below)")
    print(f"{'model':<6} {'M':>4} {'batch':>5} {'device':<6} {'steps/s':>8} {'CPU ms/step':>11} "
          f"{'samples/s':>9} {'x per sample vs b32':>19} {'peak MB':>8}")
    res = {}
    for name in MODELS:
        for device in devices:
            for batch in (32, 256):
                n = args.steps if batch == 32 else max(2, args.steps // 4)
                r = measured(lambda: throughput(name, batch, device, n, x, args.seq_len), device, args.fork)
                res[name, device, batch] = r
                base = res.get((name, device, 32))
                ratio = r["steps_per_s"] * batch / (base["steps_per_s"] * 32)
                print(f"{name:<6} {r['M']:4d} {batch:5d} {device:<6} {r['steps_per_s']:8.2f} "
                      f"{r['cpu_ms_per_step']:11.1f} {r['steps_per_s'] * batch:9.0f} {ratio:18.2f}x "
                      f"{r['peak_mb']:8.1f}", flush=True)
    if "cuda" in devices:
        print("GPU/CPU ratio of steps/s (baseline: the CPU run of the same model and batch): " + ", ".join(
            f"{name} b{b}: {res[name, 'cuda', b]['steps_per_s'] / res[name, 'cpu', b]['steps_per_s']:.1f}x"
            for name in MODELS for b in (32, 256)))
    else:
        print("CUDA was not available (torch.cuda.is_available() is False): no GPU timings, no GPU/CPU ratio.")


# -- 3. ensembles and the distance to the hardware ------------------------------------------------------
def matmul_peak(device: str, n: int = 1024, reps: int = 10) -> float:
    """GFLOP/s of an n x n @ n x n float32 matmul (2 n^3 FLOPs) with the current torch threads: the measured
    peak the training figures are read against."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    clock = time.perf_counter if device == "cuda" else time.process_time   # CPU: CPU time, robust to sharing
    best = math.inf
    for _ in range(3):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = clock()
        for _ in range(reps):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, (clock() - t0) / reps)
    return 2 * n**3 / best / 1e9


def small_matmul_gflops(batch: int = 32, m: int = 100, reps: int = 2000) -> float:
    """GFLOP/s of the PLRNN's own product, (batch x m) @ (m x m), on the CPU: the per-call overhead bound."""
    a, w = torch.randn(batch, m), torch.randn(m, m)
    t0 = time.process_time()
    for _ in range(reps):
        a @ w
    return 2 * batch * m * m * reps / (time.process_time() - t0) / 1e9


ENSEMBLE_MODELS = {   # name -> (class, constructor keywords, training method); the two cases
    "plrnn": (PLRNN, {}, "stf"),                                   # the default PLRNN, M = 100
    "shallow": (ShallowPLRNN, {"latent_dim": 3, "hidden_dim": 100}, "gtf"),   # GTF paper's size: M = N = 3, L = 100
}


def step_flops(model, batch: int, seq_len: int) -> float:
    """Matmul FLOPs of one training step of one member, forward + backward ~ 3 x forward: per time step the
    recurrent products (PLRNN 2BM^2; shPLRNN 2 x 2BML; RNN 2BM^2) and the observation 2BMN (elementwise
    operations, forcing and the optimiser are not counted: they are small next to the products at M = 100)."""
    M, N = model.latent_dim, model.obs_dim
    rec = 2 * 2 * batch * M * model.hidden_dim if isinstance(model, ShallowPLRNN) else 2 * batch * M * M
    return 3 * seq_len * (rec + 2 * batch * M * N)


def ensemble_throughput(name: str, k: int, batch: int, device: str, steps: int, x: np.ndarray,
                        seq_len: int, engine: str = "fused") -> dict:
    """Optimiser steps/s of fit on an ensemble of ``k`` members (k = 1: the plain model), after a 2-step
    warm-up; member-steps/s = k x steps/s. ``engine``: the rollout, "fused" (dsrecon.fused, the default) or
    "eager" (autograd through every time step; DSRECON_ROLLOUT=eager)."""
    cls, kw, method = ENSEMBLE_MODELS[name]
    os.environ["DSRECON_ROLLOUT"] = engine

    def cfg(n):
        return TrainConfig(method=method, gtf_alpha=0.15, steps=n, batch_size=batch, seq_len=seq_len,
                           validate_every=0, checkpoint_every=10**9, device=device, seed=0)

    single = cls(x.shape[1], seed=0, **kw)
    model = single if k == 1 else Ensemble(single, k)
    # the rollout that actually runs: dsrecon.fused leaves some cases eager (the stacked view of a PLRNN ensemble)
    shape = (seq_len + 1, batch, x.shape[1]) if k == 1 else (seq_len + 1, k, batch, x.shape[1])
    view = single if k == 1 else model.stacked()
    path = "fused" if fused.supports(view, method, None, torch.empty(shape, device=device)) else "eager"
    train_loop(model, x, tau=25, config=cfg(2 if device == "cuda" else 1), progress=False)   # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    train_loop(model, x, tau=25, config=cfg(steps), progress=False)
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # on the CPU the rates are per CPU-second of this process (with 1 thread: the time it actually ran, robust
    # to other jobs on a shared machine; wall-clock steps/s are printed next to them); on CUDA per wall second
    busy = cpu / torch.get_num_threads() if device == "cpu" else wall
    sps = steps / busy
    os.environ.pop("DSRECON_ROLLOUT")
    return {"model": name, "K": k, "batch": batch, "device": device, "steps": steps, "steps_per_s": sps, "path": path,
            "wall_steps_per_s": steps / wall, "member_steps_per_s": k * sps, "ms_per_step": 1000 * busy / steps,
            "gflops": k * sps * step_flops(single, batch, seq_len) / 1e9}


def part_ensemble(args, devices: list[str]) -> dict:
    x = lorenz(args.n_data)
    ks = [int(v) for v in args.ens_k.split(",")]
    batches = [int(v) for v in args.ens_batch.split(",")]
    names = args.ens_models.split(",")
    peak = {d: matmul_peak(d, n=8192 if d == "cuda" else 1024) for d in devices}   # a GPU needs a big product
    print(f"\n3. ensembles (dsrecon.Ensemble, one batched pass) and the distance to the hardware; seq_len "
          f"{args.seq_len}, no validation; torch threads {torch.get_num_threads()}; CPU rates per CPU-second / "
          f"threads (wall steps/s in the 'wall' column), CUDA per wall second; FLOPs of the products, fwd + bwd = 3x fwd")
    print(f"measured matmul peak (float32, CPU 1024^3 on {torch.get_num_threads()} thread(s), CUDA 8192^3): "
          + ", ".join(f"{d} {v:.1f} GFLOP/s" for d, v in peak.items())
          + f"; the PLRNN's own (32 x 100) @ (100 x 100) on the CPU: {small_matmul_gflops():.1f} GFLOP/s")
    engines = args.engines.split(",")
    print(f"{'model':<8} {'path':<6} {'K':>4} {'batch':>5} {'device':<6} {'steps':>5} {'steps/s':>8} {'ms/step':>8} "
          f"{'wall':>7} {'member-steps/s':>14} {'GFLOP/s':>8} {'% of peak':>9}")
    res, by_engine = {}, {}
    for name in names:
        for device in sorted(devices, key=lambda d: d != "cuda"):   # CUDA first: the CPU cases are the slow ones
            for batch in batches:
                for k in ks:
                    n = args.steps if device == "cuda" else args.ens_cpu_steps or args.steps
                    if batch > 32:
                        n = max(2, n // 4)
                    if device == "cpu" and k * batch > 2048:
                        n = max(1, n // 4)   # the CPU cases of big ensembles: few steps, so the run fits
                    for engine in engines:
                        r = ensemble_throughput(name, k, batch, device, n, x, args.seq_len, engine)
                        by_engine[name, device, batch, k, engine] = r
                        if engine == engines[0]:
                            res[name, device, batch, k] = r
                        print(f"{name:<8} {r['path']:<6} {k:4d} {batch:5d} {device:<6} {n:5d} {r['steps_per_s']:8.2f} "
                              f"{r['ms_per_step']:8.1f} {r['wall_steps_per_s']:7.2f} {r['member_steps_per_s']:14.1f} "
                              f"{r['gflops']:8.2f} {100 * r['gflops'] / peak[device]:8.1f}%", flush=True)
    if len(engines) > 1:   # the fused rollout against its baseline, autograd through every step, same run
        for (name, device, batch, k, engine), r in by_engine.items():
            if engine != "eager" and r["path"] != "eager" and (name, device, batch, k, "eager") in by_engine:
                base = by_engine[name, device, batch, k, "eager"]
                print(f"{name} K = {k} batch {batch} {device}: {engine} {r['steps_per_s'] / base['steps_per_s']:.2f}x "
                      f"the steps/s of eager")
    # the targets, from the rows above
    k_big = max(ks)
    for name in names:
        for device in devices:
            for batch in batches:
                one, big = res.get((name, device, batch, 1)), res.get((name, device, batch, k_big))
                if one is None or big is None or k_big == 1:
                    continue
                print(f"{name} {device} batch {batch}: K = {k_big} takes {big['ms_per_step'] / one['ms_per_step']:.2f}x "
                      f"the wall time of one member per step; per-member throughput "
                      f"{big['member_steps_per_s'] / one['steps_per_s']:.2f}x that of {k_big} single runs in a row "
                      f"on the same threads")
    if "cuda" in devices and "cpu" in devices:
        for name in names:
            for batch in batches:
                for k in ks:
                    g, c = res.get((name, "cuda", batch, k)), res.get((name, "cpu", batch, k))
                    if g and c:
                        print(f"{name} K = {k} batch {batch}: CUDA / CPU ({torch.get_num_threads()} threads) "
                              f"member-steps/s {g['member_steps_per_s'] / c['member_steps_per_s']:.1f}x")
    return res


# -- 2. Lyapunov-spectrum cost --------------------------------------------------------------------------
def spectrum_cost(N: int, k: int, qr_every: int, device: str, args) -> dict:
    return measured(lambda: _spectrum_cost(N, k, qr_every, device, args), device, args.fork)


def _spectrum_cost(N: int, k: int, qr_every: int, device: str, args) -> dict:
    model = PLRNN(3, N, seed=0).to(device)
    with torch.no_grad():
        lyapunov_spectrum(model, k=k, n_steps=20, transient=0, qr_every=qr_every)   # warm-up
    t0 = time.perf_counter()
    spec = lyapunov_spectrum(model, k=k, n_steps=args.lyap_steps, transient=args.lyap_transient,
                             qr_every=qr_every, seed=0)
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return {"N": N, "k": k, "qr_every": qr_every, "device": device, "seconds": wall,
            "ms_per_step": 1000 * wall / (args.lyap_steps + args.lyap_transient), "lambda_1": float(spec.values[0])}


def _row(label: str, r: dict, base: dict, base_name: str) -> None:
    print(f"{label:<28} {r['seconds']:7.2f} {r['ms_per_step']:8.3f} {r['seconds'] / base['seconds']:7.2f}x "
          f"vs {base_name:<14} {r['peak_mb']:8.1f} {r['lambda_1']:+9.4f}", flush=True)


def part_spectrum(args, devices: list[str]) -> None:
    ns = [int(n) for n in args.lyap_n.split(",")]
    ks = [int(k) for k in args.lyap_k.split(",")]
    print(f"\n2. Lyapunov spectrum of a PLRNN (random init), lyapunov_spectrum: {args.lyap_steps} steps after "
          f"{args.lyap_transient}, 1 initial condition")
    head = f"{'case':<28} {'seconds':>7} {'ms/step':>8} {'ratio':>8} {'baseline':<14} {'peak MB':>8} {'lambda_1':>9}"
    if args.fork:
        print(f"(memory floor: the same run at N = k = 4 in a forked child peaks at "
              f"{spectrum_cost(4, 4, 1, 'cpu', args)['peak_mb']:.1f} MB; subtract it from the figures below)")
    print(head)
    rows = [spectrum_cost(N, N, 1, "cpu", args) for N in ns]
    for r in rows:
        _row(f"N = {r['N']}, k = N", r, rows[0], f"N = {ns[0]}")
    if len(ns) > 1:
        slope = np.polyfit(np.log(ns), np.log([r["seconds"] for r in rows]), 1)[0]
        print(f"{'':<28} cost ~ N^{slope:.2f} with k = N (QR method: N^3 per step asymptotically; "
              f"small N are dominated by per-step overhead)")
    nk = args.lyap_k_n
    krows = [spectrum_cost(nk, k, 1, "cpu", args) for k in ks]
    for r in krows:
        _row(f"N = {nk}, k = {r['k']}", r, krows[0], f"k = {ks[0]}")
    q1 = next((r for r in krows if r["k"] == nk), None) or spectrum_cost(nk, nk, 1, "cpu", args)
    q5 = spectrum_cost(nk, nk, 5, "cpu", args)
    _row(f"N = {nk}, k = N, qr_every 5", q5, q1, "qr_every = 1")
    print(f"{'':<28} lambda_1 with qr_every 5 vs 1: {q5['lambda_1']:+.4f} vs {q1['lambda_1']:+.4f}")
    if "cuda" in devices:
        big = rows[-1]
        g = spectrum_cost(big["N"], big["N"], 1, "cuda", args)
        _row(f"N = {g['N']}, k = N, CUDA", g, big, "the CPU run")
        print(f"{'':<28} GPU speed-up {big['seconds'] / g['seconds']:.1f}x (peak MB on CUDA: allocated)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["train", "spectrum", "ensemble", "all"], default="all")
    p.add_argument("--ens-k", default="1,8", help="ensemble sizes of part 3 (1: the plain model)")
    p.add_argument("--ens-batch", default="32", help="batch sizes of part 3")
    p.add_argument("--ens-models", default="plrnn,shallow", help="part 3 models: plrnn (M = 100, stf), "
                   "shallow (shPLRNN M = 3, L = 100, gtf)")
    p.add_argument("--engines", default="fused,eager", help="part 3 rollouts: fused (dsrecon.fused, the default "
                   "path) and eager (autograd through every step, the baseline); the first one's rows feed the targets")
    p.add_argument("--ens-cpu-steps", type=int, default=0, help="timed steps of part 3 on the CPU (0: --steps)")
    p.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (default 1: a shared machine)")
    p.add_argument("--steps", type=int, default=40, help="timed optimiser steps at batch 32 (a quarter at batch 256)")
    p.add_argument("--seq-len", type=int, default=200, help="training subsequence length (the default config's)")
    p.add_argument("--n-data", type=int, default=20_000, help="Lorenz samples to train on")
    p.add_argument("--lyap-n", default="25,50,100,200,400", help="latent sizes N of the spectrum-cost curve (k = N)")
    p.add_argument("--lyap-k", default="1,10,30,100", help="numbers of exponents k at N = --lyap-k-n")
    p.add_argument("--lyap-k-n", type=int, default=100, help="N of the cost-against-k curve")
    p.add_argument("--lyap-steps", type=int, default=1000, help="steps of each spectrum run")
    p.add_argument("--lyap-transient", type=int, default=100, help="transient steps of each spectrum run")
    p.add_argument("--no-cuda", action="store_true", help="CPU only even when CUDA is available")
    p.add_argument("--no-fork", dest="fork", action="store_false",
                   help="run the CPU cases in this process (peak memory then only shows new highs)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available() and not args.no_cuda
    # With a CUDA device present, the first backward pass starts autograd's device threads, after which a
    # forked child cannot run autograd at all ("Unable to handle autograd's threading in combination with
    # fork-based multiprocessing", seen on an H200): measure every case in this process then.
    args.fork = args.fork and hasattr(os, "fork") and not torch.cuda.is_available()
    devices = ["cpu", "cuda"] if cuda else ["cpu"]
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if cuda else ""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s){gpu}; memory: {memory_method(args.fork)}")
    t0 = time.perf_counter()
    if args.fork:
        prime()
    if args.part in ("train", "all"):
        part_training(args, devices)
    if args.part in ("spectrum", "all"):
        part_spectrum(args, devices)
    if args.part in ("ensemble", "all"):
        part_ensemble(args, devices)
    cpu = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
              for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s wall, {cpu:.0f} s CPU (with the measuring children)\n"
          "lambda_max from data against nolds: benchmarks/bench_lyapunov.py")


if __name__ == "__main__":
    main()
