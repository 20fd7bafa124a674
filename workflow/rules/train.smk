# Training: one job per run -> {RESULTS}/runs/{run}/. Never plots.
#
# The rule has no input files, so an existing summary.json is never out of date: a fresh clone
# with committed results trains nothing. To retrain a run, delete its folder (its config.yaml
# pins the run's settings; vitnqs.train refuses a folder that holds a different config).
# A job that stops (time limit, preemption) resumes from checkpoint/ when run again.


rule train:
    output:
        summary=run_path("{run}", "summary.json"),
        history=run_path("{run}", "history.csv"),
    params:
        config=get_run_config,
    log:
        # This attempt's output. Not the run's train.log, which vitnqs appends to over every
        # attempt: Snakemake deletes a rule's log files before each job, resumed ones too.
        f"{RESULTS}/logs/train/{{run}}.log",
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    script:
        "../scripts/train.py"


rule train_all:
    input:
        get_all_summaries(),
