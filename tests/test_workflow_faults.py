"""Snakemake under faults: a second invocation on the same directory while one runs, and an
invocation interrupted mid-job (SIGINT as Ctrl-C sends it, SIGTERM as a time limit does, or
SIGKILL) that is run again.

Each test trains one run of config/quick.yaml, shrunk to seconds, in a copy of the repository.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from train_helpers import (
    TINY_QUICK,
    TINY_QUICK_RUN,
    run_outcome,
    snakemake,
    snakemake_command,
    tree_state,
    workflow_tree,
)

from vitnqs import io

RUN = TINY_QUICK_RUN
ARGS = ("--cores", "1", f"results-quick/runs/{RUN}/summary.json")


def start_snakemake(tree: Path, configs: list[str]) -> subprocess.Popen:
    """Snakemake training RUN, in its own process group (as a shell runs a job), with SIGINT at
    its default (as in a job a terminal's Ctrl-C reaches).

    An ignored SIGINT is inherited through fork and exec, and Python then installs no
    KeyboardInterrupt handler: pytest started in the background by a non-interactive shell
    (`pytest ... &`) ignores SIGINT, and so would Snakemake and its job. A caught signal is reset
    to the default on exec, so SIGINT is caught here while Snakemake starts.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with open(tree.with_name(f"{tree.name}.log"), "w") as log:
            return subprocess.Popen(snakemake_command(*ARGS, configs=configs), cwd=tree,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def wait_until_mid_job(tree: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    """Until the training job has written a checkpoint and history.csv, one of its outputs."""
    history = tree / "results-quick" / "runs" / RUN / "history.csv"
    deadline = time.monotonic() + timeout
    while not history.exists():
        log = tree.with_name(f"{tree.name}.log")
        assert process.poll() is None, f"Snakemake ended first:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "the training job never checkpointed"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    """A Snakemake run held (SIGSTOP) mid-job while a second one starts on the same directory."""
    tree, configs = workflow_tree(tmp_path_factory.mktemp("locked"))
    committed = tree_state(tree / "results")
    first = start_snakemake(tree, configs)
    wait_until_mid_job(tree, first)
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = snakemake(tree, *ARGS, configs=configs)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    first.wait(timeout=600)
    again = snakemake(tree, *ARGS, "--dry-run", configs=configs)
    return SimpleNamespace(tree=tree, run_dir=tree / "results-quick" / "runs" / RUN,
                           first=first.returncode, second=second, again=again,
                           committed=committed)


@pytest.mark.timeout(900)
def test_a_second_snakemake_is_refused_by_the_lock_and_nothing_is_corrupted(locked):
    assert locked.second.returncode != 0
    assert "LockException" in locked.second.stdout
    assert "Directory cannot be locked" in locked.second.stdout
    assert "localrule train" not in locked.second.stdout  # it started no job
    assert locked.first == 0
    outcome = run_outcome(locked.run_dir)  # every file reads back whole
    assert outcome["history"]["step"] == list(range(TINY_QUICK["protocols"]["quick"]["n_steps"]))
    assert "Nothing to be done" in locked.again.stdout
    assert tree_state(locked.tree / "results") == locked.committed


@pytest.mark.timeout(900)
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_snakemake_resumes_and_finishes_the_run(locked, tmp_path, stop):
    tree, configs = workflow_tree(tmp_path)
    process = start_snakemake(tree, configs)
    wait_until_mid_job(tree, process)
    run_dir = tree / "results-quick" / "runs" / RUN
    # Frozen first, so that the job cannot finish between the check and the signal (on a loaded
    # machine the whole job takes seconds); a stopped process receives SIGINT on SIGCONT.
    os.killpg(process.pid, signal.SIGSTOP)
    assert not (run_dir / "summary.json").exists(), "the job finished before it was stopped"
    os.killpg(process.pid, stop)
    os.killpg(process.pid, signal.SIGCONT)
    log = tree.with_name(f"{tree.name}.log")
    assert process.wait(timeout=120) != 0, log.read_text()[-3000:]
    if stop == signal.SIGINT:  # Snakemake itself was interrupted, not only its job
        assert "Terminating processes on user request" in log.read_text(), log.read_text()[-3000:]
    if stop == signal.SIGTERM:  # as at a SLURM time limit: the job checkpointed its last step
        assert "stopped by SIGTERM after step" in (run_dir / "train.log").read_text()
    assert not (run_dir / "summary.json").exists()
    io.read_state(run_dir / "checkpoint" / "state.msgpack")  # the checkpoint is whole
    assert (run_dir / "history.csv").exists()  # kept, marked incomplete (keep-incomplete)
    if stop == signal.SIGKILL:
        # Snakemake could not clean up: its lock is left, and history.csv marked incomplete
        stale = snakemake(tree, *ARGS, configs=configs)
        assert stale.returncode != 0 and "LockException" in stale.stdout
        assert snakemake(tree, *ARGS, "--unlock", configs=configs).returncode == 0
        strict = snakemake(tree, *ARGS, "--workflow-profile", "none", configs=configs)
        assert strict.returncode != 0 and "IncompleteFilesException" in strict.stdout
        assert f"results-quick/runs/{RUN}/history.csv" in strict.stdout
    resumed = snakemake(tree, *ARGS, configs=configs)  # profiles/default: rerun-incomplete
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    log = (run_dir / "train.log").read_text()  # the whole run's, not only its last job's
    assert "restored checkpoint" in log
    if stop == signal.SIGTERM:
        assert "stopped by SIGTERM after step" in log
    assert log.count("starting steps 0..") == 1
    assert run_outcome(run_dir) == run_outcome(locked.run_dir)
