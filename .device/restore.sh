#!/usr/bin/env bash
# Put back the snapshots .device/prepare.sh moved out of the tree (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
HIDE=${HIDE:-/tmp/vitnqs-hidden}
[[ -e .device/hidden.txt ]] || exit 0
while read -r f; do [[ -e "$HIDE/$f" ]] && mv "$HIDE/$f" "$f"; done < .device/hidden.txt
git ls-files --deleted 'results/runs/*/snapshots/*' | grep . && { echo "restore.sh: still missing" >&2; exit 1; }
rm .device/hidden.txt
echo "restored"
