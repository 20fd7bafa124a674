"""The analysis jobs that sample trained states, as the workflow runs them: their settings
(defaults under the config's ``analysis`` key) and one function per job that computes a run's
file and its provenance record.

The Snakemake rules (workflow/rules/analysis.smk) and ``vitnqs analyse`` (a GPU machine without
Snakemake) call the same functions with the same settings, so a file computed either way is the
same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ANALYSIS_DEFAULTS: dict[str, Any] = {
    # Sampling of each state (vitnqs.analysis.Sampling): M = 6000 as for the paper's Fig. 4.
    "n_samples": 6000,
    "n_chains": 600,
    "n_discard_per_chain": 20,  # sweeps; fresh chains start from random Sz = 0 states
    "seed": 0,
    "chunk_size": 1000,
    # Freeze ablation: fresh samples per energy estimate (frozen and unfrozen network each).
    "n_samples_energy": 120000,
    # Which finished runs make Fig. 4 (6x6, n_l = 1, J2 = 0.5) and the index-vs-L figure.
    "fig4_runs": {"L": 6, "J2": 0.5, "n_layers": 1},
    "size_runs": {"J2": 0.5, "n_layers": 4},
    # Which query-key runs get the freeze ablation: two energy estimates per run, a CPU job of
    # minutes for n_l = 1 at L = 6, of half an hour or more for n_l = 4 (widen it on a GPU).
    "ablation_runs": {"L": 6, "n_layers": 1},
    # Sec. 4.3: full Sz = 0 sector on L_full, exact dimer samples on L_sampled, J/J' = 0.5.
    "shastry_sutherland": {
        "L_full": 4, "L_sampled": 6, "J": 0.5, "J_dimer": 1.0, "n_samples": 1000, "seed": 0,
    },
}
"""Settings of the analysis rules; the config's ``analysis`` mapping overrides them key by key."""

SAMPLING_KEYS = ("n_samples", "n_chains", "n_discard_per_chain", "seed", "chunk_size")
"""The settings that make a vitnqs.analysis.Sampling."""

OUTPUTS = {"input_dependence": ".csv", "freeze_ablation": ".json"}
"""Analysis jobs run one per run, and the suffix of the file each writes."""

QUERY_KEY_MECHANISMS = ("t5", "decoupled")
"""Mechanisms with query-key weights: the runs whose input dependence is measured (and, where
analysis.ablation_runs selects them, frozen); factored's weights ignore the input."""


def has_query_key_weights(run) -> bool:
    """Whether a run's attention weights can depend on the input: a query-key mechanism with its
    query-key term (a RunConfig; t5 with query_key false has softmax_j(p) only)."""
    return run.attention in QUERY_KEY_MECHANISMS and run.query_key


def merge_configs(base: dict, override: dict) -> dict:
    """Snakemake's merge of config files: mappings key by key (recursively), anything else whole."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_configs(merged[key], value)
        else:
            merged[key] = value
    return merged


def analysis_settings(config: dict) -> dict[str, Any]:
    """ANALYSIS_DEFAULTS overridden by the workflow config's ``analysis`` mapping, key by key; a
    run filter given replaces the default whole, one changed shastry_sutherland field keeps the
    others' defaults."""
    settings = {**ANALYSIS_DEFAULTS, **(config.get("analysis") or {})}
    settings["shastry_sutherland"] = {**ANALYSIS_DEFAULTS["shastry_sutherland"],
                                      **settings["shastry_sutherland"]}
    return settings


def sampling_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The Sampling part of analysis_settings (the provenance records store it as `sampling`)."""
    return {key: settings[key] for key in SAMPLING_KEYS}


def output_path(results: str | Path, job: str, run_id: str) -> Path:
    """Where a job writes its file for a run: <results>/analysis/<job>/<run id><suffix>."""
    return Path(results) / "analysis" / job / f"{run_id}{OUTPUTS[job]}"


def provenance_path(path: str | Path) -> Path:
    """The record beside an analysis file: freeze_ablation/RUN.json -> RUN.provenance.json."""
    path = Path(path)
    return path.with_name(path.stem + ".provenance.json")


def write_input_dependence(summary: str | Path, out: str | Path, sampling: dict[str, Any]) -> None:
    """The input-dependence index at every snapshot of the run of `summary` -> CSV `out`."""
    from vitnqs import io, provenance
    from vitnqs.analysis import Sampling, input_dependence

    with provenance.recorded(provenance_path(out), run=str(summary), sampling=sampling):
        io.write_csv(out, input_dependence(Path(summary).parent, Sampling(**sampling)))


def write_freeze_ablation(summary: str | Path, out: str | Path, sampling: dict[str, Any],
                          n_samples_energy: int) -> None:
    """The run's energy with its attention frozen to the sample average, and without -> JSON."""
    from vitnqs import io, provenance
    from vitnqs.analysis import Sampling
    from vitnqs.frozen_attention import freeze_ablation
    from vitnqs.trained import load_run

    with provenance.recorded(provenance_path(out), run=str(summary), sampling=sampling,
                             n_samples_energy=n_samples_energy):
        state = load_run(Path(summary).parent)
        io.write_json(out, freeze_ablation(state, Sampling(**sampling), n_samples_energy))
