#!/usr/bin/env bash
# Check the SAM template offline: cfn-lint on template.yaml, then the pytest
# suite in tests/template. The suite compares IAM with access.json and the
# environment with the code, lints the SAM-expanded template, checks the
# sample events and runs infra/backfill.sh against moto's S3 server on
# 127.0.0.1.
#
# Usage: infra/check-template.sh [extra pytest arguments]
#
# The Python tools are pinned in infra/requirements.txt and installed into a
# virtualenv outside the repository: $FOLIO_TEMPLATE_VENV, by default
# ~/.cache/folio/template-venv. It is rebuilt when requirements.txt changes.
# Also needs python3 (3.11 or later, for tomllib) and jq (for backfill.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$root/infra/requirements.txt"
venv="${FOLIO_TEMPLATE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/folio/template-venv}"
stamp="$venv/requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
    echo "check-template.sh: installing $requirements into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$wanted" >"$stamp"
fi

echo "check-template.sh: cfn-lint $("$venv/bin/cfn-lint" --version | cut -d' ' -f2) on template.yaml"
"$venv/bin/cfn-lint" "$root/template.yaml"

cd "$root"
# The venv's bin comes first so that backfill.sh finds its aws and moto_server.
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest tests/template -q -rs "$@"
