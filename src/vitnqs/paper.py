"""Numbers quoted from the paper (shared/paper.md), shown beside ours in tables and figures."""

from __future__ import annotations

import pandas as pd

PAPER_TABLE1 = pd.DataFrame(
    [
        (6, "t5", -0.503182, 9e-6, 184_260, 10.0),
        (6, "decoupled", -0.503243, 9e-6, 184_260, 10.0),
        (6, "factored", -0.503216, 8e-6, 154_980, 6.0),
        (10, "t5", -0.497025, 6e-6, 184_900, 28.0),
        (10, "decoupled", -0.497108, 6e-6, 184_900, 28.0),
        (10, "factored", -0.497184, 6e-6, 155_620, 12.5),
    ],
    columns=["L", "attention", "paper_energy", "paper_energy_error", "paper_n_params",
             "paper_hours"],
).assign(J2=0.5, n_layers=4, d_model=60, n_heads=10)
"""Table 1: J2 = 0.5, h = 10, d = 60, b = 2, n_l = 4; energy per site; hours on one A100,
5000 steps."""

PAPER_TABLE1_KEYS = ["L", "J2", "n_layers", "d_model", "n_heads", "attention"]
"""What a run must share with a row of PAPER_TABLE1 to be shown beside it: the system and
the network."""

PAPER_SYSTEM_KEYS = [key for key in PAPER_TABLE1_KEYS if key != "attention"]
"""The system and network of a PAPER_TABLE1 row, whatever its mechanism."""

PAPER_SECONDS_PER_STEP = pd.DataFrame(
    [(6, "t5", 7.2), (6, "decoupled", 7.2), (6, "factored", 4.3),
     (10, "t5", 20.2), (10, "decoupled", 20.2), (10, "factored", 9.0)],
    columns=["L", "attention", "seconds_per_step"],
)
"""Seconds per optimization step quoted by the paper: one A100, M = 6000, n_l = 4."""

PAPER_TIMING_LABEL = "paper (A100, M = 6000)"
"""Legend label of PAPER_SECONDS_PER_STEP."""


def paper_energies(run) -> pd.Series:
    """The paper's Table 1 energies, one per mechanism, of the system and network of ``run`` (a
    summary row; its mechanism is not matched): empty where the paper has none."""
    same = (PAPER_TABLE1[key] == run[key] for key in PAPER_SYSTEM_KEYS)
    return PAPER_TABLE1.paper_energy[pd.concat(same, axis=1).all(axis=1)]
