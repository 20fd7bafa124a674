# Config validation, the run grid, and the get_* helpers every rule file uses.
#
# At parse time the config is checked against config/schema.yaml (in the Snakefile) and every
# run is built with vitnqs.config.RunConfig.from_dict, so a bad value stops the workflow before
# any job, with a message naming the key.

import glob
import os
import re
import sys

from snakemake.utils import min_version

from vitnqs.analysis_jobs import provenance_path
from vitnqs.code_inputs import code_files
from vitnqs.config import ConfigError
from vitnqs.gpus import visible_gpus
from vitnqs.workflow_config import build_benchmark_runs, build_run_grid, runs_unlike_their_folders

min_version("9.0")

try:
    GRID = build_run_grid(config)
except ConfigError as error:
    sys.exit(f"Invalid workflow config: {error}")

RESULTS = config["results"]

BENCHMARK_DEFAULTS = {"label": "gpu", "steps": 3, "baseline_chunk": 2000, "runs": []}
BENCHMARK = {**BENCHMARK_DEFAULTS, **config.get("benchmark", {})}
"""Settings of workflow/rules/benchmark.smk; `runs` is a list of blocks as in `groups`."""
try:
    BENCHMARK_RUNS = build_benchmark_runs(config, BENCHMARK["runs"])
except ConfigError as error:
    sys.exit(f"Invalid workflow config: {error}")
"""Run id -> RunConfig of each benchmarked configuration."""
"""Root folder of runs, tables and figures ("results"; "results-quick" for config/quick.yaml)."""

RUNS = GRID.runs
"""Run id -> RunConfig, for every run of every group."""

_STALE = runs_unlike_their_folders(GRID, RESULTS)
if _STALE:
    sys.exit(
        "Runs on disk were trained with other settings than the workflow config now gives them, "
        "so tables would show them as what they are not:\n  " + "\n  ".join(_STALE) + "\n"
        "Change the config back, or give the new settings a protocol of their own (new run ids); "
        "to retrain a run under the new settings, move its folder away."
    )

RUN_CONFIGS = {run_id: run_config.to_dict() for run_id, run_config in RUNS.items()}
"""Run id -> config mapping of every run: the params of the rules that read run records."""

GROUPS = GRID.groups
"""Group name (table1, fig2, ...) -> its run ids."""

wildcard_constraints:
    run="|".join(re.escape(run_id) for run_id in RUNS) or "no-runs",
    bench="|".join(re.escape(run_id) for run_id in BENCHMARK_RUNS) or "no-benchmarks",

# One training job per GPU: unless the command line or a profile sets the limit, it is the
# number of visible GPUs. Without GPUs training runs on the CPU, limited by --cores.
GPUS = visible_gpus()
if "gpu" not in workflow.global_resources and GPUS:
    workflow.register_resource("gpu", len(GPUS))


def runs_where(**filters):
    """Run ids whose RunConfig fields equal the filters, e.g. runs_where(L=6, n_layers=1, J2=0.5)."""
    return GRID.where(**filters)


def runs_selected_by(name, filters):
    """The runs that the config filter `name` selects, e.g. analysis.ablation_runs = {L: 6,
    n_layers: 1}, or any filter of a list of them; an unknown field stops the workflow, naming
    the filter."""
    try:
        return GRID.selected(filters)
    except ConfigError as error:
        sys.exit(f"Invalid workflow config: {name}: {error}")


def provenance_of(path):
    """The record beside an analysis file (vitnqs.provenance.recorded): commit, device,
    versions, wall seconds and settings, e.g. freeze_ablation/RUN.provenance.json."""
    return str(provenance_path(path))


def code_of(script):
    """The adapter workflow/scripts/{script}.py and every vitnqs module it runs (its imports,
    followed through the package): the code inputs of a table or figure rule, so an edit to any
    of them reruns it. Never of a rule that trains or samples."""
    return code_files(f"workflow/scripts/{script}.py", "src/vitnqs")


def run_path(run_id, name):
    """A file of a run: run_path("L6_J0.5_nl4_t5_s0_paper", "summary.json")."""
    return f"{RESULTS}/runs/{run_id}/{name}"


def finished_runs(run_ids):
    """The runs that have a summary.json on disk; all of them if require_all_runs is set.

    Tables and figures take their inputs from here, so a missing run is skipped instead of
    trained (unless require_all_runs), and `snakemake --cores all` never starts a training job.
    """
    if config["require_all_runs"]:
        return list(run_ids)
    return [run_id for run_id in run_ids if os.path.exists(run_path(run_id, "summary.json"))]


def get_run_config(wildcards):
    """The run's validated config as a plain mapping, for the train script."""
    return RUNS[wildcards.run].to_dict()


def get_group_files(group, name):
    """One file (summary.json, history.csv, ...) of each finished run of a group."""
    return [run_path(run_id, name) for run_id in finished_runs(GROUPS.get(group, []))]


def get_all_summaries():
    """summary.json of every run of the grid: the target of train_all."""
    return [run_path(run_id, "summary.json") for run_id in RUNS]


def finished_summaries():
    """summary.json of every run of the grid that has finished (all of them with
    require_all_runs): the input of tables that cover every group."""
    return [run_path(run_id, "summary.json") for run_id in finished_runs(RUNS)]


def get_benchmarks():
    """Timing tables written by the benchmark, if any: results/benchmarks/*.csv."""
    return sorted(glob.glob(f"{RESULTS}/benchmarks/*.csv"))


def get_sr_spectra():
    """SR-spectrum probes computed by `vitnqs sr-spectrum` (a GPU job, committed), if any:
    results/probes/sr_spectrum/*.csv."""
    return sorted(glob.glob(f"{RESULTS}/probes/sr_spectrum/*.csv"))


def checkpoints_of_unfinished_runs():
    """The checkpoints on disk of runs without a summary: progress that should refresh the
    status table. (Their history.csv is an output of rule train, so as an input it would make
    Snakemake plan the training; the checkpoint is not.)"""
    finished = set(finished_runs(RUNS))
    paths = [run_path(run_id, "checkpoint/state.msgpack") for run_id in RUNS if run_id not in finished]
    return [path for path in paths if os.path.exists(path)]
