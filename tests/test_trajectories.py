"""The trajectory table: the relative error of a run's mean energy per site over fixed windows of
steps, shown only for windows its history holds whole, so that a run in training and finished
runs are compared at the same steps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vitnqs.config import RunConfig
from vitnqs.probes import RunRecord
from vitnqs.trajectories import (
    EXCURSION_BASELINE,
    EXCURSION_RISE,
    excursions,
    format_trajectories,
    table_trajectories,
    window_column,
    window_error,
    windows,
)

E0 = -0.50380965  # 6x6, J2 = 0.5: exact diagonalization


def config(attention="t5", seed=0, L=6, J2=0.5, **changes):
    return RunConfig.from_dict({"L": L, "J2": J2, "n_layers": 4, "attention": attention,
                                "seed": seed, "protocol": "paper", "n_steps": 5000,
                                **changes}).to_dict()


def approaching(n_steps, scale=0.1, rate=1e-3):
    """An energy per site whose relative error falls as scale * exp(-rate * step)."""
    steps = np.arange(n_steps)
    return pd.DataFrame({"step": steps, "energy": E0 * (1 - scale * np.exp(-rate * steps))})


def test_windows_are_the_last_tenth_of_the_steps_before_each_end():
    assert windows((100, 1000, 5000)) == [(90, 100), (900, 1000), (4500, 5000)]
    assert window_column(900, 1000) == "error_900_999"


def test_window_error_is_the_error_of_the_mean_energy_over_the_window():
    history = approaching(1000)
    expected = 0.1 * np.exp(-1e-3 * np.arange(900, 1000)).mean()
    assert np.isclose(window_error(history, E0, 900, 1000), expected, rtol=1e-12)


def test_a_window_the_history_does_not_hold_whole_has_no_error():
    assert window_error(approaching(950), E0, 900, 1000) is None  # still training there
    with_gap = approaching(1000).drop(index=950)  # a step missing from the history
    assert window_error(with_gap, E0, 900, 1000) is None
    blown_up = approaching(1000)
    blown_up.loc[990, "energy"] = np.nan
    assert window_error(blown_up, E0, 900, 1000) is None


def test_a_run_in_training_sits_beside_finished_runs_at_the_same_steps():
    records = {
        "fast t5, training": RunRecord(config(), approaching(1227, scale=0.02)),
        "slow t5, finished": RunRecord(config(seed=1), approaching(5000, scale=0.1),
                                       {"relative_error": 1.0e-3}),
        "decoupled, finished": RunRecord(config("decoupled"), approaching(5000, scale=0.01),
                                         {"relative_error": 7.0e-4}),
        "no reference (J2 = 0.3)": RunRecord(config(J2=0.3, seed=2), approaching(300)),
        "no history": RunRecord(config("factored"), None),
    }
    table = table_trajectories(records).set_index("run_id")
    assert set(table.index) == {"fast t5, training", "slow t5, finished", "decoupled, finished"}
    at_1000 = table["error_900_999"]
    assert (at_1000["decoupled, finished"] < at_1000["fast t5, training"]
            < at_1000["slow t5, finished"])
    assert pd.isna(table.loc["fast t5, training", "error_1800_1999"])
    assert pd.isna(table.loc["fast t5, training", "relative_error"])
    assert table.loc["fast t5, training", "outcome"] == "training"
    assert table.loc["slow t5, finished", "relative_error"] == 1.0e-3
    # t5 before decoupled (the mechanisms' order), whatever the order of the records
    assert list(table.index[:2]) == ["fast t5, training", "slow t5, finished"]


def test_the_markdown_shows_only_the_windows_some_run_of_the_system_reached():
    records = {"short": RunRecord(config(n_steps=300), approaching(300)),
               "8x8": RunRecord(config(L=8), approaching(600))}
    text = format_trajectories(table_trajectories(records))
    six, eight = text.split("### 8x8")
    assert "225-249" in six and "450-499" not in six
    assert "450-499" in eight and "900-999" not in eight
    assert format_trajectories(table_trajectories({})).startswith("No runs")


def test_a_converging_run_with_statistical_noise_has_no_excursions():
    history = approaching(2000)
    one_step_error = 2e-4  # per site, late in a 6x6 run at M = 6000
    history["energy"] += np.random.default_rng(0).normal(0, one_step_error, len(history))
    found = excursions(history, E0)
    assert found["excursion_steps"] == 0
    assert 0 < found["largest_rise"] < 5 * one_step_error / abs(E0) < EXCURSION_RISE


def test_a_jump_above_where_the_run_had_settled_is_one_excursion_of_its_size():
    history = approaching(1000, scale=0.01)
    history.loc[600, "energy"] = E0 * (1 - 0.3)  # one step at 0.3 relative error
    settled = np.median(0.01 * np.exp(-1e-3 * np.arange(600 - EXCURSION_BASELINE, 600)))
    found = excursions(history, E0)
    # the steps after it are measured from a median the single jump does not move
    assert found["excursion_steps"] == 1 and found["largest_rise_step"] == 600
    assert np.isclose(found["largest_rise"], 0.3 - settled, rtol=1e-12)


def test_a_blown_up_history_or_one_within_the_baseline_has_nothing_to_measure():
    nothing = {"excursion_steps": 0, "largest_rise": None, "largest_rise_step": None}
    assert excursions(approaching(EXCURSION_BASELINE), E0) == nothing
    blown_up = approaching(EXCURSION_BASELINE + 10)
    blown_up.loc[EXCURSION_BASELINE:, "energy"] = np.nan
    assert excursions(blown_up, E0) == nothing


def test_the_markdown_counts_each_runs_excursions():
    jumped = approaching(600, scale=0.01)
    jumped.loc[[300, 400], "energy"] = E0 * (1 - 0.2)
    records = {"smooth": RunRecord(config(), approaching(600, scale=0.01)),
               "jumped": RunRecord(config(seed=1), jumped)}
    table = table_trajectories(records)
    assert dict(zip(table.run_id, table.excursion_steps)) == {"smooth": 0, "jumped": 2}
    text = format_trajectories(table)
    header, row = ([cell.strip() for cell in line.strip(" |").split("|")]
                   for line in text.splitlines() if line.startswith(("| run", "| jumped")))
    settled = np.median(0.01 * np.exp(-1e-3 * np.arange(400 - EXCURSION_BASELINE, 400)))
    assert header[-2:] == ["excursions", "largest rise (step)"]
    assert row[-2:] == ["2", f"{0.2 - settled:.2e} (400)"]  # the later jump rose from lower
