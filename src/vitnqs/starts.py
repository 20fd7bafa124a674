"""How each start began, and where it ended: fast and slow starts.

At 6x6, J2 = 0.5, n_l = 4 under `paper` the energies of the first steps fall in two groups: a
*fast* start comes within 10 % of the reference energy in its first ~25 steps, a *slow* one sits
far above it, with a low acceptance, for 50 steps or more, or diverges there; the fast ones ended
lower (results/tables/starts.md; issue 7 notes, session 30). ``table_starts`` lists every start
with a history (runs of the grid, runs under failed/, start probes: ``vitnqs.records``) and
whether it was fast; ``summary_starts`` counts them per system, protocol and mechanism. Nothing
here reads files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vitnqs.failed import diverged
from vitnqs.probes import START_KEYS, RunRecord, outcome_of
from vitnqs.reference import reference_energy
from vitnqs.tables import (describe_shift, format_scientific, relative_error, sort_runs,
                           steps_of)

FAST_START_ERROR = 0.1
"""A start is fast if its energy per site comes within this relative error of the reference..."""
FAST_START_STEPS = 25
"""... in its first this many steps (0 to 24). At 6x6 `paper` the fast starts got there at
steps 9-13 (12-22 with the shift 1e-2), the slow ones at step 48 or later, or never."""

SETTING_KEYS = ("protocol", "n_samples", "n_steps")
"""The RunConfig keys of the optimization shown beside each start (its shift schedule is the
column 'shift', ``describe_shift``)."""

RECORD_COLUMNS = ("run_id", "source", *START_KEYS, *SETTING_KEYS, "shift", "steps_recorded",
                  "outcome")
"""What names a run record and where it got to: the first columns of the tables built from
records (``record_columns``)."""

START_COLUMNS = (
    *RECORD_COLUMNS, "first_step_near", "fast_start", "lowest_early_acceptance", "relative_error",
)
"""Columns of table_starts, one row per start."""

SUMMARY_KEYS = ("L", "J2", "n_layers", "protocol", "shift", "attention")
"""What summary_starts groups by: a system, a protocol (and its shift) and a mechanism."""


def first_step_near(energies: np.ndarray, reference: float) -> int | None:
    """The first step (index into ``energies``, per site) within FAST_START_ERROR of the
    reference, or None if none is (non-finite energies never are)."""
    with np.errstate(invalid="ignore"):
        near = np.flatnonzero(relative_error(np.asarray(energies, dtype=float), reference)
                              < FAST_START_ERROR)
    return int(near[0]) if len(near) else None


def is_fast_start(first_near: int | None, steps_recorded: int) -> bool | None:
    """True if the start came near in its first FAST_START_STEPS steps; False if it did not and
    the history holds them all; None (not known) if it is shorter and not near yet."""
    if first_near is not None and first_near < FAST_START_STEPS:
        return True
    return False if steps_recorded >= FAST_START_STEPS else None


def start_row(run_id: str, record: RunRecord) -> dict:
    """One row of table_starts. Runs of a system without a reference energy have no
    first_step_near and no fast_start; lowest_early_acceptance is over the first
    FAST_START_STEPS steps."""
    config, history = record.config, record.history
    reference = reference_energy(config["L"], config["J2"])
    energies = history["energy"].to_numpy(dtype=float)
    first_near = first_step_near(energies, reference.value) if reference else None
    early = history[history["step"] < FAST_START_STEPS]
    return {
        **record_columns(run_id, record),
        "first_step_near": first_near,
        "fast_start": is_fast_start(first_near, len(history)) if reference else None,
        "lowest_early_acceptance": (float(early["acceptance"].min())
                                    if "acceptance" in early and len(early) else None),
        "relative_error": final_error(record),
    }


def record_columns(run_id: str, record: RunRecord) -> dict:
    """The RECORD_COLUMNS of a record with a history."""
    config = record.config
    return {
        "run_id": run_id,
        "source": record.source,
        **{key: config[key] for key in (*START_KEYS, *SETTING_KEYS)},
        "shift": describe_shift(config),
        "steps_recorded": len(record.history),
        "outcome": outcome_of(record),
    }


def final_error(record: RunRecord) -> float | None:
    """The final relative error of a finished run (its summary's), else None."""
    return record.summary.get("relative_error") if record.summary is not None else None


def table_of_records(records: dict[str, RunRecord], row, columns) -> pd.DataFrame:
    """One row, ``row(run_id, record)`` (None leaves the record out), per record with a history,
    ordered by system, mechanism, protocol cost and seed."""
    rows = [values for run_id, record in records.items()
            if record.history is not None and len(record.history)
            and (values := row(run_id, record)) is not None]
    table = pd.DataFrame(rows, columns=list(columns))
    return sort_runs(table.sort_values(["protocol", "source"], kind="stable"))


def table_starts(records: dict[str, RunRecord]) -> pd.DataFrame:
    """Every record with a history, ordered by system, mechanism, protocol cost and seed."""
    return table_of_records(records, start_row, START_COLUMNS)


def starts_of_system(records: dict[str, RunRecord],
                     system: dict) -> tuple[dict[str, RunRecord], pd.DataFrame]:
    """The records whose config has every value of ``system`` (e.g. L, J2, n_layers,
    n_samples; a list of values admits any of them), and their table_starts: the starts one
    figure draws."""
    chosen = {run_id: record for run_id, record in records.items()
              if all(_has_value(record.config[key], value) for key, value in system.items())}
    return chosen, table_starts(chosen)


def _has_value(setting, wanted) -> bool:
    return setting in wanted if isinstance(wanted, list | tuple) else setting == wanted


def _error_range(errors: pd.Series) -> str:
    errors = errors.dropna()
    if not len(errors):
        return ""
    low, high = errors.min(), errors.max()
    return format_scientific(low) if low == high else (
        f"{format_scientific(low)} to {format_scientific(high)}")


def summary_starts(table: pd.DataFrame) -> pd.DataFrame:
    """Per SUMMARY_KEYS: starts whose kind is known, fast ones among them, starts that
    diverged, and the range of final relative errors of the finished fast and slow starts."""
    rows = []
    for key, starts in table.groupby(list(SUMMARY_KEYS), sort=False, dropna=False):
        known = starts[starts.fast_start.notna()]
        fast = known.fast_start.astype(bool)
        rows.append({
            **dict(zip(SUMMARY_KEYS, key)),
            "starts": len(known),
            "fast": int(fast.sum()),
            "diverged": int(diverged(starts.outcome).sum()),
            "finished_fast": _error_range(known.relative_error[fast]),
            "finished_slow": _error_range(known.relative_error[~fast]),
        })
    return pd.DataFrame(rows, columns=[*SUMMARY_KEYS, "starts", "fast", "diverged",
                                       "finished_fast", "finished_slow"])


def format_starts(table: pd.DataFrame, summary: pd.DataFrame) -> str:
    """Markdown: the summary, then every start."""
    if not len(table):
        return "No runs with a history yet.\n"
    counts = summary.assign(
        system=[f"{L}x{L}, J2 = {J2}, n_l = {n}" for L, J2, n in
                zip(summary.L, summary.J2, summary.n_layers)],
    )[["system", "protocol", "shift", "attention", "starts", "fast", "diverged",
       "finished_fast", "finished_slow"]].rename(columns={
           "shift": "diag. shift",
           "finished_fast": "rel. error, fast (finished)",
           "finished_slow": "rel. error, slow (finished)"})
    starts = pd.DataFrame({
        "run": table.run_id,
        "folder": table.source,
        "steps": steps_of(table.steps_recorded, table.n_steps),
        "outcome": table.outcome,
        "first step near": table.first_step_near.map(lambda s: "" if pd.isna(s) else str(int(s))),
        "fast start": table.fast_start.map(lambda f: "" if pd.isna(f) else ("yes" if f else "no")),
        f"lowest acceptance, steps 0-{FAST_START_STEPS - 1}": table.lowest_early_acceptance.map(
            lambda a: "" if pd.isna(a) else f"{a:.2f}"),
        "rel. error": table.relative_error.map(format_scientific),
    })
    return (
        f"Fast and slow starts. A start is fast if its energy per site comes within "
        f"{FAST_START_ERROR:.0%} of the reference energy in its first {FAST_START_STEPS} steps "
        f"('first step near': the first step that does). Counts per system, protocol and "
        f"mechanism; the relative errors are the final ones of the finished starts. Folders: "
        f"runs/ (the config's runs), failed/ (taken out: diverged or stopped), probes/starts/ "
        f"(first steps only).\n\n"
        + counts.to_markdown(index=False, disable_numparse=True)
        + "\n\nEvery start:\n\n" + starts.to_markdown(index=False, disable_numparse=True) + "\n")
