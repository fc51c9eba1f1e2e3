#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md ("On a GPU"), in one sitting of at most DEADLINE_S seconds:
#   1. seed 000's Allen-Cahn `paper` preset (200K steps, batch 4096, ~265K parameters), uniform
#      sampler, stopped by train.time_budget_s if it cannot finish in the time left;
#   2. derivative throughput of seed 000's network (fused / nested jvps / nested reverse);
#   3. the peers table (adapinn, jinns, DeepXDE) at 2000 steps, one round;
#   4. the Laplacian operators (benchmarks/operators.py) at d = 10 ... 10000.
# Float32 matrix products at full precision (no TF32), as seed 000's PyTorch runs had.
#
#     bash benchmarks/gpu_suite.sh OUT_DIR [DEADLINE_S] [AC_BUDGET_S]
#
# Writes eight files into OUT_DIR: suite.log, machine.txt, ac_summary.json, ac_metrics.jsonl,
# throughput.txt, peers.md, peers.json, operators.txt.
set -u
out=${1:?usage: gpu_suite.sh OUT_DIR [DEADLINE_S] [AC_BUDGET_S]}
deadline=$(( $(date +%s) + ${2:-570} ))
ac_budget=${3:-330}
work=$(mktemp -d)
mkdir -p "$out"
export PYTHONUNBUFFERED=1 JAX_DEFAULT_MATMUL_PRECISION=highest DDE_BACKEND=pytorch
here=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
left() { echo $(( deadline - $(date +%s) )); }
log() { echo "[$(date +%T), $(left) s left] $*" | tee -a "$out/suite.log"; }

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import jax, equinox, optax; print('jax', jax.__version__, 'equinox',
equinox.__version__, 'optax', optax.__version__, jax.devices())"
  nproc; } > "$out/machine.txt" 2>&1
cat "$out/machine.txt" >> "$out/suite.log"

log "1. Allen-Cahn paper preset, uniform, time budget ${ac_budget} s"
timeout $(( ac_budget + 150 )) python3 -c "from adapinn.cli import main; main()" run allen_cahn \
    --preset paper --set train.time_budget_s="$ac_budget" --out "$work/ac_paper" --no-progress \
    >> "$out/suite.log" 2>&1
log "Allen-Cahn exit $?"
cp "$work/ac_paper/summary.json" "$out/ac_summary.json" 2>/dev/null
cp "$work/ac_paper/metrics.jsonl" "$out/ac_metrics.jsonl" 2>/dev/null

log "2. derivative throughput"
timeout $(( $(left) > 120 ? 90 : $(left) / 2 )) python3 "$here/benchmarks/derivative_throughput.py" \
    --batch 4096 --steps 50 > "$out/throughput.txt" 2>&1
log "throughput exit $?"

log "3. peers at 2000 steps"
per_run=$(( ($(left) - 10) / 6 ))
timeout $(( $(left) - 5 )) python3 "$here/benchmarks/peers.py" --setups burgers1d,ns2d_c \
    --steps 2000 --rounds 1 --frameworks adapinn,jinns,deepxde --python-peers python3 \
    --adapinn-init uniform_fan_in --timeout "$per_run" --out "$out/peers.md" \
    --json "$out/peers.json" >> "$out/suite.log" 2>&1
log "peers exit $?"

log "4. Laplacian operators, d = 10 ... 10000"
timeout $(( $(left) - 3 )) python3 "$here/benchmarks/operators.py" --repeats 5 \
    > "$out/operators.txt" 2>&1
log "operators exit $?"
