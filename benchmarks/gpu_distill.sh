#!/usr/bin/env bash
# DISTILL-CF seconds per step on a one-GPU machine, through the same code path as on CPU
# (benchmarks/bench_distill.py -> infae_kit.distill.loop.make_step): Magazine and ML-1M full batch, and a
# synthetic matrix of netflix-shape-small's size (50,000 users over ML-1M's 3,706 items, ML-1M's density;
# the registered netflix-shape-small when the kit has it) streamed in batches of 4,096 users; μ = 500,
# γ ∈ {200, 500}, τ = 10, 5 timed steps after the compilation step. A few minutes in all.
#
#   benchmarks/gpu_distill.sh [OUT_DIR]        (default: $OUT if set, else benchmarks/results)
#
# Writes distill-<dataset>-gpu.json per dataset (s/step, first step, peak host RSS, the device, the draws kept for
# the backward pass: set INFAE_SAMPLER_MEMORY_MB above its 1,024 MiB default to keep more) and gpu.log.
# Data: $INFAE_DATA_DIR, else ./local_data if present (copy magazine/ and ml-1m/ from the data folder there
# and carry it to the GPU machine), else ../shared/data. Needs jax with a GPU backend, optax, scipy, h5py,
# threadpoolctl, tqdm (not neural-tangents, papermill or jupytext).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-benchmarks/results}}
mkdir -p "$out"
python=${PYTHON:-python3}
if [[ -z "${INFAE_DATA_DIR:-}" && -d local_data ]]; then export INFAE_DATA_DIR=$PWD/local_data; fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{
    nvidia-smi -L || true
    "$python" -c 'import jax, numpy, optax; print("jax", jax.__version__, "numpy", numpy.__version__, "optax", optax.__version__, jax.devices())'
    for dataset in magazine ml-1m; do
        "$python" benchmarks/bench_distill.py --dataset "$dataset" --gammas 200 500 --noise hash --tau 10 --steps 5 \
            --out "$out" --suffix=-gpu
    done
    if "$python" -c 'from infae_kit.data import load_dataset; load_dataset("netflix-shape-small")' 2>/dev/null; then
        large=netflix-shape-small
    else
        large=synthetic-like:ml-1m:50000
    fi
    "$python" benchmarks/bench_distill.py --dataset "$large" --gammas 200 500 --noise hash --tau 10 --steps 5 \
        --batch-size 4096 --out "$out" --suffix=-gpu
} 2>&1 | tee "$out/gpu.log"
