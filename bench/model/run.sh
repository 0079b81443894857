#!/usr/bin/env bash
# Runs the model benchmark on one BiT-R50x1 ONNX file. tract runs it through
# folio-embed (release build, the profile deployed code uses) and
# onnxruntime runs the same file, at 128x128: one thread at batch 1 and 8,
# then two threads at batch 1. Each configuration runs ROUNDS times, tract
# and onnxruntime back to back, and the script prints the medians over the
# rounds of both runtimes' median ms/image and the ratio tract /
# onnxruntime. Then it measures the cold start of a binary with the model
# linked in.
#
# One-thread rows also give the thread's CPU time per image, and the ratio
# is printed for both. On a machine shared with other jobs the CPU time
# moves far less than wall time, because waiting for a core is not counted.
#
# Usage: bench/model/run.sh [MODEL.onnx]
#   default model: models/BiT-M-R50x1.onnx if present, else a random-weight
#   R50x1 written by bit-convert (same geometry and speed).
# Needs: pip install onnxruntime numpy
# Environment: ITERATIONS (timed runs per measurement, default 20), ROUNDS
# (default 3), GROUP_NORM (instance-norm or primitive, for the generated
# model).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
iterations="${ITERATIONS:-20}"
rounds="${ROUNDS:-3}"
work="$root/target/bench-model"
# Release build in its own target folder, so it neither waits for nor
# invalidates the workspace's dev build (whose dependencies keep debug
# assertions, which slow tract down). tract-linalg's `multithread-mm`
# feature is on for the two-thread rows; one-thread rows keep tract's
# default single-thread executor.
export CARGO_TARGET_DIR="$root/target/bench-release"
mkdir -p "$work"

cd "$root"
cargo build --quiet --release -p folio-embed -p folio-bit-convert -p folio-model \
    --features folio-embed/multithread-mm \
    --example bench_embed --example profile_ops --example cold_start --bin bit-convert
bin="$CARGO_TARGET_DIR/release"

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
echo "profile: release; $rounds rounds of $iterations timed runs"

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{ values[NR] = $1 } END { print values[int((NR + 1) / 2)] }'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

for config in "1 1" "8 1" "1 2"; do
    read -r batch threads <<< "$config"
    tract_log="$work/run-tract-b$batch-t$threads.txt"
    ort_log="$work/run-ort-b$batch-t$threads.txt"
    : > "$tract_log"
    : > "$ort_log"
    for _ in $(seq "$rounds"); do
        "$bin/examples/bench_embed" "$model" --batch "$batch" --threads "$threads" \
            --iterations "$iterations" | tee -a "$tract_log"
        python3 "$root/bench/model/bench_ort.py" "$model" --batch "$batch" --threads "$threads" \
            --iterations "$iterations" | tee -a "$ort_log"
    done
    tract_ms="$(field median_ms_per_image < "$tract_log" | median)"
    ort_ms="$(field median_ms_per_image < "$ort_log" | median)"
    summary="batch $batch, $threads thread(s), load average $(cut -d' ' -f1 /proc/loadavg):"
    summary+=" wall tract $tract_ms onnxruntime $ort_ms ms/image, ratio $(ratio "$tract_ms" "$ort_ms")"
    if [[ "$threads" == 1 ]]; then
        tract_cpu="$(field median_cpu_ms_per_image < "$tract_log" | median)"
        ort_cpu="$(field median_cpu_ms_per_image < "$ort_log" | median)"
        summary+="; CPU tract $tract_cpu onnxruntime $ort_cpu ms/image, ratio $(ratio "$tract_cpu" "$ort_cpu")"
    fi
    echo "$summary"
done

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
