"""Do the mechanisms agree? Each mechanism's seeds reduced to one energy, and the spreads.

Per system and network (L, J2, n_l, d, h) and protocol, ``table_agreement`` gives every
mechanism its lowest energy over seeds (the best variational bound, as a paper reports), the
mean over seeds, and how far the seeds lie apart; then how far the mechanisms' lowest energies
lie apart, relative to the reference energy: the number the paper's claim "the three
mechanisms reach the same accuracy" is about (issue 7 asks for at most 3e-4), beside the same
spread of the paper's Table 1 where the paper has the system (``of_the_three_mechanisms``:
probes of t5 without queries and keys left out). Nothing here reads files.
"""

from __future__ import annotations

import pandas as pd

from vitnqs.config import MECHANISMS
from vitnqs.paper import paper_energies
from vitnqs.probes import SETTING_DEFAULTS
from vitnqs.tables import format_scientific, format_with_error, relative_error

SYSTEM_KEYS = ["L", "J2", "n_layers", "d_model", "n_heads", "protocol", "n_steps", "n_samples"]
"""Runs compared with each other: one system, one network width and depth, one protocol."""

AGREEMENT_COLUMNS = (
    "L", "J2", "n_layers", "d_model", "n_heads", "protocol", "n_steps", "n_samples",
    "attention", "seeds", "best_seed",
    "best_energy", "best_energy_error", "reference_energy", "best_relative_error",
    "mean_relative_error", "seed_spread", "mechanism_spread", "mechanism_spread_error",
    "paper_spread",
)
"""Columns of table_agreement, one row per mechanism of a system and protocol."""


def of_the_three_mechanisms(summaries: list[dict]) -> list[dict]:
    """The summary.json mappings of runs of t5, decoupled and factored as the paper defines them:
    t5 without its query-key term (``query_key: false``, group query_key_probe) is a probe of
    t5, not a mechanism, and is left out (results/tables/probes.md shows it). A summary written
    before the option existed has t5's query-key term."""
    default = SETTING_DEFAULTS["query_key"]
    return [s for s in summaries if (s.get("config") or {}).get("query_key", default)]


def _spread(energies: pd.Series, reference: float) -> float:
    """(highest - lowest) / |reference|; NaN for fewer than two energies."""
    return (energies.max() - energies.min()) / abs(reference) if len(energies) > 1 else float("nan")


def _mechanism_spread(best: dict[str, pd.Series], reference: float) -> tuple[float, float]:
    """The spread of the mechanisms' lowest energies (best: mechanism -> its lowest-energy run),
    (highest - lowest) / |reference|, and its statistical error: the final-energy error bars of
    those two runs in quadrature, over |reference| (how far sampling alone may move the spread
    against a bar such as 3e-4). NaN and NaN for fewer than two mechanisms."""
    if len(best) < 2:
        return float("nan"), float("nan")
    low = min(best.values(), key=lambda run: run.energy_per_site)
    high = max(best.values(), key=lambda run: run.energy_per_site)
    error = (low.energy_error ** 2 + high.energy_error ** 2) ** 0.5
    return (high.energy_per_site - low.energy_per_site) / abs(reference), error / abs(reference)


def table_agreement(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per mechanism of each system and protocol in summary_frame's rows ``runs``."""
    rows = []
    for system, same in runs.reset_index(drop=True).groupby(SYSTEM_KEYS, sort=False):
        known = same.reference_energy.dropna()
        reference = known.iloc[0] if len(known) else float("nan")  # no ED or QMC value
        scale = reference if len(known) else same.energy_per_site.min()  # of the spreads
        best = {attention: seeds.loc[seeds.energy_per_site.idxmin()]
                for attention, seeds in same.groupby("attention", sort=False)}
        mechanisms, mechanisms_error = _mechanism_spread(best, scale)
        for attention, seeds in same.groupby("attention", sort=False):
            lowest = best[attention]
            rows.append({
                **dict(zip(SYSTEM_KEYS, system)), "attention": attention,
                "seeds": ", ".join(str(int(s)) for s in sorted(seeds.seed.dropna())),
                "best_seed": lowest.seed, "best_energy": lowest.energy_per_site,
                "best_energy_error": lowest.energy_error, "reference_energy": reference,
                "best_relative_error": relative_error(lowest.energy_per_site, reference),
                "mean_relative_error": relative_error(seeds.energy_per_site.mean(), reference),
                "seed_spread": _spread(seeds.energy_per_site, scale),
                "mechanism_spread": mechanisms,
                "mechanism_spread_error": mechanisms_error,
                "paper_spread": _spread(paper_energies(lowest), scale),
            })
    table = pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
    order = table.attention.map({m: i for i, m in enumerate(MECHANISMS)})
    return (table.assign(_order=order)
            .sort_values(["L", "J2", "n_layers", "d_model", "n_heads", "n_steps", "n_samples",
                          "_order"], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


def format_agreement(table: pd.DataFrame) -> str:
    """Markdown: the table, with the spreads as relative numbers."""
    heading = ("**Do the mechanisms agree?** Each mechanism's lowest energy over its seeds; "
               "spreads are (highest - lowest) / |reference| over the seeds of a mechanism, "
               "over the mechanisms' lowest energies (with its statistical error: the two "
               "final energies' error bars in quadrature), and over the paper's Table 1 "
               "(where a system has no reference energy: over |lowest energy|, and no "
               "relative error)\n\n")
    if table.empty:
        return heading + "No finished runs yet.\n"
    shown = pd.DataFrame({
        "L": table.L, "J2": table.J2, "n_l": table.n_layers, "protocol": table.protocol,
        "attention": table.attention, "seeds": table.seeds,
        "E per site (lowest)": [format_with_error(v, e) for v, e
                                in zip(table.best_energy, table.best_energy_error)],
        **{label: table[column].map(format_scientific) for label, column in (
            ("rel. error (lowest)", "best_relative_error"),
            ("rel. error (mean of seeds)", "mean_relative_error"),
            ("seed spread", "seed_spread"),
            ("mechanisms' spread", "mechanism_spread"),
            ("its statistical error", "mechanism_spread_error"),
            ("paper's spread", "paper_spread"))},
    })
    return heading + shown.astype(str).to_markdown(index=False, disable_numparse=True) + "\n"
