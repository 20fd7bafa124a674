"""Fast and slow starts: a start is fast if its energy per site comes within 10 % of the reference
energy in its first 25 steps; the table reads every start with a history (runs of the grid,
failed/, probes/starts/) and counts them per system, protocol and mechanism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vitnqs import io
from vitnqs.config import RunConfig
from vitnqs.probes import RunRecord
from vitnqs.records import START_PROBE_REASON, read_records
from vitnqs.starts import (
    FAST_START_STEPS,
    first_step_near,
    format_starts,
    is_fast_start,
    starts_of_system,
    summary_starts,
    table_starts,
)
from vitnqs.tables import describe_shift

E0 = -0.50380965  # 6x6, J2 = 0.5: exact diagonalization


def config(attention="t5", seed=0, L=6, **changes):
    return RunConfig.from_dict({"L": L, "J2": 0.5, "n_layers": 4, "attention": attention,
                                "seed": seed, "protocol": "paper", "n_steps": 5000,
                                **changes}).to_dict()


def history(energies, acceptance=0.2):
    return pd.DataFrame({"step": np.arange(len(energies)), "energy": energies,
                         "acceptance": acceptance})


def slow(n_steps, acceptance=0.06):
    """A plateau at -0.15 per site, 70 % above the ground state."""
    return history(np.full(n_steps, -0.15), acceptance)


def fast(n_steps, near_at=10):
    """Far above the ground state, then within 1 % of it from step near_at on."""
    energies = np.where(np.arange(n_steps) < near_at, -0.2, 0.99 * E0)
    return history(energies)


def test_first_step_near_is_the_first_within_10_percent_and_never_a_blow_up():
    assert first_step_near(np.array([-0.05, -0.2, -0.46, -0.49]), E0) == 2  # 8.7 % above
    assert first_step_near(np.array([-0.2, -0.45, -0.5]), E0) == 2  # -0.45 is 10.7 % above
    # a diverging run's energies run far below E0, then turn non-finite: never near
    assert first_step_near(np.array([-0.2, -3.6e4, np.nan]), E0) is None
    assert first_step_near(np.array([]), E0) is None


@pytest.mark.parametrize("first_near, steps, expected", [
    (12, 5000, True), (FAST_START_STEPS - 1, FAST_START_STEPS, True),
    (FAST_START_STEPS, 5000, False), (None, FAST_START_STEPS, False), (60, 68, False),
    (None, FAST_START_STEPS - 1, None),  # too short to tell
])
def test_a_start_is_fast_if_near_within_its_first_25_steps(first_near, steps, expected):
    assert is_fast_start(first_near, steps) is expected


def test_the_counts_separate_fast_from_slow_starts_and_their_final_errors():
    records = {
        "t5 finished": RunRecord(config(seed=0), slow(5000), {"relative_error": 1.2e-3}),
        "t5 diverged": RunRecord(config(seed=3), slow(68), failed="diverged at step 68",
                                 source="failed"),
        "t5 probe": RunRecord(config(seed=5), slow(25), failed="stopped after 25 steps",
                              source="probes/starts"),
        "t5 too short": RunRecord(config(seed=6), slow(10), failed="stopped after 10 steps",
                                  source="probes/starts"),
        "damped probe": RunRecord(config(seed=5, protocol="paper-damped", diag_shift=1e-2),
                                  fast(100, near_at=16), failed="stopped", source="probes/starts"),
        "decoupled 0": RunRecord(config("decoupled", 0), fast(5000), {"relative_error": 7.4e-4}),
        "decoupled 1": RunRecord(config("decoupled", 1), fast(5000), {"relative_error": 7.0e-4}),
        "no history": RunRecord(config("factored"), None),
    }
    table = table_starts(records).set_index("run_id")
    assert "no history" not in table.index
    assert table.loc["t5 finished", "fast_start"] is False
    assert table.loc["t5 too short", "fast_start"] is None
    assert table.loc["damped probe", "first_step_near"] == 16
    assert table.loc["t5 finished", "lowest_early_acceptance"] == pytest.approx(0.06)
    assert table.loc["t5 diverged", "source"] == "failed"

    summary = summary_starts(table.reset_index()).set_index(["protocol", "attention"])
    t5 = summary.loc[("paper", "t5")]
    assert (t5.starts, t5.fast, t5.diverged) == (3, 0, 1)  # the 10-step probe is not counted
    assert (t5.finished_fast, t5.finished_slow) == ("", "1.20e-03")
    assert summary.loc[("paper", "decoupled")].finished_fast == "7.00e-04 to 7.40e-04"
    assert summary.loc[("paper-damped", "t5")].fast == 1
    assert table.loc["damped probe", "shift"] == "0.01"
    text = format_starts(table.reset_index(), summary.reset_index())
    assert "paper-damped" in text and "probes/starts" in text


def test_a_system_without_a_reference_energy_has_starts_of_unknown_kind():
    records = {"12x12": RunRecord(config(L=12), fast(30))}
    table = table_starts(records)
    assert table.fast_start.isna().all() and table.first_step_near.isna().all()
    assert summary_starts(table).starts.tolist() == [0]


def write_run(folder, run_config, energies, summary=None):
    folder.mkdir(parents=True)
    io.write_yaml(folder / "config.yaml", run_config)
    io.write_csv(folder / "history.csv", history(energies))
    if summary:
        io.write_json(folder / "summary.json", summary)
    return folder


def test_records_are_read_from_runs_failed_and_start_probe_folders(tmp_path):
    grid_run = write_run(tmp_path / "runs" / "L6_a", config(), [-0.1, -0.5],
                         {"relative_error": 1e-3})
    failed = write_run(tmp_path / "failed" / "L6_b", config(seed=3), [-0.1, -0.2, -0.3])
    probe = write_run(tmp_path / "probes" / "starts" / "L6_c", config(seed=5), [-0.1] * 25)
    records = read_records({"L6_a": config(), "L6_unstarted": config(seed=9)}, [grid_run],
                           failed_dirs=[failed], start_dirs=[probe])
    assert records["L6_a"].summary == {"relative_error": 1e-3} and records["L6_a"].source == "runs"
    assert records["L6_unstarted"].history is None
    assert (records["L6_b"].source, records["L6_b"].failed) == ("failed", "diverged at step 3")
    assert records["L6_c"].source == "probes/starts"
    assert records["L6_c"].failed == f"stopped after 25 steps: {START_PROBE_REASON}"


def test_the_shift_of_a_damped_start_is_shown_with_its_switch():
    damped_start = config(diag_shift_initial=1e-2, diag_shift_initial_steps=100)
    assert describe_shift(damped_start) == "0.01 for 100 steps, then 0.001"
    assert describe_shift(config()) == "0.001"


def test_the_starts_figure_draws_each_start_in_its_mechanism_panel_and_counts_the_fast_ones():
    from vitnqs.plotting import fig_starts

    records = {
        "t5 slow": RunRecord(config(seed=0), slow(150)),
        "t5 blow-up": RunRecord(config(seed=3), history([-0.1] * 30 + [-3.6e4]),
                                failed="diverged at step 31", source="failed"),
        "t5 damped": RunRecord(config(seed=5, diag_shift=1e-2), fast(100, near_at=16)),
        "decoupled": RunRecord(config("decoupled"), fast(150)),
        "t5 finished": RunRecord(config(seed=1, n_steps=400), slow(400), {"relative_error": 0.7}),
    }
    table = table_starts(records)
    figure = fig_starts(table, {run_id: record.history for run_id, record in records.items()},
                        E0, "test")
    t5, decoupled, factored, t5_whole, decoupled_whole, factored_whole = figure.axes
    assert [len(ax.get_lines()) for ax in (t5, decoupled, factored)] == [4 + 2, 1 + 2, 0 + 2]
    assert t5.get_title() == "t5: 1 of 4 starts fast"
    # below, only the run past step 150, whole: its running mean from step 50 on, and a dot at
    # its final error
    whole, final = t5_whole.get_lines()
    assert len(whole.get_xdata()) == 400 and np.isnan(whole.get_ydata()[:49]).all()
    assert np.allclose(whole.get_ydata()[49:], abs((E0 + 0.15) / E0))
    assert list(final.get_xdata()) == [400] and list(final.get_ydata()) == [0.7]
    assert not decoupled_whole.get_lines() and not factored_whole.get_lines()
    assert factored.get_title() == "factored: 0 of 0 starts fast"
    # the blow-up (relative error 7e4) is drawn at 10, the top of the axis, not off it
    tops = sorted(max(line.get_ydata()) for line in t5.get_lines()[:4])
    assert tops[-1] == 10 and tops[-2] < 10
    legend = [text.get_text() for text in factored.get_legend().get_texts()]
    assert legend == ["shift 0.001", "shift 0.01"]


def test_the_query_key_figure_colours_each_start_by_its_model_and_marks_a_nan():
    from vitnqs.probe_plots import (
        MODEL_COLORS, WITHOUT_QUERY_KEY, fig_query_key_probe, with_query_key,
    )

    records = {
        "t5": RunRecord(config(n_steps=400), slow(400), {"relative_error": 0.7}),
        "no QK": RunRecord(config(query_key=False, n_steps=400), fast(400),
                           {"relative_error": 0.01}),
        "no QK NaN": RunRecord(config(seed=1, query_key=False),
                               history([-0.1] * 60 + [-3.6e4]), failed="diverged at step 61",
                               source="failed"),
        "factored": RunRecord(config("factored", n_steps=400), fast(400),
                              {"relative_error": 0.01}),
    }
    table = with_query_key(table_starts(records), records)
    histories = {run_id: record.history for run_id, record in records.items()}
    first, whole = fig_query_key_probe(table, histories, E0, "test").axes
    colours = {run_id: MODEL_COLORS[label] for run_id, label in [
        ("t5", "t5"), ("no QK", WITHOUT_QUERY_KEY), ("no QK NaN", WITHOUT_QUERY_KEY),
        ("factored", "factored")]}
    curves = [line for line in first.get_lines() if line.get_marker() == "None"]
    assert sorted(line.get_color() for line in curves) == sorted(colours.values())
    # the start that reached NaN: a cross at its last step, its blow-up drawn at the top
    (cross,) = [line for line in first.get_lines() if line.get_marker() == "x"]
    assert list(cross.get_xdata()) == [60] and list(cross.get_ydata()) == [10.0]
    assert cross.get_color() == MODEL_COLORS[WITHOUT_QUERY_KEY]
    # right: a dot at each finished run's final error; no running mean above the top either
    dots = {(line.get_color(), line.get_ydata()[0]) for line in whole.get_lines()
            if line.get_marker() == "o"}
    assert dots == {(colours["t5"], 0.7), (colours["no QK"], 0.01), (colours["factored"], 0.01)}
    assert max(np.nanmax(line.get_ydata()) for line in whole.get_lines()) == 10.0
    legend = [text.get_text() for text in whole.get_legend().get_texts()]
    assert legend == ["t5 (1)", f"{WITHOUT_QUERY_KEY} (2)", "factored (1)", "reached NaN"]


def test_the_query_key_figure_draws_each_shift_schedule_in_its_own_line_style():
    from vitnqs.probe_plots import SHIFT_STYLES, fig_query_key_probe, with_query_key

    damped = {"diag_shift_initial": 0.01, "diag_shift_initial_steps": 100}
    records = {
        "t5": RunRecord(config(n_steps=400), fast(400), {"relative_error": 0.01}),
        "t5 damped": RunRecord(config(n_steps=400, **damped), fast(400)),
        "no QK damped": RunRecord(config(query_key=False, n_steps=400, **damped), fast(400)),
    }
    table = with_query_key(table_starts(records), records)
    histories = {run_id: record.history for run_id, record in records.items()}
    first, whole = fig_query_key_probe(table, histories, E0, "test").axes
    for ax in (first, whole):
        curves = [line for line in ax.get_lines() if line.get_marker() == "None"]
        assert sorted(line.get_linestyle() for line in curves) == sorted(
            [SHIFT_STYLES[0], SHIFT_STYLES[1], SHIFT_STYLES[1]])
    legend = {text.get_text(): handle.get_linestyle() for text, handle in zip(
        whole.get_legend().get_texts(), whole.get_legend().legend_handles)}
    assert {legend["shift 0.001"], legend["shift 0.01 for 100 steps, then 0.001"]} == set(
        SHIFT_STYLES[:2])


def test_the_query_key_figure_of_no_starts_says_so():
    from vitnqs.probe_plots import fig_query_key_probe

    table = table_starts({})
    table["query_key"] = []
    first, whole = fig_query_key_probe(table, {}, E0, "test").axes
    assert [text.get_text() for text in first.texts] == ["no finished runs"]
    assert whole.get_legend() is None


def test_the_starts_of_a_system_are_those_with_every_value_of_it():
    reduced = {"protocol": "reduced", "n_steps": 600, "n_samples": 2048}
    records = {"paper": RunRecord(config(), slow(30)),
               "reduced": RunRecord(config(**reduced), slow(30)),
               "8x8": RunRecord(config(L=8, **reduced), slow(30))}
    chosen, table = starts_of_system(records, {"L": 6, "n_samples": 2048})
    assert list(chosen) == ["reduced"] and list(table.run_id) == ["reduced"]
    # a list admits any of its values
    chosen, _ = starts_of_system(records, {"L": 6, "protocol": ["paper", "reduced"]})
    assert sorted(chosen) == ["paper", "reduced"]
    chosen, _ = starts_of_system(records, {"protocol": ["paper", "short"]})
    assert list(chosen) == ["paper"]
