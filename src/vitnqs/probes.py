"""One start of the ViT under several protocols: what a single changed setting did.

A probe run (a run of a config group in PROBE_GROUPS) repeats a run that failed, or one whose
gap to the other mechanisms is in question, with one setting changed. Its seed fixes the start:
the same seed gives the same parameters (t5 without its query-key term: the same parameters but
Q and K) and, with the same chains, the same samples at step 0, so from step 1 on only the
changed setting differs.
``table_probes`` shows each probe beside every run of the same system, mechanism and seed, in
the config or kept under results/failed/: how often its energy per site went above 0 (a
wave function worse than a random one, the mark of the failures), whether it stopped on a
non-finite energy, and where it ended. Nothing here reads files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vitnqs.config import RunConfig
from vitnqs.reference import energy_floor
from vitnqs.tables import (
    FINISHED,
    RECENT_STEPS,
    TRAINING,
    describe_shift,
    format_scientific,
    format_with_error,
    recent_energy,
    sort_runs,
    steps_of,
)

PROBE_GROUPS = ("positional_probe", "sr_probe", "query_key_probe")
"""The config groups whose runs are probes: of the 8x8 and 10x10 failures of decoupled and
factored (the init of p, the diagonal shift) and of t5's query-key term."""

START_KEYS = ("L", "J2", "n_layers", "attention", "seed")
"""The RunConfig keys that fix a run's start (its parameters at step 0)."""

SETTING_KEYS = ("protocol", "n_samples", "n_steps", "diag_shift", "positional_init", "query_key")
"""The RunConfig keys a probe may change, shown in the table (the shift with its damped start,
if any, as the column 'shift', ``describe_shift``)."""
SETTING_DEFAULTS = {field.name: field.default for field in dataclasses.fields(RunConfig)
                    if field.name in SETTING_KEYS}
"""What a config.yaml written before a setting existed means by leaving it out (RunConfig's
defaults; every setting has one)."""

PROBE_COLUMNS = (
    "run_id", *START_KEYS, *SETTING_KEYS, "shift", "steps_recorded", "outcome", "energy_step_0",
    "steps_above_zero", "last_step_above_zero", "lowest_mean_energy", "energy", "relative_error",
)
"""Columns of table_probes, one row per run sharing a probe's start."""

@dataclass(frozen=True)
class RunRecord:
    """What the files of one run say: its config.yaml mapping, its history.csv (None if it has
    none), its summary.json mapping (None unless finished), for a run that was taken out or
    stopped what ended it (``vitnqs.failed.FailedRun.outcome``; None for the others), and the
    folder under results/ its files sit in: 'runs', 'failed' or 'probes/starts'
    (``vitnqs.records``)."""

    config: dict
    history: pd.DataFrame | None
    summary: dict | None = None
    failed: str | None = None
    source: str = "runs"


def start_of(config: dict) -> tuple:
    """The START_KEYS values of a run config mapping."""
    return tuple(config[key] for key in START_KEYS)


def outcome_of(record: RunRecord) -> str:
    """'finished', what ended a run under failed/ ('diverged at step k', 'stopped after k
    steps: ...') or 'training'."""
    if record.summary is not None:
        return FINISHED
    return record.failed or TRAINING


def probe_row(run_id: str, record: RunRecord) -> dict:
    """One row of table_probes: the run's start and settings, what its history shows (steps above
    0, the lowest RECENT_STEPS-step running mean of the energy before the first estimate below
    energy_floor or not finite) and where it ended: the final energy if finished, the mean of its
    last RECENT_STEPS steps if training, nothing if failed."""
    config, history, summary = record.config, record.history, record.summary
    energy = np.asarray([] if history is None else history["energy"], dtype=float)
    above = np.flatnonzero(energy[1:] > 0) + 1  # step 0 is the random start, not a failure
    broken = np.flatnonzero(~(energy >= energy_floor(config["J2"])))  # NaN compares False
    sound = energy[: broken[0]] if len(broken) else energy
    window = min(RECENT_STEPS, len(sound))
    means = np.convolve(sound, np.full(window, 1 / window), mode="valid") if window else sound
    if summary is not None:
        ended = format_with_error(summary["energy_per_site"], summary["energy_error"])
    elif record.failed or not len(energy):
        ended = ""
    else:
        ended = (f"{recent_energy(energy):.4f} "
                 f"(last {min(RECENT_STEPS, len(energy))} steps)")
    return {
        "run_id": run_id,
        **{key: config[key] for key in START_KEYS},
        **{key: config.get(key, SETTING_DEFAULTS[key]) for key in SETTING_KEYS},
        "shift": describe_shift({**SETTING_DEFAULTS, **config}),
        "steps_recorded": len(energy),
        "outcome": outcome_of(record),
        "energy_step_0": float(energy[0]) if len(energy) else None,
        "steps_above_zero": len(above),
        "last_step_above_zero": int(above[-1]) if len(above) else None,
        "lowest_mean_energy": float(means.min()) if window else None,
        "energy": ended,
        "relative_error": summary.get("relative_error") if summary is not None else None,
    }


def probe_starts(probe_ids: list[str], records: dict[str, RunRecord]) -> set[tuple]:
    """The starts the probe table shows: each configured probe's with files, and each of a run
    under failed/ with a configured probe's protocol, system and mechanism (a probe start that
    reached NaN and was taken out of the config: its seed's other runs say what it probed)."""
    def kind_of(config: dict) -> tuple:  # protocol, system and mechanism: a start but its seed
        return tuple(config[key] for key in ("protocol", *START_KEYS) if key != "seed")

    probes = [records[run_id].config for run_id in probe_ids if run_id in records]
    kinds = {kind_of(config) for config in probes}
    taken_out = [record.config for record in records.values()
                 if record.source == "failed" and kind_of(record.config) in kinds]
    return {start_of(config) for config in probes + taken_out}


def table_probes(probe_ids: list[str], records: dict[str, RunRecord]) -> pd.DataFrame:
    """Each probe and every run that shares its start (records: run id -> RunRecord of every
    run with files, configured or under failed/; probe_starts), ordered by system, then by cost
    of protocol. Within a start and a cost, protocols in alphabetical order (`reduced` before
    `reduced-damped`). A run without a history (not started) is left out, a probe's included:
    its start's other runs are still shown."""
    starts = probe_starts(probe_ids, records)
    rows = [probe_row(run_id, record) for run_id, record in records.items()
            if start_of(record.config) in starts and record.history is not None]
    table = pd.DataFrame(rows, columns=list(PROBE_COLUMNS)).sort_values("protocol", kind="stable")
    return sort_runs(table)


def format_probes(table: pd.DataFrame) -> str:
    """Markdown: one section per start (system, mechanism, seed), a row per protocol."""
    if not len(table):
        return "No probe runs with a history yet.\n"
    sections = []
    for start, runs in table.groupby(list(START_KEYS), sort=False):
        L, J2, n_layers, attention, seed = start
        shown = pd.DataFrame({
            "protocol": runs.protocol,
            "M": runs.n_samples.astype(str),
            "diag. shift": runs["shift"],
            "init of p": runs.positional_init,
            "Q, K": runs.query_key.map({True: "yes", False: "no"}),
            "steps": steps_of(runs.steps_recorded, runs.n_steps),
            "outcome": runs.outcome,
            "E at step 0": runs.energy_step_0.map(lambda e: f"{e:.10f}" if pd.notna(e) else ""),
            "steps above 0": runs.steps_above_zero.astype(str),
            "last above 0": runs.last_step_above_zero.map(
                lambda s: "" if pd.isna(s) else str(int(s))),
            f"lowest {RECENT_STEPS}-step mean": runs.lowest_mean_energy.map(
                lambda e: f"{e:.4f}" if pd.notna(e) else ""),
            "energy per site": runs.energy,
            "rel. error": runs.relative_error.map(format_scientific),
        })
        sections.append(
            f"**{L}x{L}, J2 = {J2}, n_l = {n_layers}, {attention}, seed {seed}**\n\n"
            + shown.to_markdown(index=False, disable_numparse=True) + "\n")
    return ("Probes: one start (same seed: same parameters and, with the same "
            "chains, the same samples at step 0) under several protocols. 'Steps above 0' counts "
            "steps after step 0 with an energy per site above 0; the lowest "
            f"{RECENT_STEPS}-step mean stops before the first estimate below "
            "-3/2 (1 + |J2|), the least energy per site any state has (a diverging run's "
            "estimator, not its state); 'energy per site' is the final "
            f"energy, or the mean of the last {RECENT_STEPS} recorded steps of a run in "
            "training.\n\n"
            + "\n".join(sections))
