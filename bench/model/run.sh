#!/usr/bin/env bash
# Runs the model benchmark on one BiT-R50x1 ONNX file. tract runs it through
# folio-embed (dev profile, dependencies at opt-level 3) and onnxruntime runs
# the same file, each with one thread, batch 1 and 8, at 128x128. Then the
# script measures the cold start of a binary with the model linked in. It
# prints ms/image and the ratio tract / onnxruntime.
#
# Usage: bench/model/run.sh [MODEL.onnx]
#   default model: models/BiT-M-R50x1.onnx if present, else a random-weight
#   R50x1 written by bit-convert (same geometry and speed).
# Needs: pip install onnxruntime numpy
# Environment: ITERATIONS (default 20), GROUP_NORM (instance-norm or
# primitive, for the generated model).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
iterations="${ITERATIONS:-20}"
work="$root/target/bench-model"
mkdir -p "$work"

cd "$root"
# One cargo invocation, so the three crates share one feature resolution
# and tract is compiled once.
cargo build --quiet -p folio-bit-convert -p folio-embed -p folio-model \
    --bin bit-convert --example bench_embed --example cold_start
bin="$root/target/debug"

model="${1:-}"
if [[ -z "$model" ]]; then
    if [[ -f "$root/models/BiT-M-R50x1.onnx" ]]; then
        model="$root/models/BiT-M-R50x1.onnx"
    else
        model="$work/bit-r50x1-random-seed0.onnx"
        "$bin/bit-convert" random --seed 0 --units 3,4,6,3 --width 1 \
            --group-norm "${GROUP_NORM:-instance-norm}" "$model"
    fi
fi

echo "model: $model"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores)"
echo "profile: dev (workspace dependencies at opt-level 3)"

ms_per_image() { sed -n 's/.*median_ms_per_image=\([0-9.]*\).*/\1/p'; }

for batch in 1 8; do
    tract_line="$("$bin/examples/bench_embed" "$model" --batch "$batch" --iterations "$iterations")"
    ort_line="$(python3 "$root/bench/model/bench_ort.py" "$model" --batch "$batch" --threads 1 --iterations "$iterations")"
    echo "$tract_line"
    echo "$ort_line"
    tract_ms="$(ms_per_image <<< "$tract_line")"
    ort_ms="$(ms_per_image <<< "$ort_line")"
    echo "batch $batch, 1 thread: tract $tract_ms ms/image, onnxruntime $ort_ms ms/image, ratio tract/onnxruntime $(python3 -c "print(f'{$tract_ms / $ort_ms:.2f}')")"
done

# onnxruntime with 2 threads for reference; tract stays single-threaded
# because its multithreaded matrix products need the tract-linalg
# `multithread-mm` feature, which this workspace does not enable.
python3 "$root/bench/model/bench_ort.py" "$model" --batch 1 --threads 2 --iterations "$iterations"

echo "cold start (process launch to first vector, linked model):"
for run in 1 2 3; do
    launch_ns="$(date +%s%N)"
    output="$("$bin/examples/cold_start")"
    first_ns="$(sed -n 's/^first_vector_unix_ns: //p' <<< "$output")"
    echo "  run $run: $(( (first_ns - launch_ns) / 1000000 )) ms total;" \
         "$(grep -E '^(load_ms|first_inference_ms)' <<< "$output" | tr '\n' ' ')"
done
grep '^model:' <<< "$output"
ls -l "$bin/examples/cold_start" | awk '{printf "binary size: %.0f MB\n", $5 / 1e6}'
