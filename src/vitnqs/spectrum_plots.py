"""The figure of ``vitnqs.sr_spectrum``: rows of one or more runs in, matplotlib Figure out.

Four panels against the optimization step: the energy of the sampled state, the length of the
SR step, the fraction of kernel eigenvalues below the shift, and the share of the step's squared
length that comes from those eigenvalues (energies on a linear scale, or symlog past +-1 per site
when a run's sampled energy leaves [-1, 1], as a diverging one does). One colour per run, one
line style per shift; the marked lines are each run's own shift (the one its training used).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from vitnqs.plotting import panel_grid

PANELS = (
    ("energy", "energy per site (sampled)", "linear"),
    ("step_norm", r"$|d\theta|$ (SR step per unit learning rate)", "log"),
    ("eigen_below_shift", "kernel eigenvalues below the shift", "linear"),
    ("small_share", r"share of $|d\theta|^2$ from them", "linear"),
)
SHIFT_STYLES = ("-", "--", ":", "-.")
RUN_COLORS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown")


def fig_sr_spectrum(frame: pd.DataFrame) -> Figure:
    """Panels of PANELS for every run in ``frame`` (rows of vitnqs.sr_spectrum.sr_spectrum)."""
    if frame.empty:
        raise ValueError("fig_sr_spectrum needs the rows of at least one run")
    shifts = sorted(frame["shift"].unique())
    styles = dict(zip(shifts, SHIFT_STYLES))
    runs = list(dict.fromkeys(frame["run_id"]))
    fig, axes = panel_grid(len(PANELS))
    for ax, (column, title, scale) in zip(axes, PANELS):
        if column == "energy" and (frame["energy"].abs() > 1.0).any():
            # +290 per site beside -0.49: linear up to 1, logarithmic past
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_title(f"{title}; symlog past 1", fontsize=9)
        else:
            ax.set_yscale(scale)
            ax.set_title(title, fontsize=9)
    run_labels = []
    for color, run_id in zip(RUN_COLORS, runs):
        rows = frame[frame["run_id"] == run_id].sort_values("step")
        own = rows["diag_shift"].iloc[0]
        label = f"{run_id} (trained with shift {own:g})"
        run_labels.append((color, label))
        for ax, (column, _, _) in zip(axes, PANELS):
            if column == "energy":
                first = rows[rows["shift"] == shifts[0]]
                ax.plot(first["step"], first["energy"], color=color, marker=".", label=label)
                continue
            for shift, at_shift in rows.groupby("shift"):
                ax.plot(at_shift["step"], at_shift[column], color=color, ls=styles[shift],
                        marker="o" if shift == own else None, ms=3, label=label)
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=color, label=label) for color, label in run_labels]
    handles += [Line2D([], [], color="gray", ls=styles[shift], label=f"shift {shift:g}")
                for shift in shifts]
    handles.append(Line2D([], [], color="gray", marker="o", ms=3, ls="none",
                          label="the run's own shift"))
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8)
    fig.suptitle(f"SR step from M = {int(frame['n_samples'].iloc[0])} fresh samples per snapshot",
                 fontsize=10)
    return fig
