"""profiles/slurm end to end, on this machine: SLURM's commands are tests/fake_slurm.py, which
starts each submitted job here and can play a time limit (SIGTERM, then SIGKILL after KillWait).

What a cluster user relies on: a training job, and an analysis that samples a trained run, ask
for one GPU with the profile's partition, time and memory; a training job stopped at its time
limit is resubmitted and continues from its checkpoint to the same run as one never stopped;
tables render on the submitting node.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import fake_slurm
import pandas as pd
import pytest
import yaml
from train_helpers import (
    REPO,
    TINY_QUICK_RUN,
    run_outcome,
    snakemake,
    workflow_tree,
    write_yaml,
)

RUN_DIR = Path("results-quick", "runs", TINY_QUICK_RUN)
SUMMARY = str(RUN_DIR / "summary.json")
INPUT_DEPENDENCE = f"results-quick/analysis/input_dependence/{TINY_QUICK_RUN}.csv"
SLURM = ("--profile", "profiles/slurm", "--slurm-init-seconds-before-status-checks", "1")
"""The profile as a user runs it; status checks from 1 s after a submission, not 40."""


PROFILE_RESOURCES = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())[
    "default-resources"]
"""What profiles/slurm asks SLURM for by default (partition, time, memory, CPUs)."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """TINY_QUICK_RUN trained twice: on this machine without a stop, and through profiles/slurm
    with a time limit that stops its first job once the run has checkpointed; then, through the
    profile, the run's input dependence (an analysis that samples it) and the status table of
    the runs on disk."""
    unstopped, configs = workflow_tree(tmp_path_factory.mktemp("local"))
    local = snakemake(unstopped, "--cores", "1", SUMMARY, configs=configs)
    assert local.returncode == 0, local.stdout[-3000:]

    tree, configs = workflow_tree(tmp_path_factory.mktemp("cluster"))
    state = tree.with_name(f"{tree.name}-slurm")
    fake_slurm.install(state / "bin", state)
    env = {**os.environ, "PATH": f"{state / 'bin'}{os.pathsep}{os.environ['PATH']}",
           fake_slurm.TIME_LIMIT_VARIABLE: f"train:{RUN_DIR / 'history.csv'}",
           "USER": os.environ.get("USER", "physicist")}  # the plugin asks sacct for the user's jobs
    trained = snakemake(tree, *SLURM, SUMMARY, configs=configs, env=env)
    submitted = len(fake_slurm.submissions(state))
    analysed = snakemake(tree, *SLURM, "results-quick/tables/run_status.csv", INPUT_DEPENDENCE,
                         env=env, configs=[*configs, write_yaml(tree / "on_disk.yaml",
                                                                {"require_all_runs": False})])
    return SimpleNamespace(tree=tree, state=state, trained=trained, analysed=analysed,
                           trainings=submitted, unstopped=unstopped / RUN_DIR)


@pytest.mark.timeout(900)
def test_a_training_job_asks_slurm_for_one_gpu_and_the_profiles_resources(cluster):
    assert cluster.trained.returncode == 0, cluster.trained.stdout[-3000:]
    calls = fake_slurm.submissions(cluster.state)[:cluster.trainings]
    assert len(calls) == 2  # the job stopped at its time limit, and its resubmission
    for argv in calls:
        assert_one_gpu_and_the_profiles_resources(argv)
        assert argv[argv.index("--comment") + 1] == f"rule_train_wildcards_{TINY_QUICK_RUN}"


def assert_one_gpu_and_the_profiles_resources(argv: list[str]) -> None:
    resources = PROFILE_RESOURCES
    assert "--gpus=1" in argv
    for option, value in (("-p", resources["slurm_partition"]), ("-t", str(resources["runtime"])),
                          ("--mem", str(resources["mem_mb"])), ("-A", fake_slurm.ACCOUNT)):
        assert argv[argv.index(option) + 1] == value, (option, argv)
    assert f"--cpus-per-task={resources['cpus_per_task']}" in argv


@pytest.mark.timeout(900)
def test_a_job_stopped_at_its_time_limit_is_resubmitted_and_continues_to_the_same_run(cluster):
    assert cluster.trained.returncode == 0, cluster.trained.stdout[-3000:]
    trainings = fake_slurm.jobs(cluster.state)[:cluster.trainings]
    assert [job["state"] for job in trainings] == ["TIMEOUT", "COMPLETED"]
    run_dir = cluster.tree / RUN_DIR
    log = (run_dir / "train.log").read_text()
    assert "stopped by SIGTERM after" in log
    assert "restored checkpoint" in log
    first_steps = pd.read_csv(run_dir / "segments.csv")["first_step"].tolist()
    assert len(first_steps) == 2 and first_steps[0] == 0 and 0 < first_steps[1] < 60
    assert run_outcome(run_dir) == run_outcome(cluster.unstopped)


@pytest.mark.timeout(900)
def test_an_analysis_that_samples_is_submitted_with_one_gpu_and_tables_render_here(cluster):
    assert cluster.analysed.returncode == 0, cluster.analysed.stdout[-3000:]
    after_training = fake_slurm.submissions(cluster.state)[cluster.trainings:]
    assert len(after_training) == 1  # the analysis; the status table rendered without a job
    argv = after_training[0]
    assert argv[argv.index("--comment") + 1] == f"rule_input_dependence_wildcards_{TINY_QUICK_RUN}"
    assert_one_gpu_and_the_profiles_resources(argv)
    index = pd.read_csv(cluster.tree / INPUT_DEPENDENCE)
    assert len(index) and index.select_dtypes("number").notna().all().all()
    status = pd.read_csv(cluster.tree / "results-quick" / "tables" / "run_status.csv")
    assert status.set_index("run_id").loc[TINY_QUICK_RUN, "status"] == "finished"
