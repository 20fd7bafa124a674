"""Training segments: which device, commit and host trained which steps of a run.

A run trained across sessions (time limits, interruptions, a cluster's queue) may move between
machines and commits, while its summary's ``device`` and ``git_commit`` name only the process
that finished it. Each start or resume appends one row to ``RUN_DIR/segments.csv``; the summary
turns those rows and the history's per-step seconds into one record per segment: its steps, its
device, commit and host, and its median seconds per step.

Runs begun before this file existed get their rows from train.log's "starting/resuming steps"
lines once, at their next resume (``source`` "train.log"; the commit is empty where the log
line names none).
"""

from __future__ import annotations

import datetime
import platform
import re
from pathlib import Path

import numpy as np
import pandas as pd

from vitnqs import io

FILE = "segments.csv"
COLUMNS = ("first_step", "device", "git_commit", "host", "started_at", "source")

_LOG_START = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \S+: (?:starting|resuming) steps "
    r"(?P<first>\d+)\.\.\d+ of \d+, .*?, device (?P<device>.+?)"
    r"(?:, commit (?P<commit>\S+))?$"
)


def from_log(text: str) -> pd.DataFrame:
    """The segment rows that train.log's "starting/resuming steps" lines describe."""
    rows = [
        {"first_step": int(m["first"]), "device": m["device"], "git_commit": m["commit"] or "",
         "host": "", "started_at": m["time"], "source": "train.log"}
        for m in map(_LOG_START.match, text.splitlines()) if m
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def read(run_dir: Path | str) -> pd.DataFrame:
    """The run's segment rows in the order they started: segments.csv, else train.log's lines."""
    run_dir = Path(run_dir)
    if (run_dir / FILE).exists():
        rows = io.read_csv(run_dir / FILE, required=("first_step", "device", "source"))
        missing = [column for column in COLUMNS if column not in rows.columns]
        if missing:
            raise io.CorruptFileError(run_dir / FILE, f"missing column(s) {missing}")
        return rows[list(COLUMNS)].fillna({"git_commit": "", "host": "", "started_at": ""})
    if (run_dir / "train.log").exists():
        return from_log((run_dir / "train.log").read_text(errors="replace"))
    return pd.DataFrame(columns=list(COLUMNS))


def record_start(run_dir: Path | str, first_step: int, device: str, git_commit: str) -> None:
    """Append the segment that starts now at first_step (atomically rewrites segments.csv)."""
    row = {"first_step": int(first_step), "device": device, "git_commit": git_commit,
           "host": platform.node(), "source": "recorded",
           "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    rows = read(run_dir)
    io.write_csv(Path(run_dir) / FILE, pd.concat([rows, pd.DataFrame([row])], ignore_index=True)
                 [list(COLUMNS)])


def summarize(rows: pd.DataFrame, seconds: pd.Series, n_steps: int) -> list[dict]:
    """One record per segment whose steps the run kept, in step order.

    A segment ends where the next one starts: steps after its last checkpoint were lost and
    redone by the next. A segment that starts at or before an earlier one's first step (a run
    restarted from an earlier checkpoint) replaces it. ``seconds`` is the history's per-step
    wall time indexed by step; each segment's first step, which compiles, is left out of its
    median unless it is the only one.
    """
    kept: list[dict] = []
    for row in rows.to_dict("records"):
        kept = [k for k in kept if int(k["first_step"]) < int(row["first_step"])] + [row]
    records = []
    for row, following in zip(kept, kept[1:] + [None]):
        first = int(row["first_step"])
        end = n_steps if following is None else int(following["first_step"])
        if end <= first:
            continue
        timed = _timed_steps(seconds, first, end)
        records.append({
            "first_step": first, "last_step": end - 1, "n_steps": end - first,
            "device": row["device"], "git_commit": row["git_commit"], "host": row["host"],
            "started_at": row["started_at"], "source": row["source"],
            "seconds_per_step": float(np.median(timed)) if len(timed) else None,
        })
    return records


def _timed_steps(seconds: pd.Series, first: int, end: int) -> pd.Series:
    """The step times of steps first..end-1 but the first (it compiles), unless it is alone."""
    timed = seconds[(seconds.index > first) & (seconds.index < end)]
    return timed if len(timed) else seconds[(seconds.index >= first) & (seconds.index < end)]


def step_seconds_by_device(records: list[dict], seconds: pd.Series) -> dict[str, float]:
    """Median seconds per step on each device over its segments' steps (each segment's
    compiling step left out), most steps first, as in describe_devices."""
    timed: dict[str, list[pd.Series]] = {}
    for record in records:
        end = record["last_step"] + 1
        timed.setdefault(record["device"], []).append(
            _timed_steps(seconds, record["first_step"], end))
    steps = {device: sum(len(t) for t in parts) for device, parts in timed.items()}
    return {device: float(np.median(pd.concat(timed[device])))
            for device in sorted(timed, key=lambda d: -steps[d]) if steps[device]}


def describe_devices(records: list[dict]) -> str:
    """The device that trained the run, or the devices with their step counts, most steps
    first, e.g. 'NVIDIA H100 80GB HBM3 x2 (2768 steps); NVIDIA H100 80GB HBM3 x1 (2232 steps)'."""
    steps: dict[str, int] = {}
    for record in records:
        steps[record["device"]] = steps.get(record["device"], 0) + record["n_steps"]
    if len(steps) == 1:
        return next(iter(steps))
    return "; ".join(f"{device} ({n} steps)"
                     for device, n in sorted(steps.items(), key=lambda item: -item[1]))
