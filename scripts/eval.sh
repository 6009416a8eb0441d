#!/usr/bin/env bash
# Few-shot accuracy of the box's pipeline under the standard protocols.
#   scripts/eval.sh [DATA_DIR] [extra teachbox eval options, e.g. --model PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${TEACHBOX_COIL100:-../shared/data/coil100-dev}}; shift || true
teachbox=.venv/bin/teachbox
model=(--model models/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite)
for protocol in random arc; do
    for shots in 1 5; do
        for ways in 5 all; do
            ways_opt=(); [ "$ways" = all ] || ways_opt=(--ways "$ways")
            printf '%-7s %d-shot %-4s ways: ' "$protocol" "$shots" "$ways"
            "$teachbox" --log-level warning eval --data "$data" --shots "$shots" "${ways_opt[@]}" \
                --protocol "$protocol" "${model[@]}" "$@" 2>/dev/null
        done
    done
done
