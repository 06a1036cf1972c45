#!/usr/bin/env bash
# Landmark ∞-AE on a one-GPU machine: one prepared run of a few minutes.
#
#   bash benchmarks/gpu_scale.sh [OUT_DIR]          (default OUT_DIR: benchmarks/results)
#
# Needs Python with jax (any release from the pinned 0.5.3 to current ones: the code path imports no
# neural-tangents and goes through infae_kit.jax_compat for the APIs that moved), numpy, scipy and tqdm.
# 1. Versions and devices.
# 2. The same small landmark ∞-AE fit + λ selection on the GPU and on the CPU (JAX_PLATFORMS=cpu): test metrics
#    and scores must agree (gpu_check.json).
# 3. benchmarks/bench_scale.py unchanged on the GPU: fit time and peak RSS against users at m = 2,000 on a
#    synthetic dataset (scale-synthetic-gpu.json). Sizes: GPU_SCALE_USERS (default 7500,15000,30000,60000).
set -euo pipefail
OUT=${1:-benchmarks/results}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export INFAE_RUNS_DIR=${INFAE_RUNS_DIR:-/tmp/infae_gpu_runs}
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
USERS=${GPU_SCALE_USERS:-7500,15000,30000,60000}
POOL_USERS=${USERS##*,}
CHECK_USERS=${GPU_CHECK_USERS:-3000}

echo "== 1. versions and devices"
$PY -c "import jax, numpy, scipy, platform; print('python', platform.python_version(), '· jax', jax.__version__, '· numpy', numpy.__version__, '· scipy', scipy.__version__); print('backend', jax.default_backend(), jax.devices())"

echo "== 2. GPU against CPU on the same problem ($CHECK_USERS users)"
cat > "$INFAE_RUNS_DIR.check.py" <<'PYEOF'
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, jax
from infae_kit.data import build_rec_dataset, make_synthetic
from infae_kit.models.landmark import tune_and_evaluate_landmark
from infae_kit.scale.sharding import ShardedEngine
n_users, out = int(sys.argv[1]), sys.argv[2]
data = build_rec_dataset(make_synthetic(n_users=n_users, n_items=600, mean_interactions=40, seed=1), name="synthetic", seed=1)
t = time.perf_counter()
rep = tune_and_evaluate_landmark(data, landmarks=500, selection="uniform", block_users=1024, engine=ShardedEngine(), progress=False)
seconds = time.perf_counter() - t
np.save(out + ".npy", rep.model.predict(data.train_val()[:500]))
json.dump({"backend": jax.default_backend(), "device": jax.devices()[0].device_kind, "seconds": seconds,
           "best_lambda": rep.best_lambda, "test": rep.test_metrics}, open(out + ".json", "w"))
PYEOF
mkdir -p "$INFAE_RUNS_DIR"
$PY "$INFAE_RUNS_DIR.check.py" "$CHECK_USERS" "$INFAE_RUNS_DIR/check-default"
JAX_PLATFORMS=cpu $PY "$INFAE_RUNS_DIR.check.py" "$CHECK_USERS" "$INFAE_RUNS_DIR/check-cpu"
$PY - "$INFAE_RUNS_DIR" "$OUT/gpu_check.json" <<'PYEOF'
import json, sys
import numpy as np
from infae_kit.io_utils import atomic_write_json
runs, out = sys.argv[1], sys.argv[2]
dev, cpu = (json.load(open(f"{runs}/check-{k}.json")) for k in ("default", "cpu"))
a, b = (np.load(f"{runs}/check-{k}.npy") for k in ("default", "cpu"))
diff = float(np.abs(a - b).max() / np.abs(b).max())
metric_diff = {k: dev["test"][k] - cpu["test"][k] for k in cpu["test"]}
ok = dev["best_lambda"] == cpu["best_lambda"] and diff < 1e-4 and max(abs(v) for v in metric_diff.values()) < 0.05
atomic_write_json(out, {"device": dev, "cpu": cpu, "max_relative_score_difference": diff,
                        "test_metric_difference": metric_diff, "agree": ok})
print(f"{dev['backend']} ({dev['device']}) {dev['seconds']:.1f} s vs cpu {cpu['seconds']:.1f} s; "
      f"max relative score difference {diff:.2e}; λ {dev['best_lambda']:g} vs {cpu['best_lambda']:g}; agree: {ok}")
print("test metric differences:", {k: round(v, 5) for k, v in metric_diff.items()})
PYEOF

echo "== 3. fit time and peak RSS against users (m = 2,000)"
$PY benchmarks/bench_scale.py --dataset synthetic --dataset-option "n_users=$POOL_USERS" --dataset-option n_items=3000 \
    --dataset-option mean_interactions=60 --landmarks "${GPU_SCALE_LANDMARKS:-2000}" --users "$USERS" \
    --out "$OUT" --tag=-gpu
