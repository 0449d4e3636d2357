"""What a compiled time loop would buy the default PLRNN's training step (issue 14, the ≥ 50 %-of-peak target).

``dsrecon.fused`` runs the PLRNN's two time loops from Python: the forward step (3 operations: ``addcmul``,
``clamp_min``, ``addmm``) and the adjoint step λ ↦ g + Aλ + (λW) ⊙ D (3 operations), 200 steps each per training
step. This benchmark times exactly those loops (the kernel methods of ``dsrecon.fused``, default PLRNN M = 100,
batch 32, 200 steps, float32, one thread) three ways, in the same run:

- *python*: the fused path as it is (baseline);
- *torch.compile*: the same operations in segments of 25 steps (the forcing interval of the benchmark's STF runs),
  unrolled and compiled by inductor (its compile time is printed: it recurs per shape and segment length);
- *C++*: the same ATen operations called from C++ (``torch.utils.cpp_extension.load_inline``; skipped when no C++
  compiler is found), i.e. no Python between operations.

It then times the whole fused training step (``bench_performance.ensemble_throughput``) and projects it with each
loop replaced: step − python loops + compiled loops, and the projected share of the measured matmul peak. The
loops are the part of the step a compiled loop changes; the products, the weight gradients, the loss and the
optimiser stay as they are.

    python benchmarks/bench_compiled_loop.py            # ~1-2 min (most of it compiling)
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_performance as bp   # noqa: E402

from dsrecon import fused   # noqa: E402
from dsrecon.models import PLRNN   # noqa: E402

CPP = r"""
#include <torch/extension.h>
// The loops of dsrecon.fused's PLRNN kernel, operation for operation, with no Python between the operations.
void forward(at::Tensor A, at::Tensor W, at::Tensor h, at::Tensor z0, at::Tensor Z, at::Tensor R) {
  auto Wt = W.t();
  at::Tensor z = z0;
  for (int64_t t = 0; t < Z.size(0); ++t) {
    auto r = R[t];
    at::clamp_min_out(r, z, 0);
    auto zn = Z[t];
    at::addcmul_out(zn, h, A, z);
    zn.addmm_(r, Wt);
    z = zn;
  }
}
void backward(at::Tensor A, at::Tensor W, at::Tensor D, at::Tensor G, at::Tensor Lam) {
  for (int64_t j = Lam.size(0) - 1; j >= 1; --j) {
    auto out = Lam[j - 1];
    auto lam = Lam[j];
    at::addcmul_out(out, G[j - 1], A, lam);
    out.addcmul_(at::mm(lam, W), D[j]);
  }
}
"""


def timed(fn, reps: int) -> float:
    """ms per call, CPU time of this (single-threaded) process, after 3 warm-up calls."""
    for _ in range(3):
        fn()
    t0 = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - t0) / reps * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=100, help="timed calls of each loop")
    p.add_argument("--steps", type=int, default=40, help="timed training steps of the whole fused step")
    p.add_argument("--segment", type=int, default=25, help="steps per compiled segment (torch.compile)")
    args = p.parse_args()
    torch.set_num_threads(1)
    T, batch, seg = 200, 32, args.segment
    model = PLRNN(3, seed=0)
    kern = fused._PLRNNKernel()
    with torch.no_grad():
        params = [getattr(model, n).detach() for n in kern.names]
        A, W, h = params
        z0 = torch.randn(batch, model.latent_dim)
        G = torch.randn(T, batch, model.latent_dim) * 1e-3
        D = (torch.rand(T, batch, model.latent_dim) > 0.5).float()
        Ds = D.unbind(0)
        cache = {"Ds": Ds}

        def py_forward():
            kept, z = kern.keep(params, z0, T), z0
            for t in range(T):
                z = kern.step_keeping(params, z, t, kept)
            return z

        def py_backward():
            Lam = torch.empty_like(G)
            Lams, Gs = Lam.unbind(0), G.unbind(0)
            Lams[T - 1].copy_(Gs[T - 1])
            for j in range(T - 1, 0, -1):
                kern.vjp_add(params, Lams[j], j, cache, Gs[j - 1], 1.0, Lams[j - 1])
            return Lam

        def seg_forward(A, W, h, z, n: int):
            zs, rs = [], []
            for _ in range(n):
                r = torch.clamp_min(z, 0)
                z = torch.addmm(torch.addcmul(h, A, z), r, W.mT)
                zs.append(z)
                rs.append(r)
            return torch.stack(zs), torch.stack(rs)

        def seg_backward(A, W, lam, G, D):
            """λ at the segment's steps j0..j1-1 from λ at j1 (zero after the last step), G[j0:j1], D[j0+1:j1+1]."""
            lams = []
            for j in range(G.shape[0] - 1, -1, -1):
                lam = torch.addcmul(torch.addcmul(G[j], A, lam), lam @ W, D[j])
                lams.append(lam)
            return torch.stack(lams[::-1])

        rows = {"python": (timed(py_forward, args.reps), timed(py_backward, args.reps), None)}
        ref = (py_forward(), py_backward()[0])   # z_T and λ_1, which every variant must reproduce
        agree = {}
        print(f"default PLRNN M = {model.latent_dim}, batch {batch}, {T} steps, float32, 1 thread; ms per loop "
              f"of {T} steps (CPU time), ratios against python in this run")

        t0 = time.perf_counter()
        cf = torch.compile(seg_forward, dynamic=False, fullgraph=True)
        cb = torch.compile(seg_backward, dynamic=False, fullgraph=True)
        cf(A, W, h, z0, seg)
        Dn = torch.cat([D, torch.zeros_like(D[:1])])   # D at step j + 1 pairs with G at step j; none after T
        cb(A, W, G[-1], G[:seg], Dn[1:seg + 1])
        compile_s = time.perf_counter() - t0

        def tc_forward():
            z = z0
            for _ in range(T // seg):
                Z, _ = cf(A, W, h, z, seg)
                z = Z[-1]
            return z

        def tc_backward():
            lam = torch.zeros_like(G[-1])
            for j1 in range(T, 0, -seg):
                lam = cb(A, W, lam, G[j1 - seg:j1], Dn[j1 - seg + 1:j1 + 1])[0]
            return lam

        rows["torch.compile"] = (timed(tc_forward, args.reps), timed(tc_backward, args.reps),
                                 f"compile {compile_s:.0f} s for one shape")
        agree["torch.compile"] = (tc_forward(), tc_backward())
        if shutil.which("c++") or shutil.which("g++"):
            from torch.utils.cpp_extension import load_inline
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as build:
                ext = load_inline("dsrecon_bench_loop", cpp_sources=CPP, functions=["forward", "backward"],
                                  extra_cflags=["-O2"], build_directory=build)
                build_s = time.perf_counter() - t0
                Z, R, Lam = torch.empty(T, batch, model.latent_dim), torch.empty_like(G), torch.empty_like(G)

                def cpp_backward():
                    Lam[T - 1].copy_(G[T - 1])
                    ext.backward(A, W, D, G, Lam)

                rows["C++ (ATen)"] = (timed(lambda: ext.forward(A, W, h, z0, Z, R), args.reps),
                                      timed(cpp_backward, args.reps), f"build {build_s:.0f} s")
                agree["C++ (ATen)"] = (Z[-1].clone(), Lam[0].clone())
        else:
            print("C++: skipped (no C++ compiler on PATH)")

    for name, (z, lam) in agree.items():   # the same loops: states and adjoints equal to float32 rounding
        err = max(float((z - ref[0]).abs().max() / ref[0].abs().max()),
                  float((lam - ref[1]).abs().max() / ref[1].abs().max()))
        print(f"{name}: largest relative difference from python {err:.1e}")
        if err > 1e-4:
            sys.exit(f"{name} does not compute the loops of dsrecon.fused (difference {err:.1e}): its timing "
                     f"would mean nothing")
    x = bp.lorenz(20000)
    step = bp.ensemble_throughput("plrnn", 1, batch, "cpu", args.steps, x, T)
    peak = bp.matmul_peak("cpu")
    flops = bp.step_flops(model, batch, T)
    py_loops = sum(rows["python"][:2])
    print(f"{'loops':<14} {'forward':>8} {'backward':>8} {'ratio':>6}  {'projected step':>14} {'% of peak':>9}")
    for name, (f, b, note) in rows.items():
        projected = step["ms_per_step"] - py_loops + f + b
        print(f"{name:<14} {f:8.2f} {b:8.2f} {py_loops / (f + b):5.2f}x  {projected:11.1f} ms "
              f"{100 * flops / (projected / 1e3) / 1e9 / peak:8.1f}%" + (f"  ({note})" if note else ""))
    print(f"the whole fused training step (path {step['path']}): {step['ms_per_step']:.1f} ms measured, "
          f"{100 * step['gflops'] / peak:.1f}% of the measured peak {peak:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
