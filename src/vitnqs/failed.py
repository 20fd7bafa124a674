"""Runs taken out of the workflow config and kept under results/failed/ as evidence.

A folder there holds a run's config.yaml, history.csv and train.log. Most runs there diverged:
training stopped on a non-finite energy, and the history holds every step before it. A run that
was still finite but was stopped by hand (it was not learning, and a retry replaced it) says so
in a file STOPPED_NOTE whose first line gives the reason. ``read_failed_run`` reads a folder;
the status and probe tables show ``FailedRun.outcome``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vitnqs import io
from vitnqs.trained import read_run_config

STOPPED_NOTE = "stopped.txt"
"""In a failed/ run folder: why a run that had not diverged was stopped (first line)."""


@dataclass(frozen=True)
class FailedRun:
    """A run under results/failed/: its config (defaults of this code filled in), its history
    and what ended it (``failed_outcome``)."""

    config: dict
    history: pd.DataFrame
    outcome: str


DIVERGED = "diverged at step"
"""How the outcome of a run that diverged begins (``failed_outcome``, ``diverged``)."""


def failed_outcome(steps_recorded: int, stopped_because: str | None = None) -> str:
    """'diverged at step k' (k = steps recorded: the first step not recorded, whose energy was
    not finite), or 'stopped after k steps: <reason>' for a run stopped by hand."""
    if stopped_because:
        return f"stopped after {steps_recorded} steps: {stopped_because}"
    return f"{DIVERGED} {steps_recorded}"


def diverged(outcomes: pd.Series) -> pd.Series:
    """Which outcomes (``failed_outcome``, 'finished', 'training') are of runs that diverged."""
    return outcomes.str.startswith(DIVERGED)


def read_failed_run(run_dir: Path | str) -> FailedRun:
    """The FailedRun of a folder under results/failed/. Its config.yaml may come from an older
    version of this code: RunConfig fills in the fields added since."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir).to_dict()
    history = io.read_csv(run_dir / "history.csv", required=("step", "energy"))
    note = run_dir / STOPPED_NOTE
    reason = None
    if note.exists():
        lines = note.read_text().strip().splitlines()
        if not lines:
            raise ValueError(f"{note} is empty: its first line should say why the run was stopped")
        reason = lines[0]
    return FailedRun(config, history, failed_outcome(len(history), reason))
