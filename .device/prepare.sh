#!/usr/bin/env bash
# Here, before a GPU call: make the working tree ready to travel for RUN[+RUN...].
#
#   bash .device/prepare.sh RUN[+RUN...]
#
# Writes each new run's config.yaml from the workflow config (.device/plan.py config), records the
# commit the device will name in its provenance (.device/commit; refuses uncommitted code), fetches
# the NetKet wheels if .whl/ is empty (.device/wheels.sh), and moves the committed snapshots of
# every other run out of the tree (to $HIDE, listed in .device/hidden.txt) so the tree stays under
# the call's 64 MiB. `bash .device/back.sh DIR` (or `bash .device/restore.sh`) puts them back:
# never commit while hidden.txt exists.
set -euo pipefail
cd "$(dirname "$0")/.."
IFS=+ read -r -a runs <<< "${1:?RUN[+RUN...]}"
HIDE=${HIDE:-/tmp/vitnqs-hidden}
[[ ! -e .device/hidden.txt ]] || bash .device/restore.sh
if [[ -n $(git status --porcelain --untracked-files=no -- . ':(exclude)results') ]]; then
    echo "prepare.sh: commit the code first: the device records .device/commit as its code" >&2
    git status --short --untracked-files=no -- . ':(exclude)results' >&2
    exit 1
fi
for run in "${runs[@]}"; do python3 .device/plan.py config "$run"; done
git rev-parse HEAD > .device/commit
compgen -G ".whl/*.whl" > /dev/null || bash .device/wheels.sh

keep=$(printf 'results/runs/%s/\n' "${runs[@]}")
git ls-files 'results/runs/*/snapshots/*' | grep -v -F "$keep" > .device/hidden.txt || true
while read -r f; do mkdir -p "$HIDE/$(dirname "$f")"; mv "$f" "$HIDE/$f"; done < .device/hidden.txt
echo "hid $(wc -l < .device/hidden.txt) snapshots in $HIDE"
tree=$({ git ls-files -z; git ls-files -z --others --exclude-standard; } \
    | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s}' || true)
carried=$(du -scb .whl .device | tail -n 1 | cut -f1)
echo "travels: tree $((tree >> 20)) MiB + carried .whl, .device $((carried >> 20)) MiB (limit 64)"
