#!/usr/bin/env bash
# Issue 14's new hf paths on one GPU, kept short: `runner model synthetic llama-2-7b`, then sdpa-flash
# (batch 1, and batch 2 forced past the rule to show the kernel's refusal), hf-compile (a last batch
# smaller than the warmed one), 4-bit from --synthetic-weights, and default beside them, each through
# `runner launch --executor process --gpu h200`. Not the full check (study files do that): a smoke run.
#
# Usage, from the repository root on the GPU machine:
#   OUT=out-dir bash benchmarks/hf_scenarios_smoke.sh [WHEEL_DIR]
# WHEEL_DIR: wheels of what that machine's Python lacks (pydantic, docker, nltk, rouge-score,
# bitsandbytes, ...), installed offline first.
set -u
OUT=${OUT:?set OUT to a folder for the logs and run folders}
GPU=${GPU:-h200}
W=${WEIGHTS_DIR:-/tmp/llama-2-7b-random}
mkdir -p "$OUT"
site=
if [ -n "${1:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$1"/*.whl || exit 1
  site=:/tmp/site
fi
export PYTHONPATH=$PWD$site SUMBENCH_SYNTHETIC_CACHE=/tmp/sumbench-synthetic
summary=$OUT/summary.txt
t=$(date +%s)
timeout 300 python3 -m runner model synthetic llama-2-7b "$W" --force > "$OUT/synthetic.log" 2>&1
echo "model-synthetic rc=$? $(($(date +%s) - t))s" >> "$summary"

run() {
  local name=$1
  shift
  local t0
  t0=$(date +%s)
  timeout 240 python3 -m runner launch --executor process --gpu "$GPU" --data data/howto-sample.jsonl \
    --results "$OUT/runs" --run-id "$name" "$@" > "$OUT/$name.log" 2>&1
  echo "$name rc=$? $(($(date +%s) - t0))s" >> "$summary"
}
run sdpa-flash-bs1 --image hf --model "$W" --scenario sdpa-flash --batch-size 1 --limit 4 --max-new-tokens 64
run hf-compile-bs4 --image hf --model "$W" --scenario hf-compile --batch-size 4 --limit 10 --max-new-tokens 64
run 4bit-synthetic --image hf-bnb --model llama-2-7b --synthetic-weights --scenario 4-bit --batch-size 4 \
  --limit 4 --max-new-tokens 32
run default-bs4 --image hf --model "$W" --scenario default --batch-size 4 --limit 8 --max-new-tokens 64
run sdpa-flash-bs2-forced --image hf --model "$W" --scenario sdpa-flash --batch-size 2 --limit 2 \
  --max-new-tokens 8 --force
python3 benchmarks/summarize_runs.py "$OUT/runs" >> "$summary"
cat "$summary"
