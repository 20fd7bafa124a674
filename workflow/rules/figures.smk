# Figures: read finished runs, never train (inputs come from finished_runs in common.smk).


rule fig2:
    input:
        summaries=get_group_files("fig2", "summary.json"),
        histories=get_group_files("fig2", "history.csv"),
        code=code_of("fig2"),
    output:
        png=report(f"{RESULTS}/figures/fig2.png", caption="../report/fig2.rst", category="Figures"),
        pdf=f"{RESULTS}/figures/fig2.pdf",
    log:
        f"{RESULTS}/logs/fig2.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fig2.py"


rule fig3:
    input:
        summaries=get_group_files("fig3", "summary.json"),
        benchmarks=get_benchmarks(),
        code=code_of("fig3"),
    output:
        png=report(f"{RESULTS}/figures/fig3.png", caption="../report/fig3.rst", category="Figures"),
        pdf=f"{RESULTS}/figures/fig3.pdf",
    log:
        f"{RESULTS}/logs/fig3.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fig3.py"


rule fig_sr_spectrum:
    input:
        spectra=get_sr_spectra(),
        code=code_of("fig_sr_spectrum"),
    output:
        png=report(
            f"{RESULTS}/figures/fig_sr_spectrum.png",
            caption="../report/fig_sr_spectrum.rst",
            category="Figures",
        ),
        pdf=f"{RESULTS}/figures/fig_sr_spectrum.pdf",
    log:
        f"{RESULTS}/logs/fig_sr_spectrum.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fig_sr_spectrum.py"


# The first steps of every start of one system (vitnqs.starts): the runs of the grid, failed/
# and probes/starts/ whose config has these values; inputs as table_starts's.
STARTS_FIGURE_SYSTEM = {"L": 6, "J2": 0.5, "n_layers": 4, "n_samples": 6000}


rule fig_starts:
    input:
        unpack(lambda wildcards: STARTS_INPUTS),
        code=code_of("fig_starts"),
    output:
        png=report(f"{RESULTS}/figures/fig_starts.png", caption="../report/fig_starts.rst",
                   category="Figures"),
        pdf=f"{RESULTS}/figures/fig_starts.pdf",
    params:
        configs=RUN_CONFIGS,
        system=STARTS_FIGURE_SYSTEM,
    log:
        f"{RESULTS}/logs/fig_starts.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fig_starts.py"


# Every start of the query-key probe's systems (group query_key_probe: t5 without its query-key
# term beside t5, decoupled and factored), one figure per number of samples: `reduced` (M = 2048)
# and the paper's (M = 6000: its whole runs, not the 150-step start probes of
# `paper-damped`, which fig_starts draws); inputs as table_starts's.
QUERY_KEY_FIGURES = {
    "fig_query_key_probe": {"L": 6, "J2": 0.5, "n_layers": 4, "n_samples": 2048},
    "fig_query_key_probe_paper": {
        "L": 6, "J2": 0.5, "n_layers": 4, "n_samples": 6000,
        "protocol": ["paper", "paper-damped-start", "paper-damped-start-no-qk"],
    },
}
QUERY_KEY_FIGURE_FILES = expand(f"{RESULTS}/figures/{{figure}}.{{ext}}",
                                figure=QUERY_KEY_FIGURES, ext=("png", "pdf"))


rule fig_query_key_probe:
    input:
        unpack(lambda wildcards: STARTS_INPUTS),
        code=code_of("fig_query_key_probe"),
    output:
        png=report(f"{RESULTS}/figures/{{figure}}.png",
                   caption="../report/fig_query_key_probe.rst", category="Figures"),
        pdf=f"{RESULTS}/figures/{{figure}}.pdf",
    wildcard_constraints:
        figure="|".join(QUERY_KEY_FIGURES),
    params:
        configs=RUN_CONFIGS,
        system=lambda wildcards: QUERY_KEY_FIGURES[wildcards.figure],
    log:
        f"{RESULTS}/logs/{{figure}}.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fig_query_key_probe.py"
