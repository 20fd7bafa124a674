"""Figures of the attention analysis: arrays and DataFrames in, matplotlib Figure out.

Maps are the head-averaged ones (the last of the G = H + 1 heads in ``vitnqs.analysis``) of the
first layer, as in the paper's Fig. 4.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vitnqs.config import parse_run_id  # noqa: E402
from vitnqs.plotting import (  # noqa: E402
    COLORS, LEGEND_BESIDE, SEED_MARKERS, by_mechanism, by_seed, legend_once_per_label,
    protocol_line_styles, protocol_markers,
)

SNAPSHOT_NAMES = ("initialization", "optimized")
"""Row titles of the two snapshots (step 0 and the last step)."""


def _draw_map(ax, map_PxP: np.ndarray, title: str, fig) -> None:
    image = ax.imshow(map_PxP, cmap="viridis")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def fig4(t5_maps: dict | None, decoupled_maps: dict | None, layer: int = 0) -> plt.Figure:
    """(a) t5 maps for three inputs, (b) decoupled softmax (sample average) and positional term;
    rows: initialization and after optimization. A missing run leaves its panels out."""
    n_inputs = 0 if t5_maps is None else t5_maps["attention_inputs"].shape[2]
    n_cols = n_inputs + (2 if decoupled_maps is not None else 0)
    if n_cols == 0:
        raise ValueError("fig4 needs the maps of a t5 or a decoupled run")
    fig, axes = plt.subplots(2, n_cols, figsize=(2.2 * n_cols, 4.4), squeeze=False)
    for row, name in enumerate(SNAPSHOT_NAMES):
        for k in range(n_inputs):
            step = int(t5_maps["steps"][row])
            title = f"(a) t5, input {k + 1}\n{name} (step {step})"
            _draw_map(axes[row, k], t5_maps["attention_inputs"][row, layer, k, -1], title, fig)
        if decoupled_maps is not None:
            step = int(decoupled_maps["steps"][row])
            softmax = decoupled_maps["softmax_average"][row, layer, -1]
            positional = decoupled_maps["positional_average"][row, layer, -1]
            _draw_map(axes[row, n_inputs], softmax,
                      f"(b) decoupled softmax, mean\n{name} (step {step})", fig)
            _draw_map(axes[row, n_inputs + 1], positional,
                      f"(b) decoupled positional\n{name} (step {step})", fig)
    fig.tight_layout()
    return fig


def _with_protocol_and_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with each row's protocol and seed, read from its run id (the analysis files
    carry only the run id)."""
    fields = [parse_run_id(run_id) for run_id in frame["run_id"]]
    return frame.assign(protocol=[f["protocol"] for f in fields], seed=[f["seed"] for f in fields])


def fig_input_dependence(frame: pd.DataFrame) -> plt.Figure:
    """Index (mean over layers and heads, 'attention' term) vs optimization step: one panel per
    system (L, J2, n_l), one colour per mechanism, one line style per protocol, one line per run
    (seeds of one mechanism and protocol: one marker each, the seed in the label)."""
    per_head = frame[(frame["term"] == "attention") & (frame["head"].astype(str) != "mean")]
    per_head = _with_protocol_and_seed(per_head)
    panels = per_head.groupby(["L", "J2", "n_layers"], sort=True)
    styles = protocol_line_styles(per_head["protocol"])
    n_cols = min(3, panels.ngroups)
    n_rows = -(-panels.ngroups // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.3 * n_cols, 3.6 * n_rows), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, ((L, J2, n_layers), panel) in zip(axes.flat, panels):
        for attention, mechanism in by_mechanism(panel):
            for protocol, runs in mechanism.groupby("protocol"):
                several = runs.run_id.nunique() > 1
                for rank, seed, run in by_seed(runs):
                    curve = run.groupby("step")["index"].mean()
                    name = f"{protocol}, seed {seed}" if several else protocol
                    ax.plot(curve.index, curve.values, ls=styles[protocol], ms=3,
                            marker=SEED_MARKERS[rank % len(SEED_MARKERS)],
                            color=COLORS.get(attention), label=f"{attention} ({name})")
        # one entry per mechanism, protocol and seed, below the panel (6x6's runs fill it)
        legend_once_per_label(ax, fontsize=6, ncol=2, loc="upper center",
                              bbox_to_anchor=(0.5, -0.2))
        ax.set_xscale("symlog", linthresh=1)
        ax.set_yscale("log")
        ax.set_xlabel("optimization step")
        ax.set_title(f"L = {L}, J2 = {J2:g}, n_l = {n_layers}", fontsize=9)
    for ax in axes.flat[panels.ngroups:]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("input-dependence index")
    return fig


def fig_input_dependence_size(table: pd.DataFrame, **runs) -> plt.Figure:
    """Index vs L for the rows whose columns equal `runs` (e.g. J2=0.5, n_layers=4), one line per
    mechanism and protocol (the run id's suffix; never averaged across protocols): the first
    layer (left) and the mean over layers (right), at initialization (hollow, dotted) and after
    optimization (filled). Several seeds at one L: the mean, and a vertical bar from the lowest
    seed's index to the highest's."""
    selected = table
    for column, value in runs.items():
        selected = selected[selected[column] == value]
    selected = _with_protocol_and_seed(selected)
    markers = protocol_markers(selected["protocol"]) if selected["protocol"].nunique() > 1 else {}
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.5), sharey=True, layout="constrained")
    panels = (("first layer", selected[selected["layer"] == 0]), ("mean over layers", selected))
    for ax, (title, rows) in zip(axes, panels):
        for attention, mechanism in by_mechanism(rows):
            for protocol, group in mechanism.groupby("protocol"):
                per_run = group.groupby(["run_id", "L"],
                                        as_index=False)[["index_init", "index_end"]]
                seeds = per_run.mean().groupby("L")[["index_init", "index_end"]]
                per_L, lowest, highest = seeds.mean(), seeds.min(), seeds.max()
                color, marker = COLORS.get(attention), markers.get(protocol, "o")
                name = f"{attention} ({protocol})" if markers else attention
                ax.plot(per_L.index, per_L["index_end"], f"{marker}-", color=color,
                        label=f"{name}, end")
                ax.plot(per_L.index, per_L["index_init"], f"{marker}:", color=color, mfc="none",
                        label=f"{name}, step 0")
                several = seeds.size() > 1  # the seeds' range behind a mean
                for column, style in (("index_end", "-"), ("index_init", ":")):
                    ax.vlines(per_L.index[several], lowest[column][several],
                              highest[column][several], color=color, linestyles=style)
        ax.set_xticks(sorted({int(L) for L in selected["L"]}))
        ax.set_xlabel("L")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("input-dependence index")
    axes[1].legend(fontsize=7, **LEGEND_BESIDE)  # indices of every size fill the panels
    fig.suptitle(", ".join(f"{k} = {v}" for k, v in runs.items()), fontsize=9)
    return fig
