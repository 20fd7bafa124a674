# Reproduction of Rende & Viteritti, "Are queries and keys always relevant?" (MLST 2025).
# Table of contents: the config and its schema, the rule files, and the final outputs.
# `snakemake --cores all` renders every table and figure from the runs in results/ (it never
# trains); `snakemake --cores all train_all` trains the runs that are missing. See README.md.

from snakemake.utils import validate


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/benchmark.smk"


localrules:
    all,
    train_all,
    table1,
    run_status,
    mechanism_agreement,
    table_probes,
    table_starts,
    table_trajectories,
    fig2,
    fig_starts,
    fig_query_key_probe,
    fig3,
    fig_sr_spectrum,
    analysis,
    shastry_sutherland,
    table_input_dependence,
    table_freeze_ablation,
    table_positional_gain,
    fig_input_dependence,
    fig_input_dependence_size,
    fig4,
    benchmark,


rule all:
    input:
        rules.table1.output,
        rules.run_status.output,
        rules.mechanism_agreement.output,
        rules.table_probes.output,
        rules.table_starts.output,
        rules.table_trajectories.output,
        rules.fig2.output,
        rules.fig3.output,
        rules.fig_starts.output,
        QUERY_KEY_FIGURE_FILES,
        rules.fig_sr_spectrum.output if get_sr_spectra() else [],
        ANALYSIS_TARGETS,
