# Attention analysis: maps (paper Fig. 4), input dependence of the query-key weights, the freeze
# ablation, the Shastry-Sutherland construction (Sec. 4.3), and the gain of the unnormalized
# positional term of decoupled and factored attention (read from snapshots, no sampling). These rules read finished runs
# and never train: a run enters only when its summary.json is on disk at parse time (its input
# is ancient(), so a newer summary does not redo an analysis either). Heavy rules sample trained
# states and write compact .npz/.csv/.json, meant to be committed; tables and figures only read
# those, so restyling never samples again.
#
# Uses from common.smk: RESULTS, RUNS, runs_where(**filters), runs_selected_by(name, filters),
# run_path(run_id, name), provenance_of(path).
# Config key `analysis` (optional; every sub-key defaults to vitnqs.analysis_jobs.ANALYSIS_DEFAULTS,
# shared with `vitnqs analyse`, which runs the sampling jobs below without Snakemake).
from vitnqs.analysis_jobs import (
    analysis_settings, has_query_key_weights, output_path, sampling_settings,
)
from vitnqs.positional_gain import MECHANISMS as POSITIONAL_MECHANISMS

ANALYSIS = analysis_settings(config)
SAMPLING = sampling_settings(ANALYSIS)
ANALYSIS_DIR = f"{RESULTS}/analysis"
MAPS = f"{ANALYSIS_DIR}/attention_maps/{{run}}.npz"
INPUT_DEPENDENCE = str(output_path(RESULTS, "input_dependence", "{run}"))
FREEZE_ABLATION = str(output_path(RESULTS, "freeze_ablation", "{run}"))


# Runs whose training finished (common.smk: summary.json on disk, or every run with
# require_all_runs). Only these are analysed.
FINISHED = set(finished_runs(RUNS))
QUERY_KEY_RUNS = sorted(run for run in FINISHED if has_query_key_weights(RUNS[run]))
SELECTED = {  # the runs each analysis filter selects
    key: runs_selected_by(f"analysis.{key}", ANALYSIS[key])
    for key in ("fig4_runs", "ablation_runs", "size_runs")
}
MAP_RUNS = sorted(run for run in SELECTED["fig4_runs"] if run in FINISHED)
FIG4_RUNS = {  # per mechanism the first run id, when several match
    RUNS[run].attention: run for run in reversed(MAP_RUNS) if has_query_key_weights(RUNS[run])
}
POSITIONAL_RUNS = sorted(
    run for mechanism in POSITIONAL_MECHANISMS for run in runs_where(attention=mechanism)
    if run in FINISHED
)
ABLATION_RUNS = sorted(set(SELECTED["ablation_runs"]) & set(QUERY_KEY_RUNS))
SIZE_RUNS = sorted(set(SELECTED["size_runs"]) & set(QUERY_KEY_RUNS))

ANALYSIS_TARGETS = (
    [f"{ANALYSIS_DIR}/shastry_sutherland.json"]
    + expand(MAPS, run=MAP_RUNS)
    # the per-run files too, so that a run added later is analysed even where Snakemake has no
    # metadata of the tables (a fresh clone): a missing input alone does not rerun a table
    + expand(INPUT_DEPENDENCE, run=QUERY_KEY_RUNS)
    + expand(FREEZE_ABLATION, run=ABLATION_RUNS)
    + ([f"{RESULTS}/figures/fig4.pdf"] if FIG4_RUNS else [])
    + (
        [
            f"{ANALYSIS_DIR}/table_input_dependence.csv",
            f"{ANALYSIS_DIR}/table_freeze_ablation.csv",
            f"{RESULTS}/figures/fig_input_dependence.pdf",
        ]
        if QUERY_KEY_RUNS
        else []
    )
    + ([f"{RESULTS}/figures/fig_input_dependence_size.pdf"] if SIZE_RUNS else [])
    + ([f"{ANALYSIS_DIR}/table_positional_gain.csv"] if POSITIONAL_RUNS else [])
)
"""Everything this file makes from the runs on disk: an input of `rule all`."""


rule analysis:
    input:
        ANALYSIS_TARGETS,


# --- heavy: sample trained states, each job on a GPU (resources gpu=1), like training -----------
rule attention_maps:
    input:
        summary=ancient(run_path("{run}", "summary.json")),
    output:
        MAPS,
        provenance=provenance_of(MAPS),
    params:
        sampling=SAMPLING,
    log:
        f"{RESULTS}/logs/attention_maps/{{run}}.log",
    resources:
        gpu=1,  # as train: one free GPU per job (vitnqs.gpus.claim_gpus)
    conda:
        "../../environment.yml"
    script:
        "../scripts/attention_maps.py"


rule input_dependence:
    input:
        summary=ancient(run_path("{run}", "summary.json")),
    output:
        INPUT_DEPENDENCE,
        provenance=provenance_of(INPUT_DEPENDENCE),
    params:
        sampling=SAMPLING,
    log:
        f"{RESULTS}/logs/input_dependence/{{run}}.log",
    resources:
        gpu=1,  # as train: one free GPU per job (vitnqs.gpus.claim_gpus)
    conda:
        "../../environment.yml"
    script:
        "../scripts/input_dependence.py"


rule freeze_ablation:
    input:
        summary=ancient(run_path("{run}", "summary.json")),
    output:
        FREEZE_ABLATION,
        provenance=provenance_of(FREEZE_ABLATION),
    params:
        sampling=SAMPLING,
        n_samples_energy=ANALYSIS["n_samples_energy"],
    log:
        f"{RESULTS}/logs/freeze_ablation/{{run}}.log",
    resources:
        gpu=1,  # as train: one free GPU per job (vitnqs.gpus.claim_gpus)
    conda:
        "../../environment.yml"
    script:
        "../scripts/freeze_ablation.py"


rule shastry_sutherland:
    output:
        report(
            f"{ANALYSIS_DIR}/shastry_sutherland.json",
            caption="../report/shastry_sutherland.rst",
            category="Attention analysis",
        ),
        provenance=provenance_of(f"{ANALYSIS_DIR}/shastry_sutherland.json"),
    params:
        check=ANALYSIS["shastry_sutherland"],
    log:
        f"{RESULTS}/logs/shastry_sutherland.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/shastry_sutherland.py"


# --- cheap: tables and figures from the data above --------------------------------------------
rule table_input_dependence:
    input:
        frames=expand(INPUT_DEPENDENCE, run=QUERY_KEY_RUNS),
        code=code_of("table_input_dependence"),
    output:
        report(
            f"{ANALYSIS_DIR}/table_input_dependence.csv",
            caption="../report/table_input_dependence.rst",
            category="Attention analysis",
        ),
    log:
        f"{RESULTS}/logs/table_input_dependence.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/table_input_dependence.py"


rule table_freeze_ablation:
    input:
        ablations=expand(FREEZE_ABLATION, run=ABLATION_RUNS),
        summaries=[run_path(run, "summary.json") for run in ABLATION_RUNS],
        code=code_of("table_freeze_ablation"),
    output:
        report(
            f"{ANALYSIS_DIR}/table_freeze_ablation.csv",
            caption="../report/table_freeze_ablation.rst",
            category="Attention analysis",
        ),
    log:
        f"{RESULTS}/logs/table_freeze_ablation.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/table_freeze_ablation.py"


rule table_positional_gain:
    input:
        summaries=[run_path(run, "summary.json") for run in POSITIONAL_RUNS],
        code=code_of("table_positional_gain"),
    output:
        report(
            f"{ANALYSIS_DIR}/table_positional_gain.csv",
            caption="../report/table_positional_gain.rst",
            category="Attention analysis",
        ),
    log:
        f"{RESULTS}/logs/table_positional_gain.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/table_positional_gain.py"


rule fig_input_dependence:
    input:
        frames=expand(INPUT_DEPENDENCE, run=QUERY_KEY_RUNS),
        code=code_of("fig_input_dependence"),
    output:
        png=report(
            f"{RESULTS}/figures/fig_input_dependence.png",
            caption="../report/fig_input_dependence.rst",
            category="Attention analysis",
        ),
        pdf=f"{RESULTS}/figures/fig_input_dependence.pdf",
    log:
        f"{RESULTS}/logs/fig_input_dependence.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fig_input_dependence.py"


rule fig_input_dependence_size:
    input:
        table=f"{ANALYSIS_DIR}/table_input_dependence.csv",
        # the runs analysis.size_runs selects: a changed filter changes this list, which reruns
        # the figure (rerun trigger `input`; the filter itself is only a param)
        selected=expand(INPUT_DEPENDENCE, run=SIZE_RUNS),
        code=code_of("fig_input_dependence_size"),
    output:
        png=report(
            f"{RESULTS}/figures/fig_input_dependence_size.png",
            caption="../report/fig_input_dependence_size.rst",
            category="Attention analysis",
        ),
        pdf=f"{RESULTS}/figures/fig_input_dependence_size.pdf",
    params:
        runs=ANALYSIS["size_runs"],
    log:
        f"{RESULTS}/logs/fig_input_dependence_size.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fig_input_dependence_size.py"


rule fig4:
    input:
        **{mechanism: MAPS.format(run=run) for mechanism, run in FIG4_RUNS.items()},
        code=code_of("fig4"),
    output:
        png=report(
            f"{RESULTS}/figures/fig4.png",
            caption="../report/fig4.rst",
            category="Attention analysis",
        ),
        pdf=f"{RESULTS}/figures/fig4.pdf",
    log:
        f"{RESULTS}/logs/fig4.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fig4.py"
