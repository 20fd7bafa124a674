"""A damped start: SR's diagonal shift is diag_shift_initial for the first
diag_shift_initial_steps steps and diag_shift after, on the step count of the run, also across
a stop and resume."""

from __future__ import annotations

import pandas as pd
from train_helpers import TINY_RUN

from vitnqs.config import RunConfig
from vitnqs.train import diag_shift_schedule, run

DAMPED = {"diag_shift_initial": 1e-1, "diag_shift_initial_steps": 2, "diag_shift": 1e-3}


def test_the_shift_is_the_initial_one_before_the_switch_and_diag_shift_from_it():
    config = RunConfig.from_dict({**TINY_RUN, **DAMPED})
    schedule = diag_shift_schedule(config)
    shifts = [float(schedule(step)) for step in range(4)]
    assert shifts == [config.diag_shift_at(step) for step in range(4)] == [1e-1, 1e-1, 1e-3, 1e-3]
    assert diag_shift_schedule(RunConfig.from_dict(TINY_RUN)) == TINY_RUN.get("diag_shift", 1e-3)


def energies(run_dir):
    return pd.read_csv(run_dir / "history.csv")["energy"].to_numpy()


def train(run_dir, changes, **options):
    run({**TINY_RUN, "n_steps": 4, "checkpoint_every": 100, **changes}, run_dir, quiet=True,
        **options)
    return energies(run_dir)


def test_a_damped_start_follows_the_damped_run_up_to_the_switch_then_leaves_it(tmp_path):
    damped_start = train(tmp_path / "damped_start", DAMPED)
    damped = train(tmp_path / "damped", {"diag_shift": 1e-1})
    plain = train(tmp_path / "plain", {"diag_shift": 1e-3})
    # the energy of step k follows the updates of steps 0..k-1: the same shift for steps 0 and 1
    assert list(damped_start[:3]) == list(damped[:3])
    assert damped_start[3] != damped[3]  # step 2's update took the shift 1e-3
    assert damped_start[1] != plain[1]


def test_a_damped_start_stopped_before_its_switch_resumes_on_the_same_schedule(tmp_path):
    whole = train(tmp_path / "whole", DAMPED)
    assert len(train(tmp_path / "stopped", DAMPED, until_step=1)) == 1  # step 0 recorded
    resumed = train(tmp_path / "stopped", DAMPED)
    assert list(resumed) == list(whole)  # bit for bit
