#!/usr/bin/env bash
# Re-trigger ingestion of scans already in the Folio bucket.
#
# Usage: infra/backfill.sh --bucket NAME [--prefix scans/] [--jobs 4] [--dry-run]
#
# Each current object under the prefix is copied onto itself with
# `aws s3api copy-object --metadata-directive REPLACE`, adding the user
# metadata entry folio-backfill=<UTC time>. S3 rejects a copy onto itself that
# changes nothing, and the new metadata entry is the change. The copy emits an
# ObjectCreated:Copy event, which reaches the ingest function through the same
# notification as an upload, so no other code path is needed.
#
# Why this and not the alternatives:
# - S3 Batch Operations needs a manifest, an IAM role for the job and a job to
#   watch. It pays off above a few million objects, where this loop of one
#   HeadObject and one CopyObject per object becomes slow.
# - Invoking the function with hand-made S3 events creates no new object
#   versions, but the events would lack the real sequencer that the ingest
#   function uses to order events for one key.
#
# Costs and limits: one HEAD and one COPY request per object, and the bucket
# keeps the previous version until NoncurrentVersionRetentionDays expires it.
# CopyObject handles objects up to 5 GiB; larger ones are reported as failed.
# The copy is conditional on the ETag read just before it, so an object
# replaced meanwhile is left alone (its own upload event already ingests it).
# Content type, content encoding and disposition, cache control, storage
# class and user metadata are carried over; tags are copied by S3.
#
# Needs the AWS CLI (v1 or v2) and jq. AWS_ENDPOINT_URL, AWS_PROFILE and the
# other standard AWS CLI variables apply.
set -euo pipefail

usage() {
    sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
}

bucket=""
prefix="scans/"
jobs=4
dry_run=false

while [[ $# -gt 0 ]]; do
    case "$1" in
        --bucket) bucket="${2:?--bucket needs a bucket name}"; shift 2 ;;
        --prefix) prefix="${2?--prefix needs a key prefix}"; shift 2 ;;
        --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "backfill.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

if [[ -z "$bucket" ]]; then
    echo "backfill.sh: missing --bucket. Pass the stack's BucketName output." >&2
    exit 2
fi
if [[ -z "$prefix" ]]; then
    echo "backfill.sh: empty --prefix would copy every object in the bucket. Pass the scans prefix, e.g. scans/" >&2
    exit 2
fi
if ! [[ "$jobs" =~ ^[1-9][0-9]*$ ]]; then
    echo "backfill.sh: invalid --jobs '$jobs'. Expected a positive integer." >&2
    exit 2
fi
for tool in aws jq; do
    if ! command -v "$tool" >/dev/null; then
        echo "backfill.sh: '$tool' not found on PATH. Install it first." >&2
        exit 2
    fi
done

stamp="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# Copy one object onto itself; prints "copied KEY" or "failed KEY: REASON".
copy_one() {
    local key="$1" head etag content_type metadata storage_class field value
    if ! head="$(aws s3api head-object --bucket "$BACKFILL_BUCKET" --key "$key" --output json 2>&1)"; then
        echo "failed $key: head-object: $head"
        return 1
    fi
    etag="$(jq -r '.ETag' <<<"$head")"
    content_type="$(jq -r '.ContentType // "binary/octet-stream"' <<<"$head")"
    metadata="$(jq -c --arg stamp "$BACKFILL_STAMP" '(.Metadata // {}) + {"folio-backfill": $stamp}' <<<"$head")"
    storage_class="$(jq -r '.StorageClass // "STANDARD"' <<<"$head")"

    local args=(
        --bucket "$BACKFILL_BUCKET" --key "$key"
        # The CLI URL-encodes the key part of --copy-source itself.
        --copy-source "$BACKFILL_BUCKET/$key"
        --copy-source-if-match "$etag"
        --metadata-directive REPLACE
        --metadata "$metadata"
        --content-type "$content_type"
        --storage-class "$storage_class"
    )
    # Without these, REPLACE would drop the object's current values.
    for field in CacheControl ContentDisposition ContentEncoding ContentLanguage; do
        value="$(jq -r --arg field "$field" '.[$field] // empty' <<<"$head")"
        if [[ -n "$value" ]]; then
            case "$field" in
                CacheControl) args+=(--cache-control "$value") ;;
                ContentDisposition) args+=(--content-disposition "$value") ;;
                ContentEncoding) args+=(--content-encoding "$value") ;;
                ContentLanguage) args+=(--content-language "$value") ;;
            esac
        fi
    done

    local output
    if output="$(aws s3api copy-object "${args[@]}" --output json 2>&1)"; then
        echo "copied $key"
    else
        echo "failed $key: copy-object: $output"
        return 1
    fi
}
export -f copy_one
export BACKFILL_BUCKET="$bucket" BACKFILL_STAMP="$stamp"

# The CLI pages through list-objects-v2 itself. Keys are passed on
# NUL-separated, so spaces, newlines and quotes in keys survive.
keys_file="$(mktemp)"
log_file="$(mktemp)"
trap 'rm -f "$keys_file" "$log_file"' EXIT
if ! aws s3api list-objects-v2 --bucket "$bucket" --prefix "$prefix" --query 'Contents[].Key' --output json \
    | jq -j '.[]? + "\u0000"' >"$keys_file"; then
    echo "backfill.sh: listing s3://$bucket/$prefix failed. Check the bucket name and your credentials." >&2
    exit 1
fi
total="$(tr -cd '\0' <"$keys_file" | wc -c | tr -d ' ')"
echo "backfill.sh: $total objects under s3://$bucket/$prefix (metadata folio-backfill=$stamp)"

if [[ "$dry_run" == true ]]; then
    tr '\0' '\n' <"$keys_file" | sed 's/^/would copy /'
    exit 0
fi

xargs -0 -r -n 1 -P "$jobs" bash -c 'copy_one "$1" || true' _ <"$keys_file" | tee "$log_file"
copied="$(grep -c '^copied ' "$log_file" || true)"
failed="$(grep -c '^failed ' "$log_file" || true)"
echo "backfill.sh: $copied copied, $failed failed"
[[ "$failed" -eq 0 ]]
