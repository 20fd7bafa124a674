# Tables: read finished runs, never train (inputs come from finished_runs in common.smk).

from vitnqs.failed import STOPPED_NOTE
from vitnqs.probes import PROBE_GROUPS

# Runs taken out of the config and kept under failed/ (diverged, or stopped by hand: a note says
# why): read by run_status and table_probes.
FAILED_HISTORIES = sorted(glob.glob(f"{RESULTS}/failed/*/history.csv"))
STOP_NOTES = sorted(glob.glob(f"{RESULTS}/failed/*/{STOPPED_NOTE}"))
# Starts trained for their first steps only (vitnqs train --until-step): read by table_starts.
START_PROBES = sorted(glob.glob(f"{RESULTS}/probes/starts/*/history.csv"))


rule table1:
    input:
        summaries=get_group_files("table1", "summary.json"),
        code=code_of("table1"),
    output:
        csv=report(f"{RESULTS}/tables/table1.csv", caption="../report/table1.rst", category="Tables"),
        md=f"{RESULTS}/tables/table1.md",
        tex=f"{RESULTS}/tables/table1.tex",
    log:
        f"{RESULTS}/logs/table1.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/table1.py"


# Do the mechanisms agree? Per system and protocol, each mechanism's lowest energy over its
# seeds and the spreads over seeds and over mechanisms (vitnqs.agreement), from every finished run.
rule mechanism_agreement:
    input:
        summaries=finished_summaries(),
        code=code_of("mechanism_agreement"),
    output:
        csv=report(f"{RESULTS}/tables/mechanism_agreement.csv",
                   caption="../report/mechanism_agreement.rst", category="Tables"),
        md=f"{RESULTS}/tables/mechanism_agreement.md",
    log:
        f"{RESULTS}/logs/mechanism_agreement.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/mechanism_agreement.py"


RECORD_INPUTS = {  # the files vitnqs.records reads: runs of the grid with files, and failed/
    "summaries": finished_summaries(),
    "checkpoints": checkpoints_of_unfinished_runs(),
    # every configured run is listed: a run added to (or removed from) the config changes the
    # tables before any run file exists, and Snakemake's params trigger did not rerun them
    "config_files": workflow.configfiles,
    "failed": FAILED_HISTORIES,
    "stop_notes": STOP_NOTES,
}


# Which configured runs are finished, training (a checkpoint on disk) or not started: the
# answer to 'what remains', from the files themselves rather than from notes.
rule run_status:
    input:
        unpack(lambda wildcards: RECORD_INPUTS),
        code=code_of("run_status"),
    output:
        csv=f"{RESULTS}/tables/run_status.csv",
        md=f"{RESULTS}/tables/run_status.md",
    params:
        configs=RUN_CONFIGS,
        groups=GROUPS,
    log:
        f"{RESULTS}/logs/run_status.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/run_status.py"


# The probes of the 8x8 and 10x10 failures (groups positional_probe and sr_probe) and of t5's
# query-key term (query_key_probe): each probe beside every run of the same seed, system and
# mechanism, configured or kept under failed/ (and a probe start taken out of the config after
# reaching NaN: vitnqs.probes.probe_starts).
PROBES = [run for group in PROBE_GROUPS for run in GROUPS.get(group, [])]


rule table_probes:
    input:
        unpack(lambda wildcards: RECORD_INPUTS),
        code=code_of("table_probes"),
    output:
        csv=report(f"{RESULTS}/tables/probes.csv", caption="../report/probes.rst",
                   category="Tables"),
        md=f"{RESULTS}/tables/probes.md",
    params:
        configs=RUN_CONFIGS,
        probes=PROBES,
    log:
        f"{RESULTS}/logs/table_probes.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/table_probes.py"


# Fast and slow starts (vitnqs.starts): how every run with a history began (its first
# FAST_START_STEPS steps) beside where it ended, with the start probes of probes/starts/.
STARTS_INPUTS = {  # what table_starts and fig_starts read: every run folder with a history
    **RECORD_INPUTS,
    "start_probes": START_PROBES,
}


rule table_starts:
    input:
        unpack(lambda wildcards: STARTS_INPUTS),
        code=code_of("table_starts"),
    output:
        csv=report(f"{RESULTS}/tables/starts.csv", caption="../report/starts.rst",
                   category="Tables"),
        summary=f"{RESULTS}/tables/starts_summary.csv",
        md=f"{RESULTS}/tables/starts.md",
    params:
        configs=RUN_CONFIGS,
    log:
        f"{RESULTS}/logs/table_starts.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/table_starts.py"


# How far each run is from the reference along its optimization (vitnqs.trajectories): the error
# over fixed windows of steps, so a run in training stands beside finished runs at the same steps.
rule table_trajectories:
    input:
        unpack(lambda wildcards: RECORD_INPUTS),
        code=code_of("table_trajectories"),
    output:
        csv=report(f"{RESULTS}/tables/trajectories.csv", caption="../report/trajectories.rst",
                   category="Tables"),
        md=f"{RESULTS}/tables/trajectories.md",
    params:
        configs=RUN_CONFIGS,
    log:
        f"{RESULTS}/logs/table_trajectories.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/table_trajectories.py"
