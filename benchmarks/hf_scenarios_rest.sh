#!/usr/bin/env bash
# The hf scenarios the other GPU scripts left out (bf16, eager, 8-bit), each through `runner launch
# --executor process` with synthetic Llama-2-7B-shaped weights (output forced to NEW tokens), one batch of
# BATCH documents after a full-shape warm-up. 8-bit materializes its random checkpoint once (cache below).
# A short check that each executes on the card, not a throughput study: one timed call per scenario.
#
#   GPU:  OUT=/tmp/out bash benchmarks/hf_scenarios_rest.sh [WHEEL_DIR]
#   CPU:  MODEL=tiny-llama GPU=cpu IMAGE=cpu BNB_IMAGE=cpu NEW=8 BATCH=2 SCENARIOS="bf16 eager" \
#         OUT=/tmp/out bash benchmarks/hf_scenarios_rest.sh
set -u
OUT=${OUT:?set OUT to a folder for the logs and run folders}
MODEL=${MODEL:-llama-2-7b} GPU=${GPU:-h200} IMAGE=${IMAGE:-hf} BNB_IMAGE=${BNB_IMAGE:-hf-bnb}
NEW=${NEW:-300} BATCH=${BATCH:-16} SCENARIOS=${SCENARIOS:-bf16 eager 8-bit} PER_RUN=${PER_RUN:-150}
mkdir -p "$OUT"
site=
if [ -n "${1:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$1"/*.whl || exit 1
  site=:/tmp/site
fi
export PYTHONPATH=$PWD$site SUMBENCH_SYNTHETIC_CACHE=${SUMBENCH_SYNTHETIC_CACHE:-/tmp/sumbench-synthetic}
summary=$OUT/summary.txt
for scenario in $SCENARIOS; do
  image=$IMAGE
  [ "$scenario" = 8-bit ] || [ "$scenario" = 4-bit ] && image=$BNB_IMAGE
  t0=$(date +%s)
  timeout "$PER_RUN" python3 -m runner launch --executor process --gpu "$GPU" --image "$image" \
    --model "$MODEL" --synthetic-weights --scenario "$scenario" --data data/howto-sample.jsonl \
    --batch-size "$BATCH" --limit "$BATCH" --max-new-tokens "$NEW" --results "$OUT/runs" \
    --run-id "$scenario-bs$BATCH" > "$OUT/$scenario.log" 2>&1
  echo "$scenario rc=$? $(($(date +%s) - t0))s" >> "$summary"
done
python3 benchmarks/summarize_runs.py "$OUT/runs" >> "$summary"
cat "$summary"
