"""Tables from the analysis files (input-dependence frames, freeze-ablation records): pandas only,
so the table rules load no JAX. The files themselves come from ``vitnqs.analysis`` and
``vitnqs.frozen_attention``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def index_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Index of the 'attention' term at the first and last snapshot, per run and layer.

    index_init / index_end: mean over heads of the per-head index; map_index_*: the index of the
    head-averaged map (the map the paper draws).
    """
    attention = frame[frame["term"] == "attention"]
    keys = ["run_id", "attention", "L", "J2", "n_layers", "layer"]
    rows = []
    for key, group in attention.groupby(keys, sort=True):
        first, last = group["step"].min(), group["step"].max()
        heads = group[group["head"] != "mean"]
        maps = group[group["head"] == "mean"].set_index("step")["index"]
        rows.append({
            **dict(zip(keys, key)),
            "step_init": first, "step_end": last,
            "index_init": heads[heads["step"] == first]["index"].mean(),
            "index_end": heads[heads["step"] == last]["index"].mean(),
            "map_index_init": maps[first], "map_index_end": maps[last],
        })
    return pd.DataFrame(rows)


R_HAT_MAX = 1.1
"""Above this split-R-hat, the fresh chains of an estimate have not mixed (NetKet's statistics)."""

Z_MAX = 3.0
"""Fresh chains and the run's own final energy agree when they differ by at most Z_MAX sigma."""


RECORDED_SINCE_SESSION_28 = ("n_chains_stranded", "n_chains_stranded_frozen", "energy_r_hat",
                             "energy_frozen_r_hat")
"""Fields of an ablation file that earlier files lack; their table cells stay empty."""


def ablation_table(ablations: list[dict], summaries: dict[str, dict]) -> pd.DataFrame:
    """One row per freeze ablation, checked against its run's final energy.

    The ablation samples the state from fresh chains (random Sz = 0 starts); the run's final
    energy comes from the chains that trained it. Both estimate the same <H>, so the unfrozen
    energy must agree with the final one. It does not when fresh chains find a region of
    configurations the training chains never visited. Columns added: the run's final
    energy and error, fresh - final in units of the combined error, and `chains_agree`: that
    difference within Z_MAX sigma and, where recorded (files written before it was recorded lack
    it), each estimate's R-hat at most R_HAT_MAX. Where chains do not agree, the energy change
    of that row is not a measurement of the freeze.
    """
    table = pd.DataFrame(ablations or {"run_id": [], "energy": [], "energy_error": []})
    final = table["run_id"].map(lambda run_id: summaries[run_id]["energy_per_site"])
    final_error = table["run_id"].map(lambda run_id: summaries[run_id]["energy_error"])
    table["energy_final"], table["energy_final_error"] = final, final_error
    table["fresh_minus_final_sigma"] = (
        (table["energy"] - final) / np.hypot(table["energy_error"], final_error)
    )
    for column in RECORDED_SINCE_SESSION_28:
        table[column] = table.get(column, np.nan)
    table["chains_agree"] = (  # a missing R-hat does not count against
        (table["fresh_minus_final_sigma"].abs() <= Z_MAX)
        & ~(table["energy_r_hat"] > R_HAT_MAX) & ~(table["energy_frozen_r_hat"] > R_HAT_MAX)
    )
    return table
