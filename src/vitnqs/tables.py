"""Tables of finished runs: summaries in, DataFrames and Markdown / LaTeX text out.

``summary_frame`` turns the summary.json mappings of finished runs into one row per run; the
figure functions in ``vitnqs.plotting`` read the same frame. ``table_energies`` is Table 1 of
the paper with our numbers beside the paper's. Nothing here reads or writes files.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from vitnqs import io
from vitnqs.config import MECHANISMS
from vitnqs.failed import FailedRun
from vitnqs.paper import PAPER_TABLE1, PAPER_TABLE1_KEYS
from vitnqs.reference import reference_energy


RUN_COLUMNS = (
    "run_id", "protocol", "L", "J2", "n_layers", "attention", "d_model", "n_heads", "n_params",
    "n_steps", "n_samples", "energy_per_site", "energy_error", "reference_energy",
    "relative_error", "v_score", "seconds_per_step", "total_seconds", "device", "git_commit",
)
"""Columns of summary_frame, one row per finished run. v_score is N Var(H) / E^2 of the final
samples (Wu et al., Science 2024; the Heisenberg Hamiltonian is traceless, so its infinite-
temperature energy is 0): 0 for an eigenstate, an accuracy that needs no reference energy."""

OPTIONAL_COLUMNS = ("training_devices", "training_seconds_per_step")
"""Columns of summary_frame that older summaries lack (empty there)."""


FINITE_COLUMNS = ("energy_per_site", "energy_error")
"""Columns of summary_frame that must hold finite numbers (the others may be null)."""


def summary_frame(summaries: list[dict]) -> pd.DataFrame:
    """One row per run from its summary.json mapping; refuses other layouts, missing fields and
    non-finite energies with a ValueError that names the run. ``seed`` comes from the run's
    config (empty where a summary lacks it). The reference energy and relative error are those
    of vitnqs.reference now: a summary keeps the reference of the day it was written."""
    for summary in summaries:
        check_summary(summary)
    columns = [*RUN_COLUMNS, *OPTIONAL_COLUMNS]
    rows = []
    for s in summaries:
        reference = reference_energy(s["L"], s["J2"])
        value = float("nan") if reference is None else reference.value
        rows.append({**{c: s.get(c) for c in columns}, "seed": (s.get("config") or {}).get("seed"),
                     "reference_energy": value,
                     "relative_error": relative_error(s["energy_per_site"], value)})
    return sort_runs(pd.DataFrame(rows, columns=[*columns, "seed"]))


def check_summary(summary: dict) -> None:
    """Raise ValueError, naming the run, if a summary.json mapping cannot fill a table row."""
    run = summary.get("run_id")
    if summary.get("summary_version") != io.SUMMARY_VERSION:
        raise ValueError(
            f"run {run!r} has summary_version {summary.get('summary_version')!r}; these tables "
            f"read version {io.SUMMARY_VERSION} (results written by another version of vitnqs: "
            "retrain the run or check out the version that wrote it)"
        )
    missing = [column for column in RUN_COLUMNS if column not in summary]
    if missing:
        raise ValueError(
            f"run {run!r}: summary.json lacks the field(s) {missing} of summary_version "
            f"{io.SUMMARY_VERSION} (an incomplete or hand-edited file: retrain the run)"
        )
    for column in FINITE_COLUMNS:
        value = summary[column]
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(
                f"run {run!r}: summary.json has {column}={value!r}, not a finite number"
            )


def sort_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by L, J2, n_layers, then attention in the order t5, decoupled, factored, then
    (one network under several protocols) the shorter protocol first, then by seed."""
    order = frame["attention"].map({m: i for i, m in enumerate(MECHANISMS)})
    keys = [c for c in ("L", "J2", "n_layers") if c in frame.columns]
    cost = [c for c in ("n_steps", "n_samples", "seed") if c in frame.columns]
    return (frame.assign(_order=order).sort_values([*keys, "_order", *cost], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


def describe_protocols(runs: pd.DataFrame) -> str:
    """The protocols of these runs in words, e.g. 'protocol reduced (600 steps, M = 2048)'."""
    if runs.empty:
        return "no finished runs"
    labels = [
        f"{protocol} ({steps} steps, M = {samples})"
        for (protocol, steps, samples), _ in runs.groupby(["protocol", "n_steps", "n_samples"])
    ]
    return ("protocol " if len(labels) == 1 else "protocols ") + "; ".join(labels)


def format_with_error(value: float, error: float) -> str:
    """A value with its error in the last digit, e.g. (-0.5031823, 9.2e-6) -> '-0.503182(9)'."""
    if value is None or pd.isna(value):
        return ""
    if error is None or not error > 0:
        return f"{value:.6f}"
    digits = max(0, -math.floor(math.log10(error)))
    last = round(error * 10**digits)
    if last >= 10 and digits > 0:
        digits, last = digits - 1, round(error * 10 ** (digits - 1))
    return f"{value:.{digits}f}({last})"


def table_energies(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 1: per L and mechanism, our energy, accuracy and cost beside the paper's; a run
    beside the paper's row only where the system and the network are the paper's (another J2,
    depth or width has no paper value)."""
    # the keys in the paper table's types (J2 = 0 read as an integer must not become 0.5's type)
    keyed = runs.astype({key: PAPER_TABLE1[key].dtype for key in PAPER_TABLE1_KEYS})
    table = keyed.merge(PAPER_TABLE1, on=PAPER_TABLE1_KEYS, how="left")
    table = table.assign(
        energy=[format_with_error(v, e) for v, e in zip(table.energy_per_site, table.energy_error)],
        paper=[format_with_error(v, e) for v, e
               in zip(table.paper_energy, table.paper_energy_error)],
        total_hours=table.total_seconds / 3600.0,
        # the devices that trained it (with their steps where it moved between devices); older
        # summaries name only the device of the process that finished it
        device=table.training_devices.where(table.training_devices.fillna("") != "", table.device),
        step_seconds=[_step_seconds(median, by_device) for median, by_device
                      in zip(table.seconds_per_step, table.training_seconds_per_step)],
    )
    columns = [
        "L", "attention", "protocol", "seed", "J2", "n_layers", "energy", "energy_per_site",
        "energy_error", "reference_energy", "relative_error", "v_score", "n_params",
        "seconds_per_step", "total_hours", "device", "n_steps", "n_samples", "paper",
        "paper_energy", "paper_energy_error", "paper_n_params", "paper_hours", "run_id",
        "step_seconds",
    ]
    return sort_runs(table[columns])


def display_energies(table: pd.DataFrame) -> pd.DataFrame:
    """The columns of table_energies a reader compares, as text."""
    return pd.DataFrame({
        "L": table.L.astype(str),
        "J2": table.J2.map("{:g}".format),  # a group may hold other couplings or depths
        "n_l": table.n_layers.astype(str),
        "attention": table.attention,
        "protocol": table.protocol,
        "seed": table.seed.map(lambda x: "" if pd.isna(x) else str(int(x))),
        "E per site (ours)": table.energy,
        "E per site (paper)": table.paper.fillna(""),
        "rel. error": table.relative_error.map(format_scientific),
        "V-score": table.v_score.map(format_scientific),
        "parameters (ours)": table.n_params.map("{:,}".format),
        "parameters (paper)": table.paper_n_params.map(
            lambda x: "" if pd.isna(x) else f"{int(x):,}"
        ),
        "s/step": table.step_seconds,
        "time (ours, h)": table.total_hours.map("{:.3g}".format),
        "time (paper, A100, h)": table.paper_hours.map(lambda x: "" if pd.isna(x) else f"{x:g}"),
        "device": table.device,
        "steps": table.n_steps.astype(str),
        "M": table.n_samples.astype(str),
    })


def relative_error(energy, reference):
    """|(E0 - E) / E0| of an energy per site against the reference E0 (numbers or Series)."""
    return abs((reference - energy) / reference)


def describe_shift(config: dict) -> str:
    """SR's diagonal shift of a run config mapping: '0.001', or with a damped start
    '0.01 for 100 steps, then 0.001'."""
    initial = config.get("diag_shift_initial")
    if initial is None:
        return f"{config['diag_shift']:g}"
    return (f"{initial:g} for {config['diag_shift_initial_steps']} steps, "
            f"then {config['diag_shift']:g}")


def format_duration(seconds: float) -> str:
    """'4h28m' from an hour on, '3m52s' below."""
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def format_scientific(value) -> str:
    """'2.49e-03', or '' for a missing value."""
    return "" if pd.isna(value) else f"{value:.2e}"


def _step_seconds(median: float, by_device) -> str:
    """'1.62' or, for a run trained on several devices, one median per device in the order of
    the device column, e.g. '1.62; 1.05'."""
    if isinstance(by_device, dict) and len(by_device) > 1:
        return "; ".join(f"{seconds:.3g}" for seconds in by_device.values())
    return f"{median:.3g}"


def format_markdown(table: pd.DataFrame, title: str) -> str:
    """A Markdown table under a title line that names the protocols."""
    heading = f"**{title}** ({describe_protocols(table)})\n\n"
    if table.empty:
        return heading + "No finished runs yet.\n"
    # the cells as display_energies wrote them (7.80e-03, not re-read as the number 0.0078)
    return heading + display_energies(table).to_markdown(index=False, disable_numparse=True) + "\n"


def format_latex(table: pd.DataFrame, title: str) -> str:
    """A LaTeX tabular (booktabs) with a caption comment that names the protocols."""
    display = display_energies(table)
    lines = [
        f"% {title} ({describe_protocols(table)})",
        r"\begin{tabular}{" + "l" * len(display.columns) + "}",
        r"\toprule",
        " & ".join(_latex_escape(c) for c in display.columns) + r" \\",
        r"\midrule",
        *(" & ".join(_latex_escape(v) for v in row) + r" \\"
          for row in display.itertuples(index=False)),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    for char in ("&", "%", "_", "#", "$"):
        text = text.replace(char, "\\" + char)
    return text


RUN_KEYS = ("protocol", "L", "J2", "n_layers", "attention", "seed", "n_steps")
"""The RunConfig keys the status tables copy, which say what a run is and how long it trains."""

STATUS_COLUMNS = (
    "run_id", "groups", *RUN_KEYS, "steps_done", "status", "energy", "relative_error",
    "recent_energy", "seconds_per_step", "device", "remaining_hours",
)
"""Columns of table_run_status, one row per run of the workflow config."""

RECENT_STEPS = 10
"""Steps of a run in training whose mean energy run_status shows: is it still learning?"""


def recent_energy(energies) -> float:
    """The mean energy per site of a run's last RECENT_STEPS recorded steps (all, if fewer):
    where a run in training is now."""
    return float(pd.Series(energies).tail(RECENT_STEPS).mean())


def training_progress(history: pd.DataFrame, segments: pd.DataFrame | None) -> dict[str, Any]:
    """How far an unfinished run is, from its checkpointed history.csv and its segments.csv:
    steps recorded, the mean energy per site of its last RECENT_STEPS steps, the median seconds
    of its last 100 steps and the device that ran them."""
    return {
        "steps_done": len(history),
        "recent_energy": recent_energy(history["energy"]) if len(history) else None,
        "seconds_per_step": float(history["seconds"].tail(100).median()) if len(history) else None,
        "device": (str(segments["device"].iloc[-1])
                   if segments is not None and len(segments) else ""),
    }


def table_run_status(configs: dict[str, dict], groups: dict[str, list[str]],
                     summaries: dict[str, dict], progress: dict[str, dict]) -> pd.DataFrame:
    """Every run of the config and how far it is: 'finished' (a summary, with its energy),
    'training' (steps of a checkpointed history, fewer than the protocol's; with its recent
    energy, seconds per step, device and the hours left at that pace), 'final energy left'
    (every step of the protocol done, stopped before its final energy) or 'not started'.

    configs: run id -> its RunConfig mapping; groups: group -> run ids; summaries: run id ->
    summary.json mapping of the finished runs; progress: run id -> ``training_progress`` of the
    unfinished runs that have a history.
    """
    rows = []
    for run_id, config in configs.items():
        summary = summaries.get(run_id)
        pace = {} if summary else progress.get(run_id, {})
        done = config["n_steps"] if summary else pace.get("steps_done", 0)
        seconds = pace.get("seconds_per_step")
        rows.append({
            **{key: config[key] for key in RUN_KEYS},
            "run_id": run_id,
            "groups": ", ".join(name for name, ids in groups.items() if run_id in ids),
            "steps_done": done,
            "status": run_status(bool(summary), done, config["n_steps"]),
            "energy": format_with_error(summary["energy_per_site"], summary["energy_error"])
                      if summary else "",
            "relative_error": summary.get("relative_error") if summary else None,
            "recent_energy": pace.get("recent_energy"),
            "seconds_per_step": seconds,
            "device": pace.get("device", ""),
            "remaining_hours": (config["n_steps"] - done) * seconds / 3600 if seconds else None,
        })
    return sort_runs(pd.DataFrame(rows, columns=list(STATUS_COLUMNS)))


FAILED_COLUMNS = ("run_id", *RUN_KEYS, "steps_recorded", "outcome", "last_energy")
"""Columns of table_failed_runs, one row per run folder under results/failed/."""


def table_failed_runs(failed: dict[str, FailedRun]) -> pd.DataFrame:
    """The runs kept under results/failed/ (trained, then taken out of the config: diverged, or
    stopped by hand with a reason): how many steps their history holds, what ended them and
    their last energy per site.

    failed: run id -> its ``vitnqs.failed.FailedRun``.
    """
    rows = [{
        **{key: run.config[key] for key in RUN_KEYS},
        "run_id": run_id,
        "steps_recorded": len(run.history),
        "outcome": run.outcome,
        "last_energy": float(run.history["energy"].iloc[-1]) if len(run.history) else None,
    } for run_id, run in failed.items()]
    return sort_runs(pd.DataFrame(rows, columns=list(FAILED_COLUMNS)))


def format_failed_runs(table: pd.DataFrame) -> str:
    """Markdown section below the run-status table; empty when no run failed."""
    if not len(table):
        return ""
    shown = table.assign(
        steps_recorded=steps_of(table.steps_recorded, table.n_steps),
        last_energy=table.last_energy.map(lambda e: f"{e:.4g}"),
    ).drop(columns=["n_steps"]).rename(
        columns={"steps_recorded": "steps recorded", "last_energy": "last energy per site"})
    return (f"\n**Failed runs**: {len(table)}, taken out of the config and kept in `failed/` as "
            "evidence (config, history and log; the workflow config's comments name each retry)"
            "\n\n" + shown.astype(str).to_markdown(index=False, disable_numparse=True) + "\n")


FINISHED, FINAL_ENERGY_LEFT, TRAINING, NOT_STARTED = (
    "finished", "final energy left", "training", "not started")
"""The statuses of table_run_status: a summary; every step done and no summary yet (stopped
before its final energy); some steps done; none."""


def run_status(finished: bool, steps_done: int, n_steps: int) -> str:
    """FINISHED, FINAL_ENERGY_LEFT, TRAINING or NOT_STARTED (see table_run_status)."""
    if finished:
        return FINISHED
    if steps_done >= n_steps:
        return FINAL_ENERGY_LEFT
    return TRAINING if steps_done else NOT_STARTED


def steps_of(done: pd.Series, n_steps: pd.Series) -> list[str]:
    """'300 / 600' per run: steps done (or recorded) of the protocol's."""
    return [f"{d} / {n}" for d, n in zip(done, n_steps)]


def format_run_status(table: pd.DataFrame) -> str:
    """Markdown: a count of finished, training and not-started runs (and of those with only
    their final energy left, if any) above the table; a run in training says its pace and the
    time left at that pace, one with only its final energy left how to sample it."""
    counts = table["status"].value_counts()
    shown_statuses = [FINISHED, TRAINING, NOT_STARTED]
    if counts.get(FINAL_ENERGY_LEFT, 0):
        shown_statuses.insert(1, FINAL_ENERGY_LEFT)
    heading = (f"**Runs of the workflow config**: {len(table)} in all, "
               + ", ".join(f"{counts.get(s, 0)} {s}" for s in shown_statuses) + "\n\n")
    pace = ["run the same command to sample it" if status == FINAL_ENERGY_LEFT else
            f"{format_duration(hours * 3600)} left at {seconds:.3g} s/step ({device})"
            if pd.notna(hours) else ""
            for status, hours, seconds, device in zip(table.status, table.remaining_hours,
                                                        table.seconds_per_step, table.device)]
    shown = table.assign(
        steps_done=steps_of(table.steps_done, table.n_steps),
        relative_error=table.relative_error.map(format_scientific),
        recent_energy=table.recent_energy.map(lambda e: f"{e:.4f}" if pd.notna(e) else ""),
        remaining=pace,
    ).drop(columns=["n_steps", "seconds_per_step", "device", "remaining_hours"]).rename(
        columns={"steps_done": "steps", "recent_energy": f"energy, last {RECENT_STEPS} steps"})
    body = shown.astype(str).to_markdown(index=False, disable_numparse=True)
    return heading + (body if len(table) else "No runs configured.") + "\n"
