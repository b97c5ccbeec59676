#!/usr/bin/env bash
# GPU check of issue 10, one script: ViT-B-16, batch 256, bf16 autocast, strategies CLIP and FLIP (mask 0.5),
# on one GPU: samples/s and MFU of the project's trainer (runners.train.train_step / train) and of
# open_clip_train (train_one_epoch / main) — loader alone, step alone, end to end — side by side.
#
#   bash benchmarks/gpu_check.sh                 # writes $OUT/gpu-{clip,flip}.json (OUT defaults to a temp dir)
#   PYTHON=/path/to/python bash benchmarks/gpu_check.sh
#
# Needs: the project's environment (bash scripts/setup.sh: torch with CUDA, open_clip_torch, webdataset) and
# one CUDA GPU. Training data: Fashion-MNIST shards when Debian's dataset-fashion-mnist is installed, else
# random 28 px images in the same shard format (the transforms resize to 224 px either way).
# MFU = 3 × analytic forward FLOPs per sample (budget.flops, FLIP-adjusted) × samples/s ÷ the dense bf16
# peak of the GPU torch names (budget.hardware.gpu_from_device_name). Goal (issue 10): MFU ≥ 0.45 for CLIP
# on an H100/H200-class GPU; step and end to end ≥ 1.0× open_clip_train.
# Sized for ~6 minutes of device time on an H100/H200 (each part's subprocesses run one after the other).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
NCPU=$(nproc)
WORKERS=$(( NCPU >= 14 ? 12 : (NCPU > 3 ? NCPU - 2 : 2) ))
THREADS=4
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee "$OUT/nvidia-smi.txt" || true
PYTHONPATH=. "$PY" - <<'PY' | tee "$OUT/device.txt"
import torch
from budget.hardware import gpu_from_device_name
assert torch.cuda.is_available(), "no CUDA device: this is the GPU check"
name = torch.cuda.get_device_name()
gpu = gpu_from_device_name(name)
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}: {name!r} -> "
      f"{gpu.name + f' (dense bf16 peak {gpu.peak_bf16_tflops} TFLOP/s)' if gpu else 'not in budget.hardware: no MFU'}")
PY
SHARDS="$OUT/data/shards"
for strategy in clip flip; do
    echo "== ViT-B-16 $strategy, batch 256, amp_bf16, $WORKERS workers, $THREADS threads"
    ARGS=(--device cuda --model ViT-B-16 --batch 256 --precision amp_bf16 --strategy "$strategy"
          --workers "$WORKERS" --threads "$THREADS" --steps 20 --warmup-steps 5 --samples 5120
          --repeats 1 --json "$OUT/gpu-$strategy.json")
    if [ -d "$SHARDS" ]; then ARGS+=(--shards "$SHARDS"); fi
    timeout 420 "$PY" benchmarks/bench_train_throughput.py "${ARGS[@]}" 2>&1 | tee "$OUT/gpu-$strategy.txt"
    if [ ! -d "$SHARDS" ]; then  # keep the first run's shards for the second
        built=$(ls -d /tmp/clipbudget-bench-*/data/shards 2>/dev/null | head -1 || true)
        if [ -n "$built" ]; then mkdir -p "$OUT/data" && cp -r "$built" "$SHARDS"; fi
    fi
done
echo "results: $OUT"
