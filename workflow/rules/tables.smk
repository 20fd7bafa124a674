# Tables: read finished runs, never train (inputs come from finished_runs in common.smk).


rule table1:
    input:
        summaries=get_group_files("table1", "summary.json"),
        code="src/vitnqs/tables.py",
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


def checkpoints_of_unfinished_runs():
    """The checkpoints on disk of runs without a summary: progress that should refresh the
    status table. (Their history.csv is an output of rule train, so as an input it would make
    Snakemake plan the training; the checkpoint is not.)"""
    return [
        run_path(run_id, "checkpoint/state.msgpack") for run_id in RUNS
        if os.path.exists(run_path(run_id, "checkpoint/state.msgpack"))
        and not os.path.exists(run_path(run_id, "summary.json"))
    ]


rule run_status:
    input:
        summaries=[run_path(run_id, "summary.json") for run_id in finished_runs(RUNS)],
        checkpoints=checkpoints_of_unfinished_runs(),
        code="src/vitnqs/tables.py",
    output:
        csv=f"{RESULTS}/tables/run_status.csv",
        md=f"{RESULTS}/tables/run_status.md",
    params:
        configs={run_id: config.to_dict() for run_id, config in RUNS.items()},
        groups=GROUPS,
        results=RESULTS,
    log:
        f"{RESULTS}/logs/run_status.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/run_status.py"
