"""Tables and figures from tiny real runs (4x4, a few steps), without Snakemake."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vitnqs import io
from vitnqs.config import RunConfig
from vitnqs.paper import PAPER_TABLE1
from vitnqs.analysis_jobs import ANALYSIS_DEFAULTS
from vitnqs.attention_plots import fig_input_dependence, fig_input_dependence_size
from vitnqs.plotting import (
    OTHER_SEEDS_LABEL,
    SIZE_OFFSETS,
    fig_learning_curves,
    fig_scaling,
    select_timings,
)
from vitnqs.tables import (
    format_duration, format_latex, format_markdown, format_with_error, summary_frame,
    table_energies,
)
from vitnqs.workflow_config import build_run_grid

TINY = dict(L=4, n_layers=1, d_model=8, n_heads=2, n_steps=4, n_samples=64, n_chains=16,
            n_samples_final=128, protocol="tiny")
PAPER_NETWORK = dict(n_layers=4, d_model=60, n_heads=10)
"""The network of the paper's Table 1, given to tiny runs' rows to match the paper's."""
REPO = Path(__file__).parents[1]
"""The checkout: its config/config.yaml and committed results/, which the figure rules read."""


@pytest.fixture(autouse=True)
def close_figures():
    """Each test's figures are closed after it (pyplot keeps them open, and warns past 20)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Three finished runs: t5 and factored at J2 = 0.5, factored at J2 = 0 -> {run_id: run_dir}."""
    from vitnqs.train import run

    root = tmp_path_factory.mktemp("runs")
    configs = [RunConfig.from_dict({**TINY, "J2": J2, "attention": attention})
               for J2, attention in ((0.5, "t5"), (0.5, "factored"), (0.0, "factored"))]
    for config in configs:
        run(config, root / config.run_id, quiet=True)
    return {config.run_id: root / config.run_id for config in configs}


@pytest.fixture(scope="module")
def runs(tiny_runs):
    return summary_frame([io.read_json(d / "summary.json") for d in tiny_runs.values()])


def test_format_with_error_puts_the_error_in_the_last_digit():
    assert format_with_error(-0.5031823, 9.2e-6) == "-0.503182(9)"
    assert format_with_error(-0.5031823, 9.6e-6) == "-0.50318(1)"
    assert format_with_error(-0.497025, 0.0) == "-0.497025"


def test_summary_frame_orders_mechanisms_as_the_paper(runs):
    assert list(runs.attention) == ["factored", "t5", "factored"]  # J2 = 0 first, then 0.5
    assert set(runs.protocol) == {"tiny"}


def test_summary_frame_takes_the_reference_energy_known_now(tiny_runs):
    """A summary written before a reference energy was known (or with an older value) is read
    with the current one, so a corrected reference reaches Table 1 without retraining."""
    summary = io.read_json(next(iter(tiny_runs.values())) / "summary.json")
    stale = {**summary, "reference_energy": None, "relative_error": None}
    row = summary_frame([stale]).iloc[0]
    assert row.reference_energy == pytest.approx(-0.52862021)  # 4x4, J2 = 0.5: ED
    assert row.relative_error == pytest.approx(
        abs((summary["energy_per_site"] + 0.52862021) / 0.52862021))
    assert row.relative_error == pytest.approx(summary["relative_error"])


def test_summary_frame_refuses_other_summary_versions(tiny_runs):
    summary = io.read_json(next(iter(tiny_runs.values())) / "summary.json")
    with pytest.raises(ValueError, match="summary_version"):
        summary_frame([{**summary, "summary_version": 99}])


def test_table_energies_puts_the_paper_beside_ours(runs):
    table = table_energies(runs)
    assert len(table) == 3 and table.paper_energy.isna().all()  # the paper has no 4x4 row
    row = table[table.attention == "t5"].iloc[0]
    assert row.relative_error == pytest.approx(
        abs((row.reference_energy - row.energy_per_site) / row.reference_energy))
    assert row.v_score == runs.set_index("run_id").v_score[row.run_id] > 0
    markdown = format_markdown(table, "Table 1")
    assert "V-score" in markdown and f" {row.v_score:.2e} " in markdown
    assert row.n_steps == 4 and row.protocol == "tiny"
    # the paper's row only beside the paper's system and network: 6x6, n_l = 4, d = 60, h = 10,
    # J2 = 0.5 (the J2 = 0 run has no paper value), and no row for another depth
    sixes = table_energies(runs.assign(L=6, **PAPER_NETWORK))
    assert sixes.paper_n_params.tolist()[1:] == [184_260, 154_980]
    assert sixes.J2.iloc[0] == 0.0 and pd.isna(sixes.paper_energy.iloc[0])
    assert table_energies(runs.assign(L=6, **{**PAPER_NETWORK, "n_layers": 1})).paper.eq("").all()
    assert table_energies(runs.assign(L=6, J2=0, **PAPER_NETWORK)).paper.eq("").all()  # int J2
    assert set(PAPER_TABLE1.L) == {6, 10}


def test_one_network_under_two_protocols_gets_two_rows_shorter_first(runs):
    """As the 6x6 runs of Table 1 under `short` and under `paper`: both rows, each beside the
    paper's value, in the same order whatever order the summaries come in."""
    t5 = runs[runs.attention == "t5"].assign(L=6, **PAPER_NETWORK)
    longer = t5.assign(protocol="paper", n_steps=5000, n_samples=6000, energy_per_site=-0.5031)
    for frame in (pd.concat([longer, t5]), pd.concat([t5, longer])):
        table = table_energies(frame)
        assert list(table.protocol) == ["tiny", "paper"]
        assert list(table.paper) == ["-0.503182(9)", "-0.503182(9)"]
    assert "protocols paper (5000 steps, M = 6000); tiny (4 steps, M = 64)" in format_markdown(
        table, "Table 1")


def test_two_seeds_of_one_network_are_two_rows_that_name_their_seed(runs):
    """As factored at 6x6 under `paper`, seeds 0 and 1: each row says its seed, seed 0 first."""
    from vitnqs.tables import display_energies

    factored = runs[(runs.attention == "factored") & (runs.J2 == 0.5)]
    assert factored.seed.tolist() == [0]  # read from the run's config
    other = factored.assign(seed=1, run_id="other seed", energy_per_site=-0.5)
    for frame in (pd.concat([other, factored]), pd.concat([factored, other])):
        shown = display_energies(table_energies(frame))
        assert shown.seed.tolist() == ["0", "1"]
        assert shown["E per site (ours)"].iloc[1] != shown["E per site (ours)"].iloc[0]


def test_table_names_every_device_that_trained_a_run(runs, tiny_runs):
    """A run resumed on another machine lists both devices with their steps; a summary written
    before segments were recorded shows the device of the process that finished it."""
    summaries = [io.read_json(d / "summary.json") for d in tiny_runs.values()]
    assert all(s["training_devices"] == s["device"] for s in summaries)  # one device here
    assert [s["segments"][0]["n_steps"] for s in summaries] == [4, 4, 4]
    moved = {**summaries[0], "training_devices": "H100 x2 (3 steps); H100 x1 (1 steps)",
             "seconds_per_step": 1.2,
             "training_seconds_per_step": {"H100 x2": 1.05, "H100 x1": 1.62}}
    older = {k: v for k, v in summaries[1].items()
             if k not in ("training_devices", "training_seconds_per_step", "segments")}
    table = table_energies(summary_frame([moved, older]))
    rows = {row.device: row for row in table.itertuples()}
    assert set(rows) == {"H100 x2 (3 steps); H100 x1 (1 steps)", older["device"]}
    assert rows["H100 x2 (3 steps); H100 x1 (1 steps)"].step_seconds == "1.05; 1.62"
    assert rows[older["device"]].step_seconds == f"{older['seconds_per_step']:.3g}"


def test_markdown_and_latex_name_the_protocol(runs):
    table = table_energies(runs)
    markdown, latex = format_markdown(table, "Table 1"), format_latex(table, "Table 1")
    assert "protocol tiny (4 steps, M = 64)" in markdown and "tiny" in latex
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(rows) == 5 and latex.count(r"\\") == 4  # header (+ rule) and three rows
    assert "No finished runs yet" in format_markdown(table.iloc[:0], "Table 1")


def test_fig_learning_curves_has_a_panel_per_coupling(runs, tiny_runs):
    histories = {run_id: io.read_csv(d / "history.csv") for run_id, d in tiny_runs.items()}
    figure = fig_learning_curves(histories, runs)
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    # 4x4 panels are not in the paper: no Fig. 2 letter
    assert titles == ["4x4, $J_2$ = 0, $n_l$ = 1", "4x4, $J_2$ = 0.5, $n_l$ = 1"]
    assert [len(ax.get_lines()) for ax in figure.axes] == [1, 2]
    assert "protocol tiny" in figure._suptitle.get_text()


def test_fig_learning_curves_keeps_protocols_in_their_own_panels(runs, tiny_runs):
    """One network under two protocols is two panels, each with its own x range and title, the
    shorter protocol first."""
    histories = {run_id: io.read_csv(d / "history.csv") for run_id, d in tiny_runs.items()}
    (run_id,) = [r for r in histories if "_t5_" in r]
    longer = histories[run_id].assign(step=lambda h: h.step * 100)  # as 5000 steps beside 300
    other_id = run_id.replace("_tiny", "_paper")
    other = runs[runs.run_id == run_id].assign(run_id=other_id, protocol="paper", n_steps=400)
    figure = fig_learning_curves({**histories, other_id: longer}, pd.concat([runs, other]))
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_visible()}
    assert list(panels)[1:] == ["4x4, $J_2$ = 0.5, $n_l$ = 1, tiny",
                                "4x4, $J_2$ = 0.5, $n_l$ = 1, paper"]
    assert sorted(panels) == ["4x4, $J_2$ = 0, $n_l$ = 1, tiny",
                              "4x4, $J_2$ = 0.5, $n_l$ = 1, paper",
                              "4x4, $J_2$ = 0.5, $n_l$ = 1, tiny"]
    assert [len(panels[t].get_lines()) for t in sorted(panels)] == [1, 1, 2]
    paper_steps = panels["4x4, $J_2$ = 0.5, $n_l$ = 1, paper"].get_lines()[0].get_xdata()
    assert max(paper_steps) == 100 * max(histories[run_id].step)
    assert panels["4x4, $J_2$ = 0.5, $n_l$ = 1, tiny"].get_xlim()[1] < max(paper_steps) / 10


def test_fig_learning_curves_tells_the_seeds_of_a_mechanism_apart(runs, tiny_runs):
    """Two seeds of t5 in one panel: each curve names its seed and has its own line style; a
    mechanism with one seed keeps its plain label."""
    histories = {run_id: io.read_csv(d / "history.csv") for run_id, d in tiny_runs.items()}
    (run_id,) = [r for r in histories if "_t5_" in r]
    other_id = run_id.replace("_s0_", "_s1_")
    other = runs[runs.run_id == run_id].assign(run_id=other_id, seed=1)
    figure = fig_learning_curves({other_id: histories[run_id], **histories},
                                 pd.concat([other, runs]))
    lines = {line.get_label(): line for line in figure.axes[1].get_lines()}
    assert set(lines) == {"t5, seed 0", "t5, seed 1", "factored"}
    assert (lines["t5, seed 0"].get_linestyle() == "-"
            and lines["t5, seed 1"].get_linestyle() == "--")
    assert lines["t5, seed 0"].get_color() == lines["t5, seed 1"].get_color()


def test_fig_learning_curves_draws_running_means_over_long_runs(runs, tiny_runs):
    """A 2000-step run's panel draws each step faintly and, labelled, the relative error of
    the energy's running mean over 20 steps; a short run's panel keeps its one line per run."""
    histories = {run_id: io.read_csv(d / "history.csv") for run_id, d in tiny_runs.items()}
    (run_id,) = [r for r in histories if "_t5_" in r]
    rng = np.random.default_rng(0)
    steps = np.arange(2000)
    energy = -0.5 + 0.1 * np.exp(-steps / 300) + 1e-3 * rng.standard_normal(steps.size)
    long_id = run_id.replace("_tiny", "_paper")
    long_run = runs[runs.run_id == run_id].assign(run_id=long_id, protocol="paper", n_steps=2000)
    long_history = pd.DataFrame({"step": steps, "energy": energy})
    figure = fig_learning_curves({**histories, long_id: long_history}, pd.concat([runs, long_run]))
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_visible()}
    raw, mean = panels["4x4, $J_2$ = 0.5, $n_l$ = 1, paper"].get_lines()
    reference = long_run.reference_energy.iloc[0]
    assert raw.get_alpha() == 0.2 and raw.get_label().startswith("_")  # not in the legend
    np.testing.assert_allclose(raw.get_ydata(), np.abs((reference - energy) / reference))
    expected = np.abs((reference - pd.Series(energy).rolling(20).mean()) / reference)
    np.testing.assert_allclose(mean.get_ydata(), expected)  # NaN for the first 19 steps
    assert mean.get_label() == "t5" and mean.get_color() == raw.get_color()
    assert np.nanstd(np.diff(mean.get_ydata())) < np.std(np.diff(raw.get_ydata())) / 4
    texts = [t.get_text() for t in panels["4x4, $J_2$ = 0.5, $n_l$ = 1, paper"].texts]
    assert texts == ["lines: running mean of 20 steps; faint: each step"]
    short = panels["4x4, $J_2$ = 0.5, $n_l$ = 1, tiny"]
    assert len(short.get_lines()) == 2 and not short.texts


def committed_runs_of(group: str) -> pd.DataFrame:
    """The summaries of a group's committed, finished runs, as the workflow's figure rules read
    them (config/config.yaml, results/runs/)."""
    run_ids = build_run_grid(io.read_yaml(REPO / "config" / "config.yaml")).groups[group]
    paths = [REPO / "results" / "runs" / run_id / "summary.json" for run_id in run_ids]
    return summary_frame([io.read_json(path) for path in paths if path.exists()])


def legends_over_panels(figure):
    """(panel, legend) for each visible panel and each legend that could hide its points: its
    own, and every legend of the figure outside the panels."""
    panels = [ax for ax in figure.axes if ax.get_visible()]
    return ([(ax, ax.get_legend()) for ax in panels if ax.get_legend()]
            + [(ax, legend) for legend in figure.legends for ax in panels])


def points_under_legends(figure, labelled_only: bool) -> dict[tuple[str, str], int]:
    """(panel title, line label) -> how many points of the line its panel's legend covers: its
    markers, and 20 points along each segment where it is drawn as a line."""
    figure.canvas.draw()
    covered = {}
    for ax, legend in legends_over_panels(figure):
        box = legend.get_window_extent()
        for line in ax.get_lines():
            if labelled_only and line.get_label().startswith("_"):
                continue
            xy = np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)
            points = ax.transData.transform(xy)
            if line.get_linestyle() not in ("None", "", " "):
                t = np.linspace(0.0, 1.0, 20)[None, :, None]
                points = (points[:-1, None] * (1 - t) + points[1:, None] * t).reshape(-1, 2)
            x, y = points[np.isfinite(points).all(axis=1)].T
            inside = (box.x0 <= x) & (x <= box.x1) & (box.y0 <= y) & (y <= box.y1)
            if inside.any():
                covered[(ax.get_title(), line.get_label())] = int(inside.sum())
    return covered


def test_fig_learning_curves_legends_cover_no_point_of_the_committed_curves():
    """Fig. 2 from the committed runs, as the workflow draws it: no panel's legend hides a point
    of a labelled curve. The paper-protocol panel holds six or more labelled running means over
    5000 steps, beside faint per-step lines (not named, free to pass under a legend)."""
    runs = committed_runs_of("fig2")
    assert len(runs) > 10, "the committed runs are missing"
    histories = {run_id: io.read_csv(REPO / "results" / "runs" / run_id / "history.csv")
                 for run_id in runs.run_id}
    assert points_under_legends(fig_learning_curves(histories, runs), labelled_only=True) == {}


def test_fig_scaling_legends_cover_no_point_of_the_committed_runs():
    """Fig. 3 from the committed runs and benchmarks: no legend hides a marker or line, ours
    (other seeds' faint markers included) or the paper's."""
    runs = committed_runs_of("fig3")
    assert len(runs) > 5, "the committed runs are missing"
    benchmarks = {path.name: io.read_csv(path) for path in
                  sorted((REPO / "results" / "benchmarks").glob("*.csv"))}
    timings, source = select_timings(runs, benchmarks)
    assert points_under_legends(fig_scaling(runs, timings, source), labelled_only=False) == {}


def test_input_dependence_figures_legends_cover_no_point_of_the_committed_analysis():
    """The index-vs-step figure from every committed analysis file, and the index-vs-L figure
    with the default selection (J2 = 0.5, n_l = 4): no legend hides a marker or line (the
    second's sat on decoupled's 8x8-10x10 segment)."""
    analysis = REPO / "results" / "analysis"
    frames = [io.read_csv(path) for path in sorted((analysis / "input_dependence").glob("*.csv"))]
    assert len(frames) > 5, "the committed analysis files are missing"
    by_step = fig_input_dependence(pd.concat(frames, ignore_index=True))
    by_size = fig_input_dependence_size(io.read_csv(analysis / "table_input_dependence.csv"),
                                        **ANALYSIS_DEFAULTS["size_runs"])
    assert points_under_legends(by_step, labelled_only=False) == {}
    assert points_under_legends(by_size, labelled_only=False) == {}


def test_fig_learning_curves_shades_the_papers_final_errors_for_its_system(runs, tiny_runs):
    """A run of the paper's Table 1 system and network gets a band from the lowest to the
    highest of the paper's three relative errors there; the tiny 4x4 panel gets none."""
    histories = {run_id: io.read_csv(d / "history.csv") for run_id, d in tiny_runs.items()}
    (run_id,) = [r for r in histories if "_t5_" in r]
    as_paper = runs[runs.run_id == run_id].assign(
        run_id="as_paper", L=6, J2=0.5, **PAPER_NETWORK, reference_energy=-0.50380965)
    figure = fig_learning_curves({**histories, "as_paper": histories[run_id]},
                                 pd.concat([runs, as_paper]))
    bands = {ax.get_title(): [p for p in ax.patches if p.get_label() == "paper (Table 1)"]
             for ax in figure.axes if ax.get_visible()}
    (band,) = bands.pop("(d) 6x6, $J_2$ = 0.5, $n_l$ = 4")
    low, high = band.get_path().transformed(band.get_patch_transform()).get_extents().intervaly
    errors = (-0.50380965 - PAPER_TABLE1.paper_energy[PAPER_TABLE1.L == 6]) / -0.50380965
    assert (low, high) == pytest.approx((errors.min(), errors.max()))  # 1.12e-3 .. 1.25e-3
    assert all(not patches for patches in bands.values())


def test_fig_scaling_uses_benchmarks_when_present(runs):
    timings, source = select_timings(runs, {})
    assert source == "median step time of the runs" and len(timings) == 3
    benchmark = pd.DataFrame({"L": [4, 4], "attention": ["t5", "factored"],
                              "seconds_per_step": [0.2, 0.1]})
    timings, source = select_timings(runs, {"cpu.csv": benchmark})
    assert source == "benchmarks cpu.csv" and timings.seconds_per_step.tolist() == [0.2, 0.1]
    figure = fig_scaling(runs, timings, source)
    assert "benchmarks cpu.csv" in figure.axes[1].get_title()
    baseline = benchmark.assign(implementation="netket", seconds_per_step=[0.4, 0.3])
    both, _ = select_timings(runs, {"a.csv": benchmark.assign(implementation="vitnqs"),
                                    "b.csv": baseline})
    labels = figure_labels(fig_scaling(runs, both, "benchmarks").axes[1])
    assert {"t5", "factored", "netket", "vitnqs"} <= labels  # colours and line styles


def test_fig_scaling_joins_the_lowest_seed_at_each_size(runs):
    """Two seeds of t5 at one L: the t5 line goes through the lower energy only (no vertical
    zigzag), the other seed is a faint marker off the line, named in the legend (not hollow:
    hollow markers are the paper's)."""
    t5 = runs[runs.attention == "t5"]
    seeds = pd.concat([t5.assign(L=6, energy_per_site=-0.49), t5.assign(L=8, energy_per_site=-0.48),
                       t5.assign(L=8, seed=1, run_id="s1", energy_per_site=-0.47)])
    left = fig_scaling(seeds, *select_timings(seeds, {})).axes[0]
    (labels, line), (_, other) = [(c.get_label(), c.lines[0]) for c in left.containers]
    reference = t5.reference_energy.iloc[0]
    expected = [abs((reference - energy) / reference) for energy in (-0.49, -0.48)]
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), expected)
    shift = SIZE_OFFSETS["t5"]
    assert list(line.get_xdata()) == [6 + shift, 8 + shift] and labels == "t5"
    assert figure_labels(left) == {"t5", OTHER_SEEDS_LABEL}
    assert list(other.get_xdata()) == [8 + shift] and other.get_linestyle() == "None"
    assert other.get_markerfacecolor() != "none" and other.get_alpha() < 1


def legends_outside_figure(figure) -> list[str]:
    """Titles of the panels under a legend (their own or the figure's) that reaches past the
    figure's edge, and so is cut off when saved."""
    figure.canvas.draw()
    edge = figure.bbox
    outside = []
    for ax, legend in legends_over_panels(figure):
        box = legend.get_window_extent()
        if min(box.x0 - edge.x0, box.y0 - edge.y0, edge.x1 - box.x1, edge.y1 - box.y1) < 0:
            outside.append(ax.get_title())
    return outside


def test_fig_scaling_legends_stay_inside_the_figure_with_three_protocols(runs):
    """Every mechanism under three protocols at L = 6 and 8 (nine legend entries): the legend
    below the accuracy panel stays whole, its first column's line samples included."""
    one = runs[runs.J2 == 0.5].iloc[:1]
    frames = [one.assign(L=L, protocol=protocol, attention=attention,
                         run_id=f"{attention}_{protocol}{L}")
              for protocol in ("short", "reduced", "reduced-damped") for L in (6, 8)
              for attention in ("t5", "decoupled", "factored")]
    many = pd.concat(frames)
    figure = fig_scaling(many, *select_timings(many, {}))
    assert len(figure_labels(figure.axes[0])) >= 9
    assert legends_outside_figure(figure) == []


def test_fig_scaling_draws_each_protocol_as_its_own_line(runs):
    """t5 under `short` and `reduced` at L = 6 and 8: two lines in two line styles, labelled
    with the protocol, each through its own protocol's energies (the lower `reduced` energy at
    L = 6 does not pull the `short` line down)."""
    t5 = runs[runs.attention == "t5"]
    energies = {"short": (-0.40, -0.38), "reduced": (-0.45, -0.44)}
    both = pd.concat([t5.assign(L=L, protocol=protocol, run_id=f"{protocol}{L}", energy_per_site=e)
                      for protocol, pair in energies.items() for L, e in zip((6, 8), pair)])
    left = fig_scaling(both, *select_timings(both, {})).axes[0]
    lines = {c.get_label(): c.lines[0] for c in left.containers if c.get_label()[0] != "_"}
    assert set(lines) == {"t5 (short)", "t5 (reduced)"} == figure_labels(left)
    reference = t5.reference_energy.iloc[0]
    for protocol, pair in energies.items():
        label = f"t5 ({protocol})"
        assert list(lines[label].get_xdata()) == [6 + SIZE_OFFSETS["t5"], 8 + SIZE_OFFSETS["t5"]]
        np.testing.assert_allclose(np.asarray(lines[label].get_ydata(), float),
                                   [abs((reference - e) / reference) for e in pair])
    assert lines["t5 (reduced)"].get_linestyle() != lines["t5 (short)"].get_linestyle()
    assert ":" not in {line.get_linestyle() for line in lines.values()}  # dotted: the paper's


def test_fig_scaling_never_joins_two_systems_in_one_line(runs):
    """t5 at J2 = 0.5 and at J2 = 0 (its own reference) at L = 6 and 8, one protocol: two lines,
    each through its own system's errors, labelled with J2 and n_l (a line through the lower
    error per L, as before, joined the systems); timings of two devices stay two lines."""
    t5 = runs[(runs.attention == "t5") & (runs.J2 == 0.5)]
    frames = [t5.assign(L=L, J2=J2, run_id=f"{J2}-{L}", energy_per_site=e, reference_energy=ref)
              for J2, ref, pair in ((0.5, -0.5, (-0.49, -0.48)), (0.0, -0.7, (-0.699, -0.698)))
              for L, e in zip((6, 8), pair)]
    both = pd.concat(frames)
    left = fig_scaling(both, *select_timings(both, {})).axes[0]
    lines = {c.get_label(): c.lines[0] for c in left.containers if c.get_label()[0] != "_"}
    protocol = t5.protocol.iloc[0]
    n_l = int(t5.n_layers.iloc[0])
    assert set(lines) == {f"t5 ({protocol}, J2 = 0.5, n_l = {n_l})",
                          f"t5 ({protocol}, J2 = 0, n_l = {n_l})"}
    np.testing.assert_allclose(
        np.asarray(lines[f"t5 ({protocol}, J2 = 0, n_l = {n_l})"].get_ydata(), float),
        [0.001 / 0.7, 0.002 / 0.7])
    timings = pd.DataFrame({"L": [6, 6], "attention": ["t5", "t5"], "seconds_per_step": [1, 2],
                            "device": ["H100", "H200"]})
    right = fig_scaling(both, timings, "benchmarks").axes[1]
    assert sorted(line.get_ydata()[0] for line in right.get_lines()
                  if line.get_linestyle() != ":") == [1, 2]


def test_fig_scaling_keeps_equal_errors_of_two_mechanisms_apart(runs):
    """Decoupled and factored with the same energy at L = 6 (as 6x6 `reduced`: 2.94e-3 and
    2.99e-3): their markers stand side by side, each near L = 6 and in the mechanisms' order,
    no marker on another's; the ticks name the lattice sizes, not the shifted positions."""
    factored = runs[(runs.attention == "factored") & (runs.J2 == 0.5)]
    equal = pd.concat([factored.assign(L=L, attention=attention, run_id=f"{attention}{L}",
                                       energy_per_site=-0.49)
                       for attention in ("decoupled", "factored") for L in (6, 8)])
    left = fig_scaling(equal, *select_timings(equal, {})).axes[0]
    x = {c.get_label(): list(c.lines[0].get_xdata()) for c in left.containers}
    assert x["decoupled"][0] < x["factored"][0]
    assert all(abs(position - L) < 0.25 for xs in x.values() for position, L in zip(xs, (6, 8)))
    marker_width = 0.05 * (left.get_xlim()[1] - left.get_xlim()[0])  # ~ a marker, in L
    assert x["factored"][0] - x["decoupled"][0] > marker_width
    assert list(left.get_xticks()) == [6, 8]


def test_fig_scaling_sets_the_papers_accuracy_beside_runs_of_its_network(runs):
    """Runs of the paper's network at L = 6 and 10 get the paper's Table 1 relative errors
    (against the runs' references) as dotted open-marker lines, one per mechanism, and one
    legend entry for them; the tiny 4x4 runs get none."""
    references = {6: -0.50380965, 10: -0.497715}
    as_paper = pd.concat([runs.assign(L=L, J2=0.5, **PAPER_NETWORK, reference_energy=reference)
                          for L, reference in references.items()])
    left = fig_scaling(as_paper, *select_timings(as_paper, {})).axes[0]
    dotted = {line.get_color(): line for line in left.get_lines() if line.get_linestyle() == ":"}
    assert len(dotted) == 3
    t5 = PAPER_TABLE1[PAPER_TABLE1.attention == "t5"].set_index("L").paper_energy
    expected = [abs((references[L] - t5[L]) / references[L]) for L in (6, 10)]
    np.testing.assert_allclose(dotted["tab:blue"].get_ydata(), expected)  # 1.25e-3, 1.39e-3
    np.testing.assert_allclose(dotted["tab:blue"].get_xdata(), np.add((6, 10), SIZE_OFFSETS["t5"]))
    assert "paper (Table 1, 5000 steps, M = 6000)" in figure_labels(left)
    tiny = fig_scaling(runs, *select_timings(runs, {})).axes[0]
    assert not any(line.get_linestyle() == ":" for line in tiny.get_lines())
    assert not any(label.startswith("paper") for label in figure_labels(tiny))


def figure_labels(ax) -> set[str]:
    """The entries of the panel's legend, or of the figure's legends if it has none."""
    legends = [ax.get_legend()] if ax.get_legend() else ax.figure.legends
    return {text.get_text() for legend in legends for text in legend.get_texts()}


def test_figures_of_no_runs_say_so(runs):
    empty = runs.iloc[:0]
    for figure in (fig_learning_curves({}, empty), fig_scaling(empty, empty, "none")):
        texts = [t.get_text() for ax in figure.axes for t in ax.texts]
        assert "no finished runs" in texts



def test_index_vs_size_keeps_protocols_apart():
    """A 6x6 run under `paper` beside the `short` runs at L = 6, 8: its own line, not averaged
    into the short one at L = 6."""
    rows = [dict(run_id=f"L{L}_J0.5_nl1_t5_s0_{protocol}", attention="t5", L=L, J2=0.5,
                 n_layers=1, layer=0, index_init=0.3, index_end=value)
            for L, protocol, value in ((6, "short", 0.04), (8, "short", 0.05), (6, "paper", 0.01))]
    first, _ = fig_input_dependence_size(pd.DataFrame(rows), J2=0.5, n_layers=1).axes
    ends = {line.get_label(): list(line.get_ydata()) for line in first.get_lines()}
    assert ends["t5 (short), end"] == pytest.approx([0.04, 0.05])
    assert ends["t5 (paper), end"] == pytest.approx([0.01])


def test_index_vs_size_gives_each_of_five_protocols_its_own_marker():
    """Five protocols at L = 6: five 'end' lines, no two with one marker (the map had four)."""
    protocols = ("a", "b", "c", "d", "e")
    rows = [dict(run_id=f"L6_J0.5_nl1_t5_s0_{protocol}", attention="t5", L=6, J2=0.5,
                 n_layers=1, layer=0, index_init=0.3, index_end=0.01) for protocol in protocols]
    first, _ = fig_input_dependence_size(pd.DataFrame(rows), J2=0.5, n_layers=1).axes
    markers = {line.get_label(): line.get_marker() for line in first.get_lines()}
    ends = [markers[f"t5 ({protocol}), end"] for protocol in protocols]
    assert len(set(ends)) == 5


def test_index_vs_size_shows_the_mean_of_seeds_and_their_range():
    """Two seeds of t5 at L = 6: the marker is their mean and a bar spans the two; L = 8 has
    one seed and no bar."""
    rows = [dict(run_id=f"L{L}_J0.5_nl1_t5_s{seed}_short", attention="t5", L=L, J2=0.5,
                 n_layers=1, layer=0, index_init=0.3 + 0.1 * seed, index_end=value)
            for L, seed, value in ((6, 0, 0.02), (6, 1, 0.06), (8, 0, 0.05))]
    first, _ = fig_input_dependence_size(pd.DataFrame(rows), J2=0.5, n_layers=1).axes
    ends = {line.get_label(): list(line.get_ydata()) for line in first.get_lines()}
    assert ends["t5, end"] == pytest.approx([0.04, 0.05])
    assert ends["t5, step 0"] == pytest.approx([0.35, 0.3])
    bars = [segment for bars in first.collections for segment in bars.get_segments()]
    assert sorted(tuple(map(tuple, segment)) for segment in bars) == [
        ((6, 0.02), (6, 0.06)), ((6, 0.3), (6, 0.4))]


def test_index_vs_size_draws_first_layer_and_layer_mean_before_and_after():
    rows = [dict(run_id=f"L{L}_J0.5_nl2_{a}_s0_short", attention=a, L=L, J2=0.5, n_layers=2,
                 layer=layer, index_init=0.3, index_end=0.01 * (layer + 1) * L)
            for L in (6, 8) for a in ("t5", "decoupled") for layer in (0, 1)]
    figure = fig_input_dependence_size(pd.DataFrame(rows), J2=0.5, n_layers=2)
    first, mean = figure.axes
    assert [len(ax.get_lines()) for ax in (first, mean)] == [4, 4]  # 2 mechanisms x (init, end)
    ends = {line.get_label(): list(line.get_ydata()) for line in mean.get_lines()}
    assert ends["t5, end"] == pytest.approx([0.09, 0.12])  # mean of layers 1 and 2 at L = 6, 8
    first_ends = {line.get_label(): list(line.get_ydata()) for line in first.get_lines()}
    assert first_ends["t5, end"] == pytest.approx([0.06, 0.08])
    assert list(first.get_xticks()) == [6, 8]
    # the legend in the paper's order, whatever order the rows come in
    assert [t.get_text() for t in mean.get_legend().get_texts()][:2] == ["t5, end", "t5, step 0"]


def test_index_vs_step_has_a_panel_per_system_and_a_line_style_per_protocol():
    """Runs of two systems (6x6 n_l = 4 under `short` and `paper`; 8x8): two panels; in the 6x6
    one the paper run is its own dashed/solid line, each line the mean over layers and heads."""
    from vitnqs.attention_plots import fig_input_dependence

    runs = (("L6_J0.5_nl4_t5_s0_short", 6, (0, 300)), ("L6_J0.5_nl4_t5_s0_paper", 6, (0, 5000)),
            ("L8_J0.5_nl4_t5_s0_short", 8, (0, 300)))
    rows = [dict(run_id=run_id, attention="t5", L=L, J2=0.5, n_layers=4, step=step, term=term,
                 layer=layer, head=head, index=(0.2 if step == 0 else 0.01 * (layer + 1)))
            for run_id, L, steps in runs for step in steps for layer in (0, 1)
            for head in ("0", "1", "mean") for term in ("attention", "positional")]
    figure = fig_input_dependence(pd.DataFrame(rows))
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["L = 6, J2 = 0.5, n_l = 4",
                                                 "L = 8, J2 = 0.5, n_l = 4"]
    lines = {line.get_label(): line for line in panels[0].get_lines()}
    assert set(lines) == {"t5 (paper)", "t5 (short)"}
    assert lines["t5 (paper)"].get_linestyle() != lines["t5 (short)"].get_linestyle()
    assert list(lines["t5 (paper)"].get_xdata()) == [0, 5000]
    assert list(lines["t5 (paper)"].get_ydata()) == pytest.approx([0.2, 0.015])
    both = pd.DataFrame([*rows, *(dict(r, attention="decoupled",
                                       run_id=r["run_id"].replace("t5", "decoupled"))
                                  for r in rows)])
    legend = fig_input_dependence(both).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "t5 (paper)", "t5 (short)", "decoupled (paper)", "decoupled (short)"]
    # a second seed of t5 under `paper`: its own marker, both seeds named
    seed1 = [dict(r, run_id=r["run_id"].replace("_s0_", "_s1_"), index=r["index"] / 2)
             for r in rows if r["run_id"] == "L6_J0.5_nl4_t5_s0_paper"]
    lines = {line.get_label(): line
             for line in fig_input_dependence(pd.DataFrame(rows + seed1)).axes[0].get_lines()}
    assert set(lines) == {"t5 (paper, seed 0)", "t5 (paper, seed 1)", "t5 (short)"}
    assert lines["t5 (paper, seed 0)"].get_marker() != lines["t5 (paper, seed 1)"].get_marker()
    assert list(lines["t5 (paper, seed 1)"].get_ydata()) == pytest.approx([0.1, 0.0075])


def test_run_status_says_which_runs_are_finished_training_or_not_started(runs, tiny_runs):
    """The reviewer's question 'which runs are done and which remain', from the files on disk:
    a summary makes a run finished, a checkpointed history one in training."""
    from vitnqs.tables import format_run_status, table_run_status, training_progress

    finished = {run_id: io.read_json(d / "summary.json") for run_id, d in tiny_runs.items()}
    configs = {run_id: summary["config"] for run_id, summary in finished.items()}
    (t5,) = [run_id for run_id in configs if "_t5_" in run_id]
    unfinished = {name: RunConfig.from_dict({**configs[t5], "seed": seed}).to_dict()
                  for name, seed in (("s1", 1), ("s2", 2), ("s3", 3))}
    configs.update({RunConfig.from_dict(c).run_id: c for c in unfinished.values()})
    ids = {name: RunConfig.from_dict(c).run_id for name, c in unfinished.items()}
    history = pd.DataFrame({"step": [0, 1, 2], "seconds": [30.0, 2.0, 4.0],  # compile first
                            "energy": [-0.1, -0.3, -0.35]})
    segments = pd.DataFrame({"first_step": [0], "device": ["H100 x2"]})
    progress = training_progress(history, segments)
    assert progress == {"steps_done": 3, "recent_energy": pytest.approx(-0.25),
                        "seconds_per_step": 4.0, "device": "H100 x2"}
    long = pd.DataFrame({"step": range(30), "seconds": 1.0, "energy": np.arange(30) * -0.01})
    assert training_progress(long, segments)["recent_energy"] == pytest.approx(-0.245)  # 20-29
    table = table_run_status(configs, {"table1": [t5, ids["s1"]], "fig2": [t5]}, finished,
                             {ids["s1"]: progress, ids["s3"]: {**progress, "steps_done": 4}})
    rows = table.set_index("run_id")
    assert rows.loc[t5, "status"] == "finished" and rows.loc[t5, "groups"] == "table1, fig2"
    assert rows.loc[t5, "energy"] == format_with_error(finished[t5]["energy_per_site"],
                                                       finished[t5]["energy_error"])
    assert (rows.loc[ids["s1"], "status"], rows.loc[ids["s1"], "steps_done"]) == ("training", 3)
    assert (rows.loc[ids["s2"], "status"], rows.loc[ids["s2"], "steps_done"]) == ("not started", 0)
    # is the run in training still learning: its last steps' mean energy, for it alone
    assert rows.loc[ids["s1"], "recent_energy"] == pytest.approx(-0.25)
    assert rows[["recent_energy"]].drop(index=[ids["s1"], ids["s3"]]).isna().all().all()
    markdown = format_run_status(table)
    assert "energy, last 10 steps" in markdown
    assert "-0.2500" in next(line for line in markdown.splitlines() if ids["s1"] in line)
    assert "6 in all, 3 finished, 1 final energy left, 1 training, 1 not started" in markdown
    assert "3 / 4" in markdown and "4 / 4" in markdown
    # the one step left at the recent pace of 4 s
    assert rows.loc[ids["s1"], "remaining_hours"] == pytest.approx(4.0 / 3600)
    assert "0m04s left at 4 s/step (H100 x2)" in markdown
    assert pd.isna(rows.loc[ids["s2"], "remaining_hours"])
    # every step done, stopped before the final energy: a status of its own, no "0m00s left"
    assert (rows.loc[ids["s3"], "status"], rows.loc[ids["s3"], "remaining_hours"]) == (
        "final energy left", 0)
    s3_line = next(line for line in markdown.splitlines() if ids["s3"] in line)
    assert "run the same command to sample it" in s3_line and " left at" not in s3_line
    # with no such run, the heading keeps to the three statuses
    assert "5 in all, 3 finished, 1 training, 1 not started" in format_run_status(
        table[table.status != "final energy left"])


def test_failed_runs_are_listed_below_the_status_table_with_what_ended_them(tiny_runs,
                                                                           tmp_path):
    """A run moved to failed/ leaves the config, so the status table no longer lists it; the
    section below it does, with how far its history went and what ended it: a non-finite energy
    (the step after its last recorded one), or a stop by hand whose reason stopped.txt gives."""
    from vitnqs.failed import STOPPED_NOTE, read_failed_run
    from vitnqs.tables import format_failed_runs, table_failed_runs

    config = io.read_json(next(iter(tiny_runs.values())) / "summary.json")["config"]
    failed = {}
    for seed, steps, last, reason in ((7, 5, 290.0, None), (3, 2, -5.0e45, None),
                                      (4, 3, -0.12, "not learning, replaced by seed 7")):
        run_dir = tmp_path / RunConfig.from_dict({**config, "seed": seed}).run_id
        run_dir.mkdir()
        io.write_yaml(run_dir / "config.yaml", {**config, "seed": seed})
        io.write_csv(run_dir / "history.csv", pd.DataFrame(
            {"step": range(steps), "energy": [-0.4] * (steps - 1) + [last]}))
        if reason:
            (run_dir / STOPPED_NOTE).write_text(reason + "\n")
        failed[run_dir.name] = read_failed_run(run_dir)
    table = table_failed_runs(failed)
    assert list(table.seed) == [3, 4, 7]  # ordered as the status table: by seed last
    assert list(table.steps_recorded) == [2, 3, 5]
    assert list(table.outcome) == ["diverged at step 2",
                                   "stopped after 3 steps: not learning, replaced by seed 7",
                                   "diverged at step 5"]
    markdown = format_failed_runs(table)
    assert "**Failed runs**: 3" in markdown
    line = next(line for line in markdown.splitlines() if "_s7_" in line)
    assert f"5 / {config['n_steps']}" in line and "290" in line
    assert "-5e+45" in markdown
    assert format_failed_runs(table_failed_runs({})) == ""


def test_an_empty_stop_note_is_refused_naming_the_file(tiny_runs, tmp_path):
    from vitnqs.failed import STOPPED_NOTE, read_failed_run

    config = io.read_json(next(iter(tiny_runs.values())) / "summary.json")["config"]
    io.write_yaml(tmp_path / "config.yaml", config)
    io.write_csv(tmp_path / "history.csv", pd.DataFrame({"step": [0], "energy": [0.1]}))
    (tmp_path / STOPPED_NOTE).write_text("\n")
    with pytest.raises(ValueError, match=STOPPED_NOTE):
        read_failed_run(tmp_path)


def test_agreement_takes_each_mechanisms_lowest_seed_and_measures_the_spreads(runs):
    """Two seeds of t5 and one of factored on the paper's 6x6 network: t5 is represented by its
    lower (better variational) energy, the seeds' and the mechanisms' spreads are relative to
    the reference energy, and the paper's spread is that of its Table 1 at 6x6."""
    from vitnqs.agreement import format_agreement, table_agreement

    six = runs[runs.J2 == 0.5].assign(L=6, **PAPER_NETWORK, reference_energy=-0.5,
                                      energy_error=1e-5)
    t5 = six[six.attention == "t5"]
    frame = pd.concat([t5.assign(energy_per_site=-0.4990, energy_error=1e-3),
                       t5.assign(seed=1, energy_per_site=-0.4995),
                       six[six.attention == "factored"].assign(energy_per_site=-0.4980,
                                                               energy_error=3e-5)])
    table = table_agreement(frame).set_index("attention")
    assert list(table.index) == ["t5", "factored"]
    assert table.loc["t5", "seeds"] == "0, 1" and table.loc["t5", "best_seed"] == 1
    assert table.loc["t5", "best_relative_error"] == pytest.approx(1e-3)
    assert table.loc["t5", "mean_relative_error"] == pytest.approx(1.5e-3)
    assert table.loc["t5", "seed_spread"] == pytest.approx(1e-3)
    assert pd.isna(table.loc["factored", "seed_spread"])  # one seed
    assert table.mechanism_spread.tolist() == pytest.approx([3e-3] * 2)  # -0.4995 vs -0.4980
    # the error bars of the two energies that set it (t5 seed 1, factored; not t5 seed 0's),
    # in quadrature, over |reference| 0.5
    assert table.mechanism_spread_error.tolist() == pytest.approx([10 ** 0.5 * 2e-5] * 2)
    assert table.paper_spread.tolist() == pytest.approx([(0.503243 - 0.503182) / 0.5] * 2)
    # another protocol is compared on its own
    assert len(table_agreement(pd.concat([frame, frame.assign(protocol="other", n_steps=9)]))) == 4
    assert "| 6   | 0.5  | 4     | tiny" in format_agreement(table.reset_index())


def test_agreement_leaves_out_t5_without_its_query_key_term():
    """A probe of t5 (alpha = softmax_j(p)) is not one of the three mechanisms; a summary from
    before the option, or without a config, is t5 with queries and keys."""
    from vitnqs.agreement import of_the_three_mechanisms

    summaries = [{"run_id": "t5", "config": {"attention": "t5", "query_key": True}},
                 {"run_id": "probe", "config": {"attention": "t5", "query_key": False}},
                 {"run_id": "older", "config": {"attention": "t5"}}, {"run_id": "bare"}]
    kept = [s["run_id"] for s in of_the_three_mechanisms(summaries)]
    assert kept == ["t5", "older", "bare"]


def test_agreement_without_a_reference_shows_spreads_and_no_relative_error(runs):
    """A system with no exact or QMC energy (J2 = 0.3): no relative error is made up (it used to
    read 0 against the lowest energy), the spreads are relative to |lowest energy|."""
    from vitnqs.agreement import format_agreement, table_agreement

    eight = runs[runs.J2 == 0.5].assign(L=8, J2=0.3, reference_energy=float("nan"))
    frame = pd.concat([eight[eight.attention == "t5"].assign(energy_per_site=-0.50),
                       eight[eight.attention == "factored"].assign(energy_per_site=-0.49)])
    table = table_agreement(frame)
    assert table.reference_energy.isna().all() and table.best_relative_error.isna().all()
    assert table.mean_relative_error.isna().all()
    assert table.mechanism_spread.tolist() == pytest.approx([0.01 / 0.50] * 2)
    assert "0.00e+00" not in format_agreement(table)


def _spectrum_rows(run_id: str, diag_shift: float, steps=(0, 5, 10)) -> pd.DataFrame:
    """Rows as vitnqs.sr_spectrum writes them, from random kernels (no sampling)."""
    from vitnqs.sr_spectrum import step_at_shifts

    rng = np.random.default_rng(len(run_id))
    rows = []
    for step in steps:
        w, c = 10.0 ** rng.uniform(-5, 1, 64), rng.normal(size=64)
        for row in step_at_shifts(w, c, (1e-3, 1e-2)):
            rows.append({"run_id": run_id, "diag_shift": diag_shift, "step": step,
                         "n_samples": 2048, "energy": -0.1 - 0.01 * step, **row})
    return pd.DataFrame(rows)


def test_fig_sr_spectrum_draws_each_run_at_each_shift_with_one_legend_inside():
    from vitnqs.spectrum_plots import PANELS, fig_sr_spectrum

    frame = pd.concat([_spectrum_rows("L8_decoupled_reduced", 1e-3),
                       _spectrum_rows("L8_decoupled_reduced-damped", 1e-2)])
    figure = fig_sr_spectrum(frame)
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_visible()}
    assert len(panels) == len(PANELS)
    for (column, title, _), ax in zip(PANELS, panels.values()):
        assert ax.get_title() == title
        assert len(ax.lines) == (2 if column == "energy" else 4)  # 2 runs (x 2 shifts)
    damped_at_own_shift = [line for line in panels[PANELS[1][1]].lines
                           if "damped" in line.get_label() and line.get_marker() == "o"]
    assert len(damped_at_own_shift) == 1 and damped_at_own_shift[0].get_linestyle() == "--"
    expected = frame[(frame.run_id.str.endswith("damped")) & (frame["shift"] == 1e-2)]
    np.testing.assert_allclose(damped_at_own_shift[0].get_ydata(), expected["step_norm"])
    assert {"shift 0.001", "shift 0.01"} <= figure_labels(figure.axes[0])
    assert legends_outside_figure(figure) == []
    assert panels[PANELS[0][1]].get_yscale() == "linear"  # energies within [-1, 1]
    with pytest.raises(ValueError, match="at least one run"):
        fig_sr_spectrum(frame.iloc[:0])


def test_fig_sr_spectrum_puts_a_diverging_energy_on_a_symlog_axis():
    from vitnqs.spectrum_plots import fig_sr_spectrum

    stable = _spectrum_rows("L8_decoupled_reduced-damped", 1e-2)
    blown_up = _spectrum_rows("L8_decoupled_reduced", 1e-3)
    blown_up.loc[blown_up.step == 10, "energy"] = 290.0  # as production reached at step 64
    energy_panel = fig_sr_spectrum(pd.concat([stable, blown_up])).axes[0]
    assert energy_panel.get_yscale() == "symlog"
    assert energy_panel.get_title().endswith("symlog past 1")
    assert max(line.get_ydata().max() for line in energy_panel.lines) == 290.0


def test_time_left_reads_in_hours_and_minutes_or_minutes_and_seconds():
    assert format_duration(4.47 * 3600) == "4h28m"  # decoupled at 3.33 s/step, 4844 steps left
    assert format_duration(212 * 1.0995) == "3m53s"
    assert format_duration(3600) == "1h00m" and format_duration(59.9) == "0m59s"
