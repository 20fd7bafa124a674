#!/usr/bin/env bash
# Here, after a GPU call: restore the hidden snapshots, unpack what the call returned, keep its
# new XLA compilations for the next call, and show where each run stands.
#
#   bash .device/back.sh FILES_AT      (the folder the run tool names as files_at)
set -euo pipefail
cd "$(dirname "$0")/.."
from=${1:?FILES_AT}
bash .device/restore.sh
tar xzf "$from/runs.tgz"
if [[ -f $from/jaxcache.tgz ]]; then  # merge the new compilations into the carried cache
    cache=$(mktemp -d)
    if [[ -f .device/jaxcache.tgz ]]; then tar xzf .device/jaxcache.tgz -C "$cache"; fi
    tar xzf "$from/jaxcache.tgz" -C "$cache"
    tar czf .device/jaxcache.tgz -C "$cache" .
    rm -rf "$cache"
    echo "XLA cache to carry: $(( $(stat -c %s .device/jaxcache.tgz) >> 20 )) MiB"
fi
for run in $(tar tzf "$from/runs.tgz" | sed -n 's#^results/runs/\([^/]*\)/config.yaml$#\1#p'); do
    printf '%s: ' "$run"
    if [[ -f results/runs/$run/summary.json ]]; then
        python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print('finished', s['energy_per_site'], s.get('relative_error'))" "results/runs/$run/summary.json"
    else
        echo "step $(tail -n 1 "results/runs/$run/history.csv" | cut -d, -f1-2)"
        # a run whose last word was a stop on a non-finite value: say so (failed/ keeps such runs)
        tail -n 1 "results/runs/$run/train.log" | grep -o 'stopped: non-finite.*' | sed 's/^/    /' || true
    fi
done
git status --short results | head -20
