"""The query-key probe's figure: every start of one system in one pair of panels, coloured by
its model, so that t5, t5 without its query-key term (alpha = softmax_j(p)), decoupled and
factored compare on one axis. ``starts`` is ``vitnqs.starts.table_starts`` with a column
``query_key`` added; ``histories`` maps a run id to its history."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from vitnqs.plotting import (
    BLOW_UP, COLORS, STYLE, WHOLE_RUN_WINDOW, mark_no_runs, per_shift, running_mean_errors,
    step_errors,
)

WITHOUT_QUERY_KEY = "t5 without Q, K"
"""The model label of t5 with ``query_key: false``."""

MODEL_COLORS = {"t5": COLORS["t5"], WITHOUT_QUERY_KEY: "tab:purple",
                "decoupled": COLORS["decoupled"], "factored": COLORS["factored"]}
"""Line colour of each model, in the legend's order: the mechanisms' colours of every figure,
and one for t5 without its query-key term."""

SHIFT_STYLES = ("-", "--", ":", "-.")
"""Line style of each diagonal-shift schedule (``vitnqs.tables.describe_shift``) in order of
first appearance: a figure with starts under `paper` and `paper-damped-start` tells them apart."""


def with_query_key(starts: pd.DataFrame, records: dict) -> pd.DataFrame:
    """``starts`` (rows of ``vitnqs.starts.table_starts``) with the column 'query_key' of each
    start's config (``records``: run id -> RunRecord), which fig_query_key_probe colours by."""
    return starts.assign(query_key=[records[run_id].config["query_key"]
                                    for run_id in starts.run_id])


def model_label(attention: str, query_key: bool) -> str:
    """'t5', 'decoupled', 'factored', or WITHOUT_QUERY_KEY."""
    return WITHOUT_QUERY_KEY if attention == "t5" and not query_key else attention


def fig_query_key_probe(starts: pd.DataFrame, histories: dict[str, pd.DataFrame],
                        reference: float, title: str, steps: int = 150) -> Figure:
    """Left: the first ``steps`` steps of every start, the relative error of each step's energy
    (blow-ups drawn at BLOW_UP), a cross at the last step of a start that reached NaN. Right:
    every start, whole: the relative error of the running mean of WHOLE_RUN_WINDOW steps'
    energies (at the window's last step; clipped at BLOW_UP too), a dot at a finished run's
    final error. One line style per diagonal-shift schedule, named in the legend where there
    are several."""
    labels = [model_label(row.attention, row.query_key) for row in starts.itertuples()]
    styles = per_shift(starts, SHIFT_STYLES)
    with plt.rc_context(STYLE):
        fig, (first, whole) = plt.subplots(1, 2, figsize=(9.0, 3.6), layout="constrained")
        for row, label in zip(starts.itertuples(), labels):
            color = MODEL_COLORS[label]
            history = histories[row.run_id]
            early = history[history.step < steps]
            error = step_errors(early, reference)
            style = styles[row.shift]
            first.plot(early.step, error, color=color, ls=style, lw=0.8, alpha=0.8, label=label)
            whole.plot(history.step, running_mean_errors(history, reference).clip(upper=BLOW_UP),
                       color=color, ls=style, lw=0.8, alpha=0.8)
            if row.outcome.startswith("diverged"):
                first.plot(early.step.iloc[-1], error.iloc[-1], "x", color=color, ms=6)
            if not pd.isna(row.relative_error):
                whole.plot(row.n_steps, row.relative_error, "o", color=color, ms=3)
        first.set(yscale="log", xlabel="optimization step",
                  ylabel="relative error of the step's energy")
        whole.set(yscale="log", xlabel="optimization step",
                  ylabel=f"relative error, mean of {WHOLE_RUN_WINDOW} steps")
        handles = [Line2D([], [], color=color, lw=0.8, label=f"{label} ({labels.count(label)})")
                   for label, color in MODEL_COLORS.items() if label in labels]
        if handles:
            handles.append(Line2D([], [], color="k", marker="x", ls="", label="reached NaN"))
            if len(styles) > 1:
                handles += [Line2D([], [], color="0.4", ls=style, lw=0.8, label=f"shift {shift}")
                            for shift, style in styles.items()]
            whole.legend(handles=handles, fontsize=7, loc="upper right")
        else:
            mark_no_runs(first)
            mark_no_runs(whole)
        fig.suptitle(title, fontsize="small")
    return fig
