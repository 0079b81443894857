#!/usr/bin/env bash
# Profiles one BiT-R50x1 ONNX file per operator in tract and in
# onnxruntime, one thread, batch 1, 128x128, and compares them convolution
# by convolution. tract's times are the thread's CPU time per node, and
# onnxruntime's are wall time per node from its own profiler. Both are
# medians over the runs, so a busy machine disturbs them less than a
# whole-run timing.
#
# Usage: bench/model/profile.sh [MODEL.onnx]
#   default model: the random-weight R50x1 that run.sh writes.
# Needs: pip install onnxruntime numpy
# Environment: ITERATIONS (default 20), TOP (convolution rows, default 12).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
iterations="${ITERATIONS:-20}"
work="$root/target/bench-model"
# Release build in its own target folder, so it neither waits for nor
# invalidates the workspace's dev build. Same packages and features as
# run.sh, so the two scripts share one build.
export CARGO_TARGET_DIR="$root/target/bench-release"
mkdir -p "$work"

cd "$root"
cargo build --quiet --release -p folio-embed -p folio-bit-convert -p folio-model \
    --features folio-embed/multithread-mm \
    --example bench_embed --example profile_ops --example cold_start --bin bit-convert
bin="$CARGO_TARGET_DIR/release"

model="${1:-$work/bit-r50x1-random-seed0.onnx}"
if [[ ! -f "$model" ]]; then
    "$bin/bit-convert" random --seed 0 --units 3,4,6,3 --width 1 "$model"
fi

echo "model: $model"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/examples/profile_ops" "$model" --iterations "$iterations" --nodes > "$work/profile-tract.txt"
python3 "$root/bench/model/profile_ort.py" "$model" --iterations "$iterations" --nodes > "$work/profile-ort.txt"
grep -v '^node ' "$work/profile-tract.txt" | head -n 12
grep -v '^node ' "$work/profile-ort.txt" | head -n 12
python3 "$root/bench/model/compare_convs.py" "$work/profile-tract.txt" "$work/profile-ort.txt" --top "${TOP:-12}"
echo "per-node lines: $work/profile-tract.txt, $work/profile-ort.txt"
