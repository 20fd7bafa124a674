"""Figures of the paper from finished runs: DataFrames in, matplotlib Figure out.

``runs`` is ``vitnqs.tables.summary_frame`` (one row per run); ``histories`` maps a run id to
its history.csv as a DataFrame. Every figure names the protocols it shows in its title and
draws only the runs it is given. ``STYLE`` is the one place that sets the look.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # figures are written to files; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from vitnqs.config import MECHANISMS  # noqa: E402
from vitnqs.paper import (  # noqa: E402
    PAPER_SECONDS_PER_STEP, PAPER_SYSTEM_KEYS, PAPER_TABLE1, PAPER_TIMING_LABEL, paper_energies,
)
from vitnqs.starts import FAST_START_ERROR, FAST_START_STEPS  # noqa: E402
from vitnqs.tables import describe_protocols, relative_error  # noqa: E402

STYLE = {
    "figure.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "lines.linewidth": 1.0,
}
"""Matplotlib rc settings of every figure."""

COLORS = {"t5": "tab:blue", "decoupled": "tab:orange", "factored": "tab:green"}
"""One colour per attention mechanism, the same in every figure."""

MARKERS = {"t5": "o", "decoupled": "s", "factored": "^"}
"""One marker per attention mechanism."""

SIZE_OFFSETS = {"t5": -0.12, "decoupled": 0.0, "factored": 0.12}
"""Sideways shift (in L) of each mechanism's points in Fig. 3's accuracy panel: two mechanisms
with the same error at one L (6x6 decoupled and factored under `reduced`, 2.94e-3 and 2.99e-3)
stand side by side instead of one marker hiding the other. The ticks stay at the integer L."""

SEED_LINESTYLES = ("-", "--", ":", "-.")
"""Line style of a mechanism's first, second, ... seed in a panel (Fig. 2)."""

LEGEND_BESIDE = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0)}
"""A legend to the right of its panel, top-aligned (where data fill the panel's height)."""

SEED_MARKERS = ("o", "s", "^", "D")
"""Marker of a mechanism's first, second, ... seed under one protocol (input dependence vs step)."""


FIG2_PANELS = {(6, 0.0, 1): "a", (6, 0.0, 4): "b", (6, 0.5, 1): "c", (6, 0.5, 4): "d"}
"""The paper's Fig. 2 panel letter of each (L, J2, n_l); other panels carry no letter."""

SMOOTH_FROM_STEPS = 1000
"""Fig. 2 panels of runs this long draw each step faintly and, over it, the running mean of the
energy over 1/100 of the steps: at 5000 steps the per-step noise (~1e-3 relative) hides how
curves 1e-4 apart differ. Shorter panels draw each step only."""


def smoothing_window(n_steps: int) -> int:
    """Steps in Fig. 2's running mean for a panel whose longest run has ``n_steps`` (1: none)."""
    return n_steps // 100 if n_steps >= SMOOTH_FROM_STEPS else 1


def unreferenced_note(runs: pd.DataFrame) -> str:
    """A title line naming the runs left out of a relative-error panel for want of a reference
    energy (no exact or QMC value for their L and J2), or '' where there are none."""
    missing = runs[runs.reference_energy.isna()]
    if missing.empty:
        return ""
    systems = sorted({f"{L}x{L}, J2 = {J2:g}" for L, J2 in zip(missing.L, missing.J2)})
    return (f"\nnot drawn, no reference energy: {len(missing)} run(s) at "
            + "; ".join(systems))


def fig_learning_curves(histories: dict[str, pd.DataFrame], runs: pd.DataFrame) -> Figure:
    """Fig. 2: relative error vs optimization step, one panel per (L, J2, n_l) and protocol, a
    curve per mechanism (and seed). Protocols never share a panel or an x axis: 300 steps of
    `short` beside 5000 of `paper` would squash the one or hide the other; with several
    protocols each panel's title names its own. Long panels add running means
    (``SMOOTH_FROM_STEPS``), and say so inside the panel."""
    stacked = pd.concat(
        [history[["step", "energy"]].assign(run_id=run_id) for run_id, history in histories.items()]
        or [pd.DataFrame(columns=["step", "energy", "run_id"])],
        ignore_index=True,
    )
    data = stacked.merge(runs, on="run_id").dropna(subset=["reference_energy"])
    data = data.assign(rel=relative_error(data.energy, data.reference_energy))
    # one system's panels in order of cost: `short` before `paper`
    panels = sorted(data.groupby(["L", "J2", "n_layers", "protocol"]),
                    key=lambda item: (*item[0][:3], item[1].n_steps.max(), item[0][3]))
    several_protocols = data.protocol.nunique() > 1
    with plt.rc_context(STYLE):
        fig, axes = panel_grid(len(panels), sharex=not several_protocols)
        for ax, ((L, J2, n_layers, protocol), panel) in zip(axes, panels):
            letter = FIG2_PANELS.get((L, J2, n_layers))
            prefix = f"({letter}) " if letter else ""
            suffix = f", {protocol}" if several_protocols else ""
            window = smoothing_window(int(panel.n_steps.max()))
            for attention, group in by_mechanism(panel):
                several = group.run_id.nunique() > 1
                for rank, seed, curve in by_seed(group):  # one curve per seed
                    label = f"{attention}, seed {seed:g}" if several else attention
                    style = SEED_LINESTYLES[rank % len(SEED_LINESTYLES)]
                    each_step = ({"label": label} if window == 1
                                 else {"alpha": 0.2, "linewidth": 0.5})  # faint under the mean
                    ax.plot(curve.step, curve.rel, style, color=COLORS[attention], **each_step)
                    if window > 1:  # the labelled line: the running mean's error
                        mean = curve.energy.rolling(window).mean()
                        ax.plot(curve.step, relative_error(mean, curve.reference_energy), style,
                                color=COLORS[attention], label=label)
            paper = relative_error(paper_energies(panel.iloc[0]), panel.reference_energy.iloc[0])
            if len(paper):  # the paper's Table 1 has this system and network
                ax.axhspan(paper.min(), paper.max(), color="grey", alpha=0.35, linewidth=0,
                           label="paper (Table 1)")
            if window > 1:
                ax.text(0.02, 0.02, f"lines: running mean of {window} steps; faint: each step",
                        transform=ax.transAxes, fontsize="x-small", va="bottom")
            ax.set(yscale="log", xlabel="step", ylabel=r"$|(E_0 - E)/E_0|$",
                   title=f"{prefix}{L}x{L}, $J_2$ = {J2:g}, $n_l$ = {n_layers}{suffix}")
            # relative errors fall from the top left: the top right stays empty
            legend_once_per_label(ax, loc="upper right", max_rows=4, fontsize="small")
        if not panels:
            mark_no_runs(axes[0])
        fig.suptitle(f"Relative error during optimization\n{describe_protocols(runs)}"
                     f"{unreferenced_note(runs)}", fontsize="small")
    return fig


def fig_scaling(runs: pd.DataFrame, timings: pd.DataFrame, timing_source: str) -> Figure:
    """Fig. 3: relative error vs L (left) and time per step vs L (right), a series per mechanism
    (and per protocol, and per J2 and n_l where the runs hold several systems, in its own line
    style: never one line across protocols or systems). Several runs of one mechanism at one L
    (seeds): the line joins the lowest energies, the others are faint markers off the line, with
    a legend entry of their own (hollow markers on dotted lines are the paper's). In the accuracy
    panel each mechanism's points sit SIZE_OFFSETS beside their L, so that equal errors stay
    visible."""
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 3.6), layout="constrained")
        accuracy = runs.dropna(subset=["reference_energy"])
        series = accuracy.protocol.astype(str)
        if len(accuracy[["J2", "n_layers"]].drop_duplicates()) > 1:  # a line never joins systems
            series = (series + accuracy.J2.map(", J2 = {:g}".format)
                      + accuracy.n_layers.map(", n_l = {}".format))
        accuracy = accuracy.assign(series=series)
        line_styles = protocol_line_styles(accuracy.series)
        other_seeds_drawn = False
        for name, line_style in line_styles.items():
            for attention, group in by_mechanism(accuracy[accuracy.series == name]):
                label = f"{attention} ({name})" if len(line_styles) > 1 else attention
                energies = group.groupby("L").energy_per_site
                lowest = group.energy_per_site == energies.transform("min")
                other_seeds_drawn |= bool((~lowest).any())
                for rows, style in ((group[lowest], {"label": label, "ls": line_style}),
                                    (group[~lowest], {"ls": "none", "alpha": OTHER_SEEDS_ALPHA})):
                    reference = rows.reference_energy
                    left.errorbar(rows.L + SIZE_OFFSETS[attention],
                                  relative_error(rows.energy_per_site, reference),
                                  yerr=rows.energy_error / reference.abs(),
                                  color=COLORS[attention], marker=MARKERS[attention], **style)
        left.set(yscale="log", xlabel="L", ylabel=r"$|(E_0 - E)/E_0|$", title="accuracy")
        if accuracy.empty:
            mark_no_runs(left)
        paper = paper_accuracy(accuracy)
        for attention, group in by_mechanism(paper):
            left.plot(group.L + SIZE_OFFSETS[attention], group.relative_error,
                      color=COLORS[attention], ls=":",
                      marker=MARKERS[attention], mfc="none")
        styles = _plot_timings(right, timings)
        for attention, group in by_mechanism(PAPER_SECONDS_PER_STEP):
            right.plot(group.L, group.seconds_per_step, color=COLORS[attention], ls=":",
                       marker=MARKERS[attention], mfc="none")
        devices = ", ".join(sorted(set(timings.get("device", pd.Series(dtype=str)).dropna())))
        right.set(yscale="log", xlabel="L", ylabel="seconds per step",
                  title="\n".join(filter(None, ("time per step", timing_source, devices))))
        for ax in (left, right):
            ax.set_xticks(sorted({round(L) for line in ax.get_lines() for L in line.get_xdata()}))
        extra = [_paper_handle(PAPER_ACCURACY_LABEL)] if len(paper) else []
        if other_seeds_drawn:
            extra.append(Line2D([], [], color="0.3", ls="none", marker="o",
                                alpha=OTHER_SEEDS_ALPHA, label=OTHER_SEEDS_LABEL))
        # below the panels, in room the layout keeps for it (errors at 6x6 to 10x10 and the
        # paper's fill the panel from 1e-3 up; under the panel, three columns of entries ran
        # past the figure's left edge)
        legend_once_per_label(left, extra=extra, max_rows=4, on=fig, fontsize="small",
                              loc="outside lower left")
        _timing_legend(right, styles)
        fig.suptitle(f"Scaling with system size\n{describe_protocols(runs)}"
                     f"{unreferenced_note(runs)}", fontsize="small")
    return fig


PROTOCOL_LINESTYLES = ("-", "--", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
"""Line styles of protocols, in alphabetical order of the protocols a figure shows; never dotted,
which marks the paper's values."""


PROTOCOL_MARKERS = "osD^v"
"""Markers of protocols where a figure tells them apart by marker, in the same order."""


def _in_turn(protocols, values) -> dict:
    """Distinct protocol names, sorted -> ``values`` in turn (cycling past the last)."""
    return {name: values[i % len(values)] for i, name in enumerate(sorted(set(protocols)))}


def protocol_line_styles(protocols) -> dict:
    """Protocol name -> its line style (PROTOCOL_LINESTYLES in turn) for the distinct names."""
    return _in_turn(protocols, PROTOCOL_LINESTYLES)


def protocol_markers(protocols) -> dict:
    """Protocol name -> its marker (PROTOCOL_MARKERS in turn) for the distinct names."""
    return _in_turn(protocols, PROTOCOL_MARKERS)


PAPER_ACCURACY_LABEL = "paper (Table 1, 5000 steps, M = 6000)"
"""Legend label of the paper's relative errors in Fig. 3's accuracy panel."""

OTHER_SEEDS_LABEL = "other seeds (the lines join the lowest)"
"""Legend label of the faint markers of the seeds that are not a mechanism's lowest at an L."""

OTHER_SEEDS_ALPHA = 0.35
"""Opacity of those markers (and of their legend entry), faint beside the lowest seed's line."""


def paper_accuracy(runs: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 energies at the systems and networks of ``runs`` (rows with a
    reference), with their relative errors against the runs' reference: L, attention,
    relative_error; empty where the paper has none of them."""
    systems = runs.drop_duplicates(PAPER_SYSTEM_KEYS)
    rows = [pd.DataFrame({"L": run.L, "attention": PAPER_TABLE1.attention[energies.index],
                          "relative_error": relative_error(energies, run.reference_energy)})
            for _, run in systems.iterrows() if len(energies := paper_energies(run))]
    return pd.concat(rows) if rows else pd.DataFrame(columns=["L", "attention", "relative_error"])


def _paper_handle(label: str) -> Line2D:
    """Legend entry of the paper's values: dotted, open marker, grey (colours name mechanisms)."""
    return Line2D([], [], color="0.3", ls=":", marker="o", mfc="none", label=label)


def select_timings(
    runs: pd.DataFrame, benchmarks: dict[str, pd.DataFrame]
) -> tuple[pd.DataFrame, str]:
    """Seconds per step from benchmark tables (name -> table) if any, else from the runs; and which.

    A benchmark table has the columns L, attention, seconds_per_step, and optionally device,
    implementation and n_samples (each implementation and M gets its own line style).
    """
    if benchmarks:
        return (pd.concat(benchmarks.values(), ignore_index=True),
                "benchmarks " + ", ".join(sorted(benchmarks)))
    return runs[["L", "attention", "seconds_per_step", "device"]], "median step time of the runs"


def _plot_timings(ax, timings: pd.DataFrame) -> list[tuple[str, object]]:
    """A line per mechanism (colour), and per implementation or M (line style) where the
    timings hold several; returns the (label, style) of each series."""
    keys = [c for c in ("device", "implementation", "n_samples")
            if c in timings and timings[c].nunique() > 1]  # never a median across devices
    series = timings.groupby(keys) if keys else [((), timings)]
    styles = []
    for (values, frame), style in zip(series, ("-", "--", "-.", (0, (5, 1)), (0, (1, 1)))):
        values = values if isinstance(values, tuple) else (values,)
        suffix = " ".join(f"M = {v}" if k == "n_samples" else str(v) for k, v in zip(keys, values))
        styles.append((suffix, style))
        for attention, group in by_mechanism(frame):
            median = group.groupby("L").seconds_per_step.median()
            ax.plot(median.index, median.values, color=COLORS[attention], ls=style,
                    marker=MARKERS[attention])
    return styles


def _timing_legend(ax, styles: list[tuple[str, object]]) -> None:
    """Colours name the mechanisms, line styles the implementations; outside the axes."""
    drawn = {line.get_color() for line in ax.get_lines()}
    handles = [Line2D([], [], color=COLORS[m], marker=MARKERS[m], label=m)
               for m in MECHANISMS if COLORS[m] in drawn]
    handles += [Line2D([], [], color="0.3", ls=style, label=label) for label, style in styles
                if label]
    handles.append(_paper_handle(PAPER_TIMING_LABEL))
    ax.legend(handles=handles, fontsize="small", **LEGEND_BESIDE)


def by_mechanism(frame: pd.DataFrame):
    """(mechanism, its rows ordered by L) in the paper's order t5, decoupled, factored."""
    for attention in MECHANISMS:
        group = frame[frame.attention == attention].sort_values("L")
        if not group.empty:
            yield attention, group


def by_seed(frame: pd.DataFrame):
    """(rank, seed, rows) of each run in the frame (one mechanism's seeds in a panel), lowest
    seed first: rank picks the seed's line style or marker."""
    seeds = frame.groupby("run_id")["seed"].first().sort_values()
    for rank, (run_id, seed) in enumerate(seeds.items()):
        yield rank, seed, frame[frame.run_id == run_id]


def panel_grid(n_panels: int, sharex: bool = True):
    """A constrained-layout figure of ``n_panels`` axes, two per row, the spare ones hidden."""
    ncols = 2 if n_panels > 1 else 1
    nrows = max(1, math.ceil(n_panels / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.0 * nrows), squeeze=False,
                             layout="constrained", sharex=sharex)
    axes = list(axes.flat)
    for ax in axes[max(n_panels, 1):]:
        ax.set_visible(False)
    return fig, axes


def legend_once_per_label(ax, extra=(), max_rows: int | None = None, on=None,
                          **legend_options) -> None:
    """A legend of the lines of ``ax`` with one entry per label: one per mechanism, also with
    several seeds; then the ``extra`` handles (entries for what the labels do not name). Past
    ``max_rows`` entries, in as many columns as that takes. Drawn on ``on`` (a Figure, for a
    legend outside every panel) or else on ``ax``."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles)) | {handle.get_label(): handle for handle in extra}
    if max_rows:
        legend_options.setdefault("ncol", max(1, math.ceil(len(unique) / max_rows)))
    if unique:
        (on or ax).legend(unique.values(), unique.keys(), **legend_options)


def mark_no_runs(ax) -> None:
    """Say on an empty panel that no run was there to draw."""
    ax.text(0.5, 0.5, "no finished runs", transform=ax.transAxes, ha="center", va="center")


SHIFT_COLORS = ("tab:gray", "black", "tab:red", "tab:purple")
"""Line colours of the starts figure, one per diagonal-shift schedule, in order of first use."""


WHOLE_RUN_WINDOW = 50
"""Steps of the running mean of the energy in the starts figure's whole-run row."""

BLOW_UP = 10.0
"""Relative errors above this (a blow-up before NaN) are drawn at it, the top of the axis."""


def step_errors(history: pd.DataFrame, reference: float) -> pd.Series:
    """The relative error of each step's energy, blow-ups drawn at BLOW_UP."""
    return relative_error(history.energy, reference).clip(upper=BLOW_UP)


def running_mean_errors(history: pd.DataFrame, reference: float) -> pd.Series:
    """The relative error of the running mean of WHOLE_RUN_WINDOW steps' energies (NaN before
    the first full window)."""
    mean = history.energy.rolling(WHOLE_RUN_WINDOW, min_periods=WHOLE_RUN_WINDOW).mean()
    return relative_error(mean, reference)


def per_shift(starts: pd.DataFrame, cycle: tuple) -> dict:
    """One entry of ``cycle`` (colours, line styles) per diagonal-shift schedule of ``starts``
    (its column 'shift', ``vitnqs.tables.describe_shift``), in order of first appearance."""
    shifts = list(dict.fromkeys(starts["shift"]))
    return dict(zip(shifts, cycle * len(shifts)))


def fig_starts(starts: pd.DataFrame, histories: dict[str, pd.DataFrame], reference: float,
               title: str, steps: int = 150) -> Figure:
    """Top row: the first ``steps`` steps of every start (rows of ``vitnqs.starts.table_starts``,
    one system), one panel per mechanism and a line per start, coloured by its diagonal-shift
    schedule: the relative error of each step's energy, with the fast-start bounds (within
    FAST_START_ERROR in the first FAST_START_STEPS steps) as dotted lines; energies more than
    BLOW_UP times the reference away (blow-ups) are drawn at BLOW_UP. Bottom row: the starts
    trained past ``steps`` (finished or still training), whole, on log-log axes: the relative
    error of the running mean of WHOLE_RUN_WINDOW steps' energies, a dot at the final error of a
    finished run."""
    colors = per_shift(starts, SHIFT_COLORS)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, len(MECHANISMS), figsize=(11.0, 6.4), sharey="row",
                                 layout="constrained", squeeze=False)
        for ax, whole, mechanism in zip(axes[0], axes[1], MECHANISMS):
            rows = starts[starts.attention == mechanism]
            for row in rows.itertuples():
                early = histories[row.run_id]
                early = early[early.step < steps]
                ax.plot(early.step, step_errors(early, reference), color=colors[row.shift],
                        lw=0.8, alpha=0.8)
            known = rows[rows.fast_start.notna()]
            fast = int(known.fast_start.astype(bool).sum())
            ax.set_title(f"{mechanism}: {fast} of {len(known)} starts fast", fontsize=9)
            ax.axhline(FAST_START_ERROR, color="k", ls=":", lw=0.8)
            ax.axvline(FAST_START_STEPS, color="k", ls=":", lw=0.8)
            ax.set_yscale("log")
            ax.set_xlabel("optimization step")
            if not len(rows):
                mark_no_runs(ax)
            _whole_runs(whole, rows[rows.steps_recorded > steps], histories, reference, colors)
            whole.set_title(f"{mechanism}: runs past step {steps}, whole", fontsize=9)
        axes[0][0].set_ylabel("relative error of the step's energy")
        axes[1][0].set_ylabel(f"relative error, mean of {WHOLE_RUN_WINDOW} steps")
        shift_lines = [Line2D([], [], color=color, lw=0.8, label=f"shift {shift}")
                       for shift, color in colors.items()]
        axes[0][-1].legend(handles=shift_lines, fontsize=7, loc="upper right")
        fig.suptitle(title, fontsize="small")
    return fig


def _whole_runs(ax, rows: pd.DataFrame, histories: dict[str, pd.DataFrame], reference: float,
                colors: dict[str, str]) -> None:
    """fig_starts's bottom panel of one mechanism."""
    for row in rows.itertuples():
        history = histories[row.run_id]
        ax.plot(history.step + 1, running_mean_errors(history, reference),
                color=colors[row.shift], lw=0.8, alpha=0.8)
        if not pd.isna(row.relative_error):
            ax.plot(row.n_steps, row.relative_error, "o", color=colors[row.shift], ms=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("optimization step + 1")
    if not len(rows):
        mark_no_runs(ax)
