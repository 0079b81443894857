#!/usr/bin/env bash
# Runs every test of the workspace. It first installs what the tests use
# and this machine lacks:
# - Python tools from infra/requirements-test.txt: moto_server (the
#   S3-compatible server each S3 test binary starts on 127.0.0.1), pyarrow
#   and duckdb (read shards as a data scientist would), cfn-lint and
#   pytest (deployment template checks), cargo-lambda (runs the function
#   binaries through the Lambda runtime API);
# - libtiff-tools from Debian (tiffcp/tiffinfo), the reference that CCITT
#   pages are compared with pixel for pixel, jq for infra/backfill.sh, and
#   chromium, which opens the cluster report the way a user would.
# Then: cfn-lint and the template tests (infra/check-template.sh, in their
# own virtualenv), and cargo test over the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing test tools"
python3 -m pip install --quiet --disable-pip-version-check -r infra/requirements-test.txt
missing=()
command -v tiffcp >/dev/null || missing+=(libtiff-tools)
command -v jq >/dev/null || missing+=(jq)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "note: ${missing[*]} missing and this is not root; the tests that need them will skip"
    fi
fi
# Where this script can install the tools, a missing tool fails its tests
# instead of letting them skip.
if [ "$(id -u)" = 0 ]; then
    export FOLIO_REQUIRE_CHROMIUM=1
fi
# pip installed cargo-lambda above, so its test must not skip.
export FOLIO_REQUIRE_CARGO_LAMBDA=1

echo "== deployment template"
./infra/check-template.sh

echo "== cargo test"
cargo test --workspace --no-fail-fast
