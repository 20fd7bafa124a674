#!/usr/bin/env bash
# On the GPU machine: train runs for a time slice, analyse the ones that finish, pack for return.
#
#   bash .device/train.sh SECONDS RUN[+RUN...]
#
# Each run trains with `vitnqs train` (from src/, NetKet from the carried .whl/) until it finishes
# or SECONDS - RESERVE have passed since the start; then SIGTERM makes it checkpoint the step under
# way and stop (the next call continues from there). A run that finishes gets the analysis jobs
# the workflow wants of it (.device/plan.py analyses) if ANALYSE_MIN seconds are left. Everything
# each run wrote, its checkpoint included, goes to $OUT/runs.tgz; new XLA compilations to
# $OUT/jaxcache.tgz (carried back in with the next call).
#
# Environment: GPUS   one GPU index per run (default: run i on GPU i modulo the GPUs seen; runs
#                     sharing a GPU split its memory evenly);
#              RESERVE seconds kept for packing (default 30); ANALYSE_MIN (default 150);
#              CONFIGS workflow config files (default config/config.yaml), RESULTS the
#              results folder they name (default results).
set -uo pipefail
start=$SECONDS
budget=${1:?SECONDS}
IFS=+ read -r -a runs <<< "${2:?RUN[+RUN...]}"
cd "$(dirname "$0")/.."
reserve=${RESERVE:-30}
analyse_min=${ANALYSE_MIN:-150}
read -r -a configs <<< "${CONFIGS:-config/config.yaml}"
config_args=()
for c in "${configs[@]}"; do config_args+=(--config "$c"); done
OUT=${OUT:?OUT: the folder whose files come back}
results=${RESULTS:-results}

if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="$PWD/src:/tmp/site"
else
    export PYTHONPATH="$PWD/src"
fi
export PYTHONUNBUFFERED=1
if [[ -s .device/commit ]]; then export VITNQS_GIT_COMMIT=$(cat .device/commit); fi
export JAX_COMPILATION_CACHE_DIR=/tmp/jaxcache
mkdir -p "$JAX_COMPILATION_CACHE_DIR"
if [[ -f .device/jaxcache.tgz ]]; then tar xzf .device/jaxcache.tgz -C "$JAX_COMPILATION_CACHE_DIR"; fi
touch /tmp/jaxcache.stamp

if command -v nvidia-smi > /dev/null; then
    n_gpus=$(nvidia-smi -L | wc -l)
    nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
else
    n_gpus=1
fi
if [[ -n "${GPUS:-}" ]]; then read -r -a gpus <<< "$GPUS"; else
    gpus=(); for i in "${!runs[@]}"; do gpus+=($((i % n_gpus))); done
fi
(( ${#gpus[@]} == ${#runs[@]} )) || { echo "GPUS names ${#gpus[@]} GPUs for ${#runs[@]} runs"; exit 2; }

one_run() {  # run gpu sharing
    local run=$1 gpu=$2 sharing=$3 dir=$results/runs/$1
    export CUDA_VISIBLE_DEVICES=$gpu VITNQS_RUNS_ON_GPU=$sharing  # the device name says "shared by N runs"
    if (( sharing > 1 )); then
        export XLA_PYTHON_CLIENT_MEM_FRACTION=$(python3 -c "print(round(0.9 / $sharing, 3))")
    fi
    local left=$(( budget - reserve - (SECONDS - start) ))
    if (( left < 60 )); then echo "[$run] ${left} s left: not started"; return 0; fi
    echo "[$run] GPU $gpu (sharing with $((sharing - 1))), ${left} s to train"
    timeout -s TERM -k 60 "$left" python3 -m vitnqs.cli train "$dir/config.yaml" "$dir" --quiet
    echo "[$run] train exited with $?; last step: $(tail -n 1 "$dir/history.csv" | cut -c1-80)"
    [[ -f $dir/summary.json ]] || return 0
    for job in $(python3 .device/plan.py analyses "$run" "${config_args[@]}"); do
        left=$(( budget - reserve - (SECONDS - start) ))
        if (( left < analyse_min )); then echo "[$run] $job left for the next call"; continue; fi
        timeout -s KILL "$left" python3 -m vitnqs.cli analyse "$job" "$dir" "${config_args[@]}"
        echo "[$run] $job exited with $?"
    done
}

for i in "${!runs[@]}"; do
    sharing=0
    for g in "${gpus[@]}"; do [[ $g == "${gpus[i]}" ]] && sharing=$((sharing + 1)); done
    one_run "${runs[i]}" "${gpus[i]}" "$sharing" > "$OUT/${runs[i]}.log" 2>&1 &
done
wait
cat "$OUT"/*.log

paths=()
for run in "${runs[@]}"; do
    paths+=("$results/runs/$run")
    for f in "$results"/analysis/*/"$run".*; do [[ -e $f ]] && paths+=("$f"); done
done
tar czf "$OUT/runs.tgz" "${paths[@]}"
(cd "$JAX_COMPILATION_CACHE_DIR" && find . -type f -newer /tmp/jaxcache.stamp > /tmp/jaxcache.new
 if [[ -s /tmp/jaxcache.new ]]; then tar czf "$OUT/jaxcache.tgz" -T /tmp/jaxcache.new; fi)
ls -l "$OUT"
echo "call took $((SECONDS - start)) s of $budget"
