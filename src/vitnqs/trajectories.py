"""How far each run is from the reference energy along its optimization: the relative error of
its mean energy per site over fixed windows of steps, so that a run still training stands beside
finished runs at the same steps; and its excursions, steps whose energy jumps well above where
the run had settled. Nothing here reads files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vitnqs.probes import RunRecord
from vitnqs.reference import reference_energy
from vitnqs.starts import RECORD_COLUMNS, final_error, record_columns, table_of_records
from vitnqs.tables import format_scientific, relative_error, steps_of

WINDOW_ENDS = (100, 250, 500, 1000, 2000, 3000, 4000, 5000)
"""Each window is the last WINDOW_SHARE of the steps before one of these ends."""
WINDOW_SHARE = 0.1


def windows(ends=WINDOW_ENDS) -> list[tuple[int, int]]:
    """(first, end) step ranges, first included, end not: (90, 100), (225, 250), ..."""
    return [(end - round(end * WINDOW_SHARE), end) for end in ends]


def window_column(first: int, end: int) -> str:
    return f"error_{first}_{end - 1}"


def window_error(history: pd.DataFrame, reference: float, first: int, end: int) -> float | None:
    """Relative error of the mean energy per site over steps first..end-1, or None unless the
    history holds each of those steps with a finite energy (a run short of the window, or one
    that blew up in it)."""
    inside = history[(history["step"] >= first) & (history["step"] < end)]
    energies = inside["energy"].to_numpy(dtype=float)
    if inside["step"].nunique() != end - first or not np.isfinite(energies).all():
        return None
    return float(relative_error(energies.mean(), reference))


EXCURSION_BASELINE = 50
"""A step's rise is measured from the median relative error of this many steps before it."""
EXCURSION_RISE = 1e-2
"""A step is an excursion when its relative error exceeds that median by more than this: 1 % of
the reference energy, ~30x the statistical error of one step's energy late in a 6x6 run."""


def rises(history: pd.DataFrame, reference: float) -> np.ndarray:
    """Each step's relative error minus the median relative error of the EXCURSION_BASELINE
    steps before it: NaN for the first steps, and where a non-finite energy is involved."""
    errors = pd.Series(relative_error(history["energy"].to_numpy(dtype=float), reference))
    settled = errors.shift(1).rolling(EXCURSION_BASELINE, min_periods=EXCURSION_BASELINE).median()
    rise = (errors - settled).to_numpy()
    return np.where(np.isfinite(rise), rise, np.nan)


def excursions(history: pd.DataFrame, reference: float) -> dict:
    """How many steps rose by more than EXCURSION_RISE (``excursion_steps``), the largest rise
    and the step it came at (``largest_rise``, ``largest_rise_step``; None for a history with
    no step measured, such as one no longer than the baseline)."""
    rise = rises(history, reference)
    if np.isnan(rise).all():
        return {"excursion_steps": 0, "largest_rise": None, "largest_rise_step": None}
    largest = np.nanargmax(rise)
    return {"excursion_steps": int((rise > EXCURSION_RISE).sum()),  # NaN compares False
            "largest_rise": float(rise[largest]),
            "largest_rise_step": int(history["step"].iloc[largest])}


TRAJECTORY_COLUMNS = (*RECORD_COLUMNS, *(window_column(*w) for w in windows()), "relative_error",
                      "excursion_steps", "largest_rise", "largest_rise_step")
"""Columns of table_trajectories, one row per run."""


def trajectory_row(run_id: str, record: RunRecord) -> dict | None:
    """One row of table_trajectories; None for a system without a reference energy."""
    reference = reference_energy(record.config["L"], record.config["J2"])
    if reference is None:
        return None
    return {
        **record_columns(run_id, record),
        **{window_column(first, end): window_error(record.history, reference.value, first, end)
           for first, end in windows()},
        "relative_error": final_error(record),
        **excursions(record.history, reference.value),
    }


def table_trajectories(records: dict[str, RunRecord]) -> pd.DataFrame:
    """One row per record with a history and a reference energy: its window errors (None where
    the history does not cover a window) and its final relative error if finished."""
    return table_of_records(records, trajectory_row, TRAJECTORY_COLUMNS)


def format_trajectories(table: pd.DataFrame) -> str:
    """Markdown: per system, one row per run, the window errors and the final error."""
    if not len(table):
        return "No runs with a history and a reference energy yet.\n"
    sections = []
    for (L, J2, n_layers), runs in table.groupby(["L", "J2", "n_layers"], sort=False):
        covered = [w for w in windows() if runs[window_column(*w)].notna().any()]
        shown = pd.DataFrame({
            "run": runs.run_id,
            "shift": runs["shift"],
            "steps": steps_of(runs.steps_recorded, runs.n_steps),
            "outcome": runs.outcome.str.split(":").str[0],
            **{f"{first}-{end - 1}": runs[window_column(first, end)].map(format_scientific)
               for first, end in covered},
            "final": runs.relative_error.map(format_scientific),
            "excursions": runs.excursion_steps,
            "largest rise (step)": [f"{format_scientific(rise)} ({step:.0f})" if pd.notna(rise)
                                    else "" for rise, step in zip(runs.largest_rise,
                                                                  runs.largest_rise_step)],
        })
        sections.append(f"### {L}x{L}, J2 = {J2}, n_l = {n_layers}\n\n"
                        + shown.to_markdown(index=False, disable_numparse=True))
    return ("Relative error of the mean energy per site over windows of steps (the last "
            f"{WINDOW_SHARE:.0%} of the steps before each window's end; blank where the history "
            "does not hold the whole window), and the final relative error (from the final "
            "energy's fresh samples) of a finished run. Excursions: the steps whose relative "
            f"error rose more than {EXCURSION_RISE:.0e} above the median of the "
            f"{EXCURSION_BASELINE} steps before them; largest rise: the most any step rose "
            "so, and at which step.\n\n" + "\n\n".join(sections) + "\n")
