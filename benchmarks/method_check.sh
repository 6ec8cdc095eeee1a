#!/usr/bin/env bash
# Issue 15's GPU check: the worker's docs/s after a full warm-up against the bare generate() loop
# (benchmarks/yardstick.py) on the same card, model and shape, then --batch-size auto with the worker's
# allocator default (AUTO_DOCS documents: one call at the plan's batch; AUTO_WARMUP short by default, as
# the memory check needs no second full call). Writes under $OUT: the run folders, yardstick.json, check.log.
#
#   GPU:  OUT=/tmp/out benchmarks/method_check.sh
#   CPU:  MODEL=.cache/tiny-llama GPU=cpu DEVICE=cpu DTYPE=float32 SCENARIO=fp32 IMAGE=cpu NEW=16 \
#         BATCH=4 DOCS=12 AUTO=0 OUT=/tmp/out benchmarks/method_check.sh
#
# Needs torch, transformers and sumbench's host packages (pydantic, rouge-score, ...): WHEELS=DIR installs
# them offline first. Synthetic weights force every output to NEW tokens.
set -euo pipefail
MODEL=${MODEL:-llama-2-7b} GPU=${GPU:-h200} DEVICE=${DEVICE:-cuda} DTYPE=${DTYPE:-float16}
SCENARIO=${SCENARIO:-default} IMAGE=${IMAGE:-hf} NEW=${NEW:-300} BATCH=${BATCH:-32} DOCS=${DOCS:-96}
AUTO=${AUTO:-1} AUTO_DOCS=${AUTO_DOCS:-224} AUTO_WARMUP=${AUTO_WARMUP:-short} OUT=${OUT:?set OUT}
export PYTHONPATH=$PWD
mkdir -p "$OUT"
exec > >(tee -a "$OUT/check.log") 2>&1
if [[ -n "${WHEELS:-}" ]]; then python3 -m pip install -q --no-index --no-deps "$WHEELS"/*.whl; fi

# The bundled documents repeated under new ids, so a batch of 32 and three batches exist.
DATA="$OUT/docs.jsonl"
python3 - "$DATA" "$((DOCS > AUTO_DOCS ? DOCS : AUTO_DOCS))" <<'EOF'
import json, sys
from pathlib import Path
lines = [json.loads(x) for x in Path("data/howto-sample.jsonl").read_text().splitlines() if x.strip()]
n = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
    for i in range(n):
        record = dict(lines[i % len(lines)], id=f"doc-{i:04d}")
        f.write(json.dumps(record) + "\n")
EOF

common=(--model "$MODEL" --synthetic-weights --image "$IMAGE" --gpu "$GPU" --scenario "$SCENARIO"
        --data "$DATA" --max-new-tokens "$NEW" --results "$OUT/runs")
echo "== worker, batch $BATCH, $DOCS documents, --warmup full"
python3 -m runner launch "${common[@]}" --batch-size "$BATCH" --limit "$DOCS" --run-id "bs$BATCH" || true
echo "== bare generate() loop, batch $BATCH"
python3 benchmarks/yardstick.py --model "$MODEL" --synthetic-weights --device "$DEVICE" --dtype "$DTYPE" \
    --data "$DATA" --limit "$DOCS" --batch-size "$BATCH" --calls 3 --max-new-tokens "$NEW" --out "$OUT/yardstick.json"
python3 - "$OUT" "$BATCH" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
bare = json.loads((out / "yardstick.json").read_text())
result = json.loads((out / "runs" / f"bs{sys.argv[2]}" / "result.json").read_text())
m = result["metrics"]
worker = m["docs_per_second"]
print(json.dumps({
    "worker_docs_per_second": worker, "worker_calls": [b["seconds"] for b in m["batches"]],
    "warmup_seconds": m["warmup_seconds"], "end_to_end_seconds": m["end_to_end_seconds"],
    "bare_settled_docs_per_second": bare["settled_docs_per_second"], "bare_calls": bare["call_seconds"],
    "worker_over_bare": worker / bare["settled_docs_per_second"],
    "ttft_s": m["time_to_first_token_s"], "tpot_s": m["time_per_output_token_s"],
}, indent=2))
EOF
if [[ "$AUTO" == 1 ]]; then
  echo "== worker, --batch-size auto, $AUTO_DOCS documents"
  # A memory check: the first timed call at the plan's batch runs at the full output length anyway.
  python3 -m runner launch "${common[@]}" --batch-size auto --limit "$AUTO_DOCS" --warmup "$AUTO_WARMUP" \
      --run-id auto || true
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); b=r['batching']; m=r['metrics']; print(json.dumps({'status': r['status'], 'planned_max': b['planned_max'], 'final': b['final'], 'oom_events': len(b['oom_events']), 'docs_per_second': m['docs_per_second'], 'peak_reserved': m['peak_memory_bytes'], 'peak_allocated': m['peak_memory_allocated_bytes'], 'settings': r['environment']['settings']}, indent=2))" "$OUT/runs/auto/result.json"
fi
