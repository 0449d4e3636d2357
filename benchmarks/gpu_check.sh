#!/usr/bin/env bash
# The prepared GPU check (issue 14, part 3): one script of at most ~9 minutes on a machine with an NVIDIA GPU.
#
#   bash benchmarks/gpu_check.sh OUTDIR        # OUTDIR receives gpu_check.log, bench.txt, parity.json, fit/*
#
# 1. CPU/CUDA parity: the same PLRNN, seed and 50 STF steps on both devices; the loss histories must agree to
#    float32 precision over the first steps (chaos makes later steps drift apart, so only the first 10 are bounded).
# 2. Training throughput (benchmarks/bench_performance.py --part train): steps/s on the CPU and on CUDA, batch 32
#    and 256, the GPU/CPU ratio printed by the benchmark itself.
# 3. The main job on CUDA: `dsrecon fit lorenz --tau auto --device cuda` with the default settings except the
#    number of steps (FIT_STEPS, default 2000: on an H200 the default PLRNN trains at ~16 steps/s, so the default
#    15000 steps would take ~16 min, more than one device command may run), its wall time and its scores.
#
# Without a GPU it stops at once and says so. On a machine without the package's dependencies, install them
# first (wheels of netCDF4, cftime, pooch, platformdirs, nolds in .whl/: see /work/.library/device/README.md).
set -uo pipefail
OUT=${1:?usage: gpu_check.sh OUTDIR}
mkdir -p "$OUT/fit"
exec > >(tee "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: torch sees no CUDA GPU')" || exit 2
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), 'CPU threads', torch.get_num_threads())"

echo "== 1. CPU/CUDA parity (50 STF steps, PLRNN M=100)"
timeout 120 python3 - "$OUT/parity.json" <<'EOF'
import json, sys, time
import numpy as np
import dsrecon as ds
from dsrecon.config import TrainConfig
from dsrecon.train import fit

x = ds.data.as_array(ds.load("lorenz"))[:20000]
res = {}
for dev in ["cpu", "cuda"]:
    cfg = TrainConfig(steps=50, validate_every=0, device=dev)
    t0 = time.perf_counter()
    r = fit(ds.PLRNN(3, 100, seed=0), x, tau=25, config=cfg, progress=False)
    res[dev] = {"loss": [float(v) for v in r.history["loss"]], "seconds": time.perf_counter() - t0}
a, b = np.array(res["cpu"]["loss"]), np.array(res["cuda"]["loss"])
rel = np.abs(a - b) / np.abs(a)
res["max_rel_diff_first10"] = float(rel[:10].max())
res["max_rel_diff_all"] = float(rel.max())
print(json.dumps({k: v for k, v in res.items() if k.startswith("max")}), "seconds",
      {d: round(res[d]["seconds"], 2) for d in ("cpu", "cuda")})
json.dump(res, open(sys.argv[1], "w"), indent=1)
if res["max_rel_diff_first10"] > 1e-3:
    sys.exit("parity: CPU and CUDA losses differ by more than 1e-3 in the first 10 steps")
EOF
echo "parity exit $?"

echo "== 2. training throughput, CPU vs CUDA"
timeout 200 python3 benchmarks/bench_performance.py --part train --threads 8 --steps 40 | tee "$OUT/bench.txt"
echo "bench exit $?"

echo "== 3. dsrecon fit lorenz --tau auto --device cuda --steps ${FIT_STEPS:-2000}"
rm -rf /tmp/gpu-fit
t0=$(date +%s)
timeout 300 python3 -m dsrecon.cli fit lorenz --tau auto --device cuda --steps "${FIT_STEPS:-2000}" --out /tmp/gpu-fit --quiet
echo "fit exit $? wall $(( $(date +%s) - t0 )) s"
for f in metrics.json train.log attractor.png spectra.png; do cp /tmp/gpu-fit/$f "$OUT/fit/" 2>/dev/null; done
python3 -c "
import json; m = json.load(open('/tmp/gpu-fit/metrics.json'))
print({k: m.get(k) for k in ('D_stsp', 'D_H', 'PSC', 'T_gen', 'tau', 'noise_floor', 'train_seconds', 'steps')})" || true
