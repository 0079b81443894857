#!/usr/bin/env bash
# Downloads Google's BiT-M-R50x1 checkpoint, verifies its SHA-256, converts
# it to ONNX and places it at models/BiT-M-R50x1.onnx, where folio-model's
# build script links it. Rebuild afterwards (`cargo build`) to link it.
#
# Usage:
#   infra/fetch-model.sh                      download from Google's bucket
#   infra/fetch-model.sh --from-file PATH     use a local copy of the .npz
#   options: --models-dir DIR (default: models/ at the workspace root)
#            --sha256 HEX     (expected hash; default: models/BiT-M-R50x1.sha256)
#
# The converter runs through `cargo run -p folio-bit-convert` unless the
# environment variable BIT_CONVERT names a built `bit-convert` binary.
set -euo pipefail

readonly URL="https://storage.googleapis.com/bit_models/BiT-M-R50x1.npz"
readonly NAME="BiT-M-R50x1"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models_dir="$root/models"
from_file=""
expected=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --from-file) from_file="$2"; shift 2 ;;
        --models-dir) models_dir="$2"; shift 2 ;;
        --sha256) expected="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown option $1; see --help" >&2; exit 2 ;;
    esac
done

mkdir -p "$models_dir"
npz="$models_dir/$NAME.npz"
onnx="$models_dir/$NAME.onnx"
hash_file="$models_dir/$NAME.sha256"
partial="$npz.partial"
trap 'rm -f "$partial" "$onnx.partial"' EXIT

if [[ -n "$from_file" ]]; then
    echo "using local checkpoint $from_file"
    cp "$from_file" "$partial"
else
    echo "downloading $URL"
    curl --fail --location --retry 3 --output "$partial" "$URL"
fi

actual="$(sha256sum "$partial" | cut -d' ' -f1)"
if [[ -z "$expected" && -f "$hash_file" ]]; then
    expected="$(cut -d' ' -f1 < "$hash_file")"
fi
if [[ -n "$expected" ]]; then
    if [[ "$actual" != "$expected" ]]; then
        echo "error: sha256 mismatch for $NAME.npz: expected $expected, got $actual;" \
             "the download is corrupt or the file changed upstream (delete $hash_file only if you trust the new file)" >&2
        exit 1
    fi
    echo "sha256 verified: $actual"
else
    # NOTE: Google publishes no checksum for BiT-M-R50x1.npz, so the first
    # download's hash is recorded (trust on first use) and every later
    # download must match it. Commit the .sha256 file to pin it.
    echo "$actual  $NAME.npz" > "$hash_file"
    echo "warning: no expected sha256; recorded $actual in $hash_file" >&2
fi
mv "$partial" "$npz"

if [[ -n "${BIT_CONVERT:-}" ]]; then
    convert=("$BIT_CONVERT")
else
    convert=(cargo run --quiet --manifest-path "$root/Cargo.toml" -p folio-bit-convert --bin bit-convert --)
fi
"${convert[@]}" convert "$npz" "$onnx.partial" --name "$NAME"
mv "$onnx.partial" "$onnx"

echo "placed $onnx; run 'cargo build' so folio-model links it"
