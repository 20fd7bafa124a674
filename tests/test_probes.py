"""The probe table: one start (seed) under several protocols, and the claim it rests on, that
runs of one seed and one sampler share their step 0 and differ from step 1 on only by the
setting that was changed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from train_helpers import TINY_RUN

from vitnqs.failed import diverged, failed_outcome
from vitnqs.probes import RunRecord, format_probes, outcome_of, table_probes
from vitnqs.reference import energy_floor
from vitnqs.train import run


def config(protocol="reduced", seed=0, attention="decoupled", **changes):
    return {"L": 8, "J2": 0.5, "n_layers": 4, "attention": attention, "seed": seed,
            "protocol": protocol, "n_samples": 2048, "n_steps": 600, "diag_shift": 1e-3,
            "positional_init": "xavier", **changes}


def history(energies):
    return pd.DataFrame({"step": np.arange(len(energies)), "energy": energies})


SUMMARY = {"energy_per_site": -0.4948, "energy_error": 3e-5, "relative_error": 8.5e-3}


def test_one_seed_and_sampler_share_step_0_and_a_changed_shift_shows_from_step_1(tmp_path):
    shifts = (1e-3, 1e-2)
    histories = []
    for shift in shifts:
        run_dir = tmp_path / f"shift_{shift:g}"
        run({**TINY_RUN, "n_steps": 3, "diag_shift": shift, "checkpoint_every": 100}, run_dir,
            quiet=True)
        histories.append(pd.read_csv(run_dir / "history.csv"))
    first, second = histories
    assert first.energy[0] == second.energy[0]  # same parameters, same samples: bit for bit
    assert first.energy[1] != second.energy[1]  # one SR step with another shift


def test_outcome_names_finished_training_and_what_ended_a_failed_run():
    assert outcome_of(RunRecord(config(), history([0.1, -0.2]), SUMMARY)) == "finished"
    assert outcome_of(RunRecord(config(), history([0.1, -0.2]))) == "training"
    stopped = failed_outcome(2, "not learning")
    assert outcome_of(RunRecord(config(), history([0.1, -0.2]), failed=stopped)) == (
        "stopped after 2 steps: not learning")
    outcomes = pd.Series([failed_outcome(68), stopped, "finished", "training",
                          failed_outcome(3, "diverged at step 3 of the old run, restarted")])
    assert diverged(outcomes).tolist() == [True, False, False, False, False]


def test_probe_table_keeps_the_probes_start_and_counts_steps_above_zero_after_step_0():
    records = {
        "probe": RunRecord(config("reduced-damped", diag_shift=1e-2),
                           history([0.27] + [-0.3] * 5 + [-0.45] * 10), SUMMARY),
        "twin": RunRecord(config(), history([0.27, -0.1, 0.2, -0.3, 0.5, 7.0]),
                          failed=failed_outcome(6)),
        "other seed": RunRecord(config(seed=1), history([0.1, 0.2])),
        "other system": RunRecord(config(L=10), history([0.1, 0.2])),
        "not started": RunRecord(config("short", n_samples=1024, n_steps=300), None),
    }
    table = table_probes(["probe"], records)
    assert list(table.run_id) == ["twin", "probe"]  # `reduced` before `reduced-damped`
    twin, probe = table.to_dict("records")
    assert (twin["steps_above_zero"], twin["last_step_above_zero"]) == (3, 5)
    assert twin["outcome"] == "diverged at step 6" and twin["energy"] == ""
    assert probe["steps_above_zero"] == 0 and pd.isna(probe["last_step_above_zero"])
    assert probe["lowest_mean_energy"] == pytest.approx(-0.45)  # the last 10 steps' mean
    assert probe["energy"] == "-0.49480(3)" and probe["relative_error"] == 8.5e-3
    text = format_probes(table)
    assert "**8x8, J2 = 0.5, n_l = 4, decoupled, seed 0**" in text
    assert "| reduced-damped | 2048 | 0.01" in text


def test_lowest_mean_of_a_diverging_run_stops_before_its_first_estimate_below_the_floor():
    """A run that diverges reports estimates no state has (t5 seed 1 `reduced`: -2.3e10 the step
    before NaN); its lowest 10-step mean is over the steps before the first of them."""
    descent = list(np.linspace(0.02, -0.3, 20))
    records = {"probe": RunRecord(config(), history(descent + [-1.0, -3.2e5, -0.1]),
                                  failed=failed_outcome(23))}
    (row,) = table_probes(["probe"], records).to_dict("records")
    assert row["lowest_mean_energy"] == pytest.approx(np.mean(descent[-9:] + [-1.0]))
    assert energy_floor(0.5) == -2.25 and energy_floor(-0.5) == -2.25


def test_a_run_in_training_ends_at_the_mean_of_its_last_steps():
    records = {"probe": RunRecord(config("reduced-damped", diag_shift=1e-2),
                                  history([0.2] * 5 + [-0.48] * 10))}
    (row,) = table_probes(["probe"], records).to_dict("records")
    assert row["outcome"] == "training" and row["energy"] == "-0.4800 (last 10 steps)"
    assert row["steps_above_zero"] == 4  # steps 1-4; step 0 is the random start


def test_no_probe_with_a_history_gives_an_empty_table_and_says_so():
    table = table_probes(["missing"], {"other": RunRecord(config(), history([0.1]))})
    assert table.empty and format_probes(table) == "No probe runs with a history yet.\n"


def test_a_config_written_before_a_setting_existed_reads_as_its_default():
    """Every committed run's config.yaml predates query_key (and most predate positional_init):
    left out, they mean what RunConfig means by leaving them out, t5 with its queries and keys."""
    old = {key: value for key, value in config(attention="t5").items() if key != "positional_init"}
    records = {
        "probe": RunRecord(config("reduced-no-qk", attention="t5", query_key=False),
                           history([0.1, -0.3])),
        "twin": RunRecord(old, history([0.1, -0.2])),
    }
    table = table_probes(["probe"], records).set_index("run_id")
    assert list(table.query_key) == [True, False]  # twin first: `reduced` before `reduced-no-qk`
    assert table.loc["twin", "positional_init"] == "xavier"
    text = format_probes(table.reset_index())
    assert "| reduced       | 2048 | 0.001         | xavier      | yes" in text
    assert "| reduced-no-qk | 2048 | 0.001         | xavier      | no" in text


def test_a_damped_start_shows_its_shift_schedule_not_only_the_shift_after_it():
    """`paper-damped-start` differs from `paper` only by 1e-2 for its first 100 steps; a column
    reading 0.001 for both would hide the one setting the probe changed."""
    damped = config("paper-damped-start", diag_shift_initial=1e-2, diag_shift_initial_steps=100)
    records = {"probe": RunRecord(damped, history([0.1, -0.3])),
               "twin": RunRecord(config("paper"), history([0.1, -0.2]))}
    table = table_probes(["probe"], records).set_index("run_id")
    assert table.loc["probe", "shift"] == "0.01 for 100 steps, then 0.001"
    assert table.loc["twin", "shift"] == "0.001"
    assert "| paper-damped-start | 2048 | 0.01 for 100 steps, then 0.001 |" in format_probes(
        table.reset_index())


def test_a_probe_start_taken_out_of_the_config_shows_with_its_seeds_other_runs():
    """A probe start that reached NaN goes to failed/ and leaves the config: its seed's block
    stays in the table (the probe's protocol, system and mechanism make it one), while a failed
    run of another protocol brings no block of its own."""
    no_qk = {"attention": "t5", "query_key": False}
    records = {
        "probe": RunRecord(config("reduced-no-qk", **no_qk), history([0.1, -0.3]), SUMMARY),
        "probe taken out": RunRecord(config("reduced-no-qk", seed=1, **no_qk),
                                     history([0.1, 0.4]), failed=failed_outcome(2)),
        "its twin": RunRecord(config(seed=1, attention="t5"), history([0.1, -0.2]), SUMMARY),
        "failed, no probe": RunRecord(config(seed=2, attention="t5"), history([0.1, 0.5]),
                                      failed=failed_outcome(2)),
        "other system": RunRecord(config("reduced-no-qk", L=10, seed=3, **no_qk),
                                  history([0.1, 0.5]), failed=failed_outcome(2)),
    }
    for record in ("probe taken out", "failed, no probe", "other system"):
        records[record] = dataclasses.replace(records[record], source="failed")
    table = table_probes(["probe"], records)
    assert set(table.run_id) == {"probe", "probe taken out", "its twin"}
    row = table.set_index("run_id").loc["probe taken out"]
    assert row.outcome == "diverged at step 2" and not row.query_key
    assert "**8x8, J2 = 0.5, n_l = 4, t5, seed 1**" in format_probes(table)
