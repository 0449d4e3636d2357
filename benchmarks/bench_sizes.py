"""Time per training step of the default fit on a many-channel recording, at the sizes of before and after issue 22
part 2 ("Sizes from the data"): the shPLRNN the default fit builds (M = max(N, 10) without the data; M = max(10,
min(N, d, 16)) from the data's linear dimension d), as the default 4-candidate ensemble, gtf, batch 32, 50-step
windows, validation off, one torch thread; CPU time per step, which a loaded machine does not inflate.

    python benchmarks/bench_sizes.py /tmp/sizes/mix64x8.npy --steps 100 --before-steps 20
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dsrecon.config import ModelConfig, TrainConfig, sizes_note
from dsrecon.dimension import init_observation, linear_dimension
from dsrecon.ensemble import Ensemble
from dsrecon.experiment import build_model
from dsrecon.train import train_loop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--before-steps", type=int, default=None, help="steps timed at the old sizes (default --steps; 0: none)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = np.load(a.file)
    x = x[: int(0.8 * len(x))]
    x = (x - x.mean(0)) / x.std(0)
    N = x.shape[1]
    cases = (("before (no data)", None), ("after (from the data)", x))
    for label, data in cases[1:] if a.before_steps == 0 else cases:
        steps = a.steps if data is not None or a.before_steps is None else a.before_steps
        model = build_model(ModelConfig(), N, method="gtf", data=data)
        print(f"{label}: {sizes_note(ModelConfig(), N, None if data is None else linear_dimension(x))}")
        if a.members > 1:
            model = init_observation(Ensemble(model, a.members), data)
        cfg = TrainConfig(steps=steps, validate_every=0, early_stop=0, halving=0, ensemble=a.members)
        t, c = time.perf_counter(), time.process_time()
        train_loop(model, x, config=cfg, progress=False, candidates=a.members > 1)
        dt, dc = (time.perf_counter() - t) / steps, (time.process_time() - c) / steps
        print(f"  {steps} steps, {a.members} members: {dt * 1e3:.0f} ms wall, {dc * 1e3:.0f} ms CPU per step; 10^4 "
              f"steps: {dc * 1e4 / 60:.1f} min of CPU time")


if __name__ == "__main__":
    main()
