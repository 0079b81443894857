#!/usr/bin/env bash
# Measure the cosine similarity of near-duplicate page pairs against all other pairs with the
# model linked into `folio`, to choose ClusterParams::near_duplicate_threshold.
#
# Usage: bench/clusters/near_duplicate_threshold.sh [SCANS_FOLDER [GROUPS_CSV]]
#   SCANS_FOLDER defaults to the corpus folder beside the workspace (../shared/corpus).
#   GROUPS_CSV defaults to groups.csv inside it, with columns path,group,kind, read as
#   near_duplicate_threshold.py describes.
# Needs: python3 with numpy and pyarrow (both in infra/requirements-test.txt).
# Environment: STORE (default: a new temporary folder, removed afterwards), SKIP_BUILD=1 to
# reuse target/debug/folio, JSON=1 to print JSON.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
scans="${1:-$root/../shared/corpus}"
groups="${2:-$scans/groups.csv}"
[ -d "$scans" ] || { echo "scans folder $scans not found: pass the folder of scans as the first argument" >&2; exit 2; }
[ -f "$groups" ] || { echo "groups file $groups not found: pass a path,group,kind CSV as the second argument" >&2; exit 2; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --quiet --manifest-path "$root/Cargo.toml" --workspace
fi

if [ -n "${STORE:-}" ]; then
    store="$STORE"
else
    store="$(mktemp -d)"
    trap 'rm -rf "$store"' EXIT
fi
"$root/target/debug/folio" --store "$store" ingest --quiet "$scans" >&2
python3 "$root/bench/clusters/near_duplicate_threshold.py" "$store" "$groups" ${JSON:+--json}
