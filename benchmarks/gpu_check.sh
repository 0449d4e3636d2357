#!/usr/bin/env bash
# The prepared GPU check (issue 14, part 3): one script of at most ~9 minutes on a machine with an NVIDIA GPU.
#
#   bash benchmarks/gpu_check.sh OUTDIR        # OUTDIR receives gpu_check.log, bench.txt, bench_ensemble.txt,
#                                              # parity.json, fit/*
#
# 0. The fused rollout (dsrecon.fused, the default path of the PLRNN family) on CUDA: states and gradients against
#    autograd through the eager rollout (tests/test_fused.py -k on_device).
# 1. CPU/CUDA parity: the same PLRNN, seed and 50 STF steps on both devices; the loss histories must agree to
#    float32 precision over the first steps (chaos makes later steps drift apart, so only the first 10 are bounded).
# 2. Training throughput (benchmarks/bench_performance.py --part train): steps/s on the CPU and on CUDA, batch 32
#    and 256, the GPU/CPU ratio printed by the benchmark itself.
# 3. Ensembles (issue 14 parts 1 and 3): (a) steps/s of the default PLRNN for K = 1 and K = 64 members at batch
#    32 and 256 on CUDA and on the CPU (2 threads, few steps), per-member speed-up (bench_performance.py --part
#    ensemble); (b) device syncs per training step of a K = 64 ensemble on CUDA (torch's sync debug mode: a sync
#    inside the time loop would show ~200 per step); (c) `dsrecon fit lorenz --ensemble 2 --device cuda` end to end.
# 4. The main job on CUDA: `dsrecon fit lorenz --tau auto --device cuda` with the default settings except the
#    number of steps (FIT_STEPS, default 1500: on an H200 the default PLRNN trains at ~16 steps/s, so the default
#    15000 steps would take ~16 min, more than one device command may run), its wall time and its scores.
#
# Time limits per part (the whole script stays under 9 minutes): 0: 45 s, 1: 80 s, 2: 100 s, 3: 150 + 40 + 70 s, 4: 190 s.
#
# Without a GPU it stops at once and says so. On a machine without the package's dependencies, install them
# first (wheels of netCDF4, cftime, pooch, platformdirs, nolds in .whl/: see /work/.library/device/README.md).
set -uo pipefail
OUT=${1:?usage: gpu_check.sh OUTDIR}
mkdir -p "$OUT/fit"
exec > >(tee "$OUT/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1
# PARTS: which parts to run, in the script's order (default all); e.g. PARTS="3a 3b 4" when device time is short
part() { [[ " ${PARTS:-0 1 2 3a 3b 3c 4} " == *" $1 "* ]]; }
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: torch sees no CUDA GPU')" || exit 2
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), 'CPU threads', torch.get_num_threads())"

if part 0; then
echo "== 0. the fused rollout on CUDA against autograd through the eager one (tests/test_fused.py)"
timeout 45 python3 -m pytest -q -p no:cacheprovider tests/test_fused.py -k "on_device" -o addopts=""
echo "fused exit $?"
fi

if part 1; then
echo "== 1. CPU/CUDA parity (50 STF steps, PLRNN M=100)"
timeout 80 python3 - "$OUT/parity.json" <<'EOF'
import json, sys, time
import numpy as np
import dsrecon as ds
from dsrecon.config import TrainConfig
from dsrecon.train import train_loop as fit

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

fi

if part 2; then
echo "== 2. training throughput, CPU vs CUDA"
timeout 100 python3 benchmarks/bench_performance.py --part train --threads 8 --steps 20 | tee "$OUT/bench.txt"
echo "bench exit $?"

fi

if part 3a; then
echo "== 3a. ensembles: default PLRNN, K = 1 and 64, batch 32 and 256, CUDA and CPU (2 threads)"
timeout 150 python3 benchmarks/bench_performance.py --part ensemble --ens-models plrnn --ens-k 1,64 \
    --ens-batch 32,256 --threads 2 --steps 20 --ens-cpu-steps 4 --engines fused | tee "$OUT/bench_ensemble.txt"
echo "ensemble bench exit $?"

fi

if part 3b; then
echo "== 3b. device syncs per training step of a K = 64 ensemble on CUDA (none may be per time step)"
timeout 40 python3 - "${SYNC_DEVICE:-cuda}" <<'EOF'
import sys
import warnings
import torch
import dsrecon as ds
from dsrecon.config import TrainConfig
from dsrecon.train import train_loop as fit

dev = sys.argv[1]
x = ds.data.as_array(ds.load("lorenz"))[:20000]
def syncs(method, steps):
    """Device syncs of one fit of `steps` steps, setup included (moving 64 members to the GPU syncs ~320 times)."""
    cfg = TrainConfig(steps=steps, validate_every=0, device=dev, method=method, checkpoint_every=10**9)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        if dev == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        fit(ds.Ensemble(ds.PLRNN(3, 100, seed=0), 64), x, tau=25, config=cfg, progress=False)
        if dev == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    return [str(v.message).splitlines()[0] for v in w if "synchroniz" in str(v.message)]


for method in ("stf", "gtf"):
    syncs(method, 2)   # warm-up
    a, b = syncs(method, 5), syncs(method, 10)
    per_step = (len(b) - len(a)) / 5   # the setup's syncs cancel; what is left is per training step
    print(f"{method}: {per_step:.1f} device syncs per training step of seq_len 200 ({len(a)} in a 5-step fit, "
          f"{len(b)} in a 10-step fit, setup included)"
          + ("" if per_step <= 20 else " -- MORE THAN 20 PER STEP: a sync inside the time loop?"))
    for s in sorted(set(b))[:5]:
        print("   ", s[:160])
EOF
echo "sync check exit $?"

fi

if part 3c; then
echo "== 3c. dsrecon fit lorenz --ensemble 2 --device cuda (small budget, end to end)"
rm -rf /tmp/gpu-ens
timeout 70 python3 -m dsrecon.cli fit lorenz --ensemble 2 --tau auto --device cuda --steps 100 --t-gen 5000 \
    --set train.validate_every=50 --set train.val_len=2000 --out /tmp/gpu-ens --quiet
echo "ensemble fit exit $?"
grep -A4 "member  seed" /tmp/gpu-ens/train.log | sed 's/^[0-9-]* [0-9:,]* INFO //' || true
mkdir -p "$OUT/fit-ensemble" && cp /tmp/gpu-ens/metrics.json /tmp/gpu-ens/train.log "$OUT/fit-ensemble/" 2>/dev/null

fi

if part 4; then
echo "== 4. dsrecon fit lorenz --tau auto --device cuda --steps ${FIT_STEPS:-1500}"
rm -rf /tmp/gpu-fit
t0=$(date +%s)
timeout 190 python3 -m dsrecon.cli fit lorenz --tau auto --device cuda --steps "${FIT_STEPS:-1500}" --out /tmp/gpu-fit --quiet
echo "fit exit $? wall $(( $(date +%s) - t0 )) s"
for f in metrics.json train.log attractor.png spectra.png; do cp /tmp/gpu-fit/$f "$OUT/fit/" 2>/dev/null; done
python3 -c "
import json; m = json.load(open('/tmp/gpu-fit/metrics.json'))
print({k: m.get(k) for k in ('D_stsp', 'D_H', 'PSC', 'T_gen', 'tau', 'noise_floor', 'train_seconds', 'steps')})" || true
fi
