#!/usr/bin/env bash
# DISTILL-CF s/step of the paper's released code (noveens/distill_cf) side by side with the kit's, on this
# machine, in one interleaved process pair (ours, theirs, ours, theirs, ...): full batch, μ = 500, γ = 200,
# τ = 10, steps timed with block_until_ready, validation excluded, median of the timed steps (after one
# compilation step each). Writes the "side_by_side" section of benchmarks/results/distill-<dataset>.json.
#
#   benchmarks/paper_code_distill.sh CHECKOUT [DATASET ...]        (default datasets: magazine ml-1m)
#
# CHECKOUT is a checkout of https://github.com/noveens/distill_cf (MIT; its Python files are enough: the data
# comes from the kit's data folder, ../shared/data or $INFAE_DATA_DIR, through a scratch directory). This
# script fetches nothing and copies nothing of it into the repo: benchmarks/paper_code_worker.py imports its
# modules from CHECKOUT, with shims for the JAX and NumPy calls that no longer exist (sym_pos, numpy.in1d).
# Set STEPS (default 6) for more timed steps, PYTHON for another interpreter (default: .venv/bin/python).
set -euo pipefail
if [[ $# -lt 1 || ! -f "$1/model.py" || ! -f "$1/distill.py" ]]; then
    echo "usage: $0 PATH_TO_distill_cf_CHECKOUT [DATASET ...]   (the folder holding model.py and distill.py)" >&2
    exit 2
fi
checkout=$(cd "$1" && pwd)
shift
if [[ $# -eq 0 ]]; then datasets=(magazine ml-1m); else datasets=("$@"); fi
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
uptime
for dataset in "${datasets[@]}"; do
    PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" "$python" "$here/benchmarks/bench_distill.py" --dataset "$dataset" \
        --paper-code "$checkout" --gammas 200 --noise hash --budget 500 --tau 10 --steps "${STEPS:-6}"
done
uptime
