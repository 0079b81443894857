#!/usr/bin/env bash
# Benchmark folio-clusters PCA + k-means against scikit-learn on the same synthetic vectors.
#
# Usage: bench/clusters/run.sh [ROWS...]   (default: 10000 100000)
# Needs: python3 with scikit-learn, numpy and threadpoolctl (pip install scikit-learn numpy).
# Environment: K (default 16), N_INIT (default 35), WORK (default /tmp/folio-clusters-bench),
# SKIP_BUILD=1 to skip the cargo build.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
k="${K:-16}"
n_init="${N_INIT:-35}"
work="${WORK:-/tmp/folio-clusters-bench}"
if [ $# -eq 0 ]; then
    set -- 10000 100000
fi
mkdir -p "$work"

# The workspace dev profile compiles dependencies (faer, linfa) with opt-level 3.
# SKIP_BUILD=1 reuses the binary already built, for when other builds hold the cargo lock.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --quiet --manifest-path "$root/Cargo.toml" -p folio-clusters --example bench_clusters
fi
bench="$root/target/debug/examples/bench_clusters"

lscpu | grep 'Model name' | sed 's/  */ /g'
echo "cores: $(nproc), k=$k, n_init=$n_init"

for rows in "$@"; do
    vectors="$work/vectors-$rows.npy"
    [ -f "$vectors" ] || "$bench" generate "$rows" "$vectors"
    rust_line="$("$bench" fit "$vectors" "$k" "$n_init")"
    echo "$rust_line"
    # OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, when set on this machine, slow numpy's BLAS;
    # unset both for the peer run only.
    python_line="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 "$root/bench/clusters/sklearn_peer.py" "$vectors" "$k" "$n_init")"
    echo "$python_line"
    RUST="$rust_line" PYTHON="$python_line" python3 - <<'PY'
import json, os
rust, python = json.loads(os.environ["RUST"]), json.loads(os.environ["PYTHON"])
for stage in ("pca_s", "kmeans_s"):
    print(f"  {stage}: folio {rust[stage]:.2f} s, sklearn {python[stage]:.2f} s, folio/sklearn {rust[stage] / python[stage]:.2f}")
print(f"  peak: folio {rust['peak_mib']:.0f} MiB, sklearn {python['peak_mib']:.0f} MiB, ratio {rust['peak_mib'] / python['peak_mib']:.2f}")
print(f"  pca dims: folio {rust['pca_dims']}, sklearn {python['pca_dims']}; inertia folio/sklearn {rust['inertia'] / python['inertia']:.4f}")
PY
done
