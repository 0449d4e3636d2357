"""Time per training step of the default fit on a many-channel recording, at the sizes of before and after issue 22
part 2 ("Sizes from the data"): the shPLRNN the default fit builds (M = max(N, 10) without the data; M = max(10,
min(N, d, 16)) from the data's linear dimension d), as the default 4-candidate ensemble, gtf, batch 32, 50-step
windows, validation off (its cost is measured by the CLI runs in docs/defaults.md).

    python benchmarks/bench_sizes.py /tmp/sizes/mix64.npy --steps 100
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
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x = np.load(a.file)
    x = x[: int(0.8 * len(x))]
    x = (x - x.mean(0)) / x.std(0)
    N = x.shape[1]
    cfg = TrainConfig(steps=a.steps, validate_every=0, early_stop=0, halving=0, ensemble=a.members)
    for label, data in (("before (no data)", None), ("after (from the data)", x)):
        model = build_model(ModelConfig(), N, method="gtf", data=data)
        print(f"{label}: {sizes_note(ModelConfig(), N, None if data is None else linear_dimension(x))}")
        if a.members > 1:
            model = init_observation(Ensemble(model, a.members), data)
        t = time.perf_counter()
        train_loop(model, x, config=cfg, progress=False, candidates=a.members > 1)
        dt = (time.perf_counter() - t) / a.steps
        print(f"  {dt * 1e3:.1f} ms per step ({a.members} members); 10^4 steps: {dt * 1e4 / 60:.1f} min of training")


if __name__ == "__main__":
    main()
