"""Run records read from disk: what the tables of runs (probes, starts) take as input.

A run's files sit in one of three folders under results/ (``RunRecord.source``): ``runs/ID``
(a run of the config grid, finished or in training), ``failed/ID`` (taken out of the config:
diverged or stopped by hand, ``vitnqs.failed``) or ``probes/starts/ID`` (a start trained for its
first steps only, with ``vitnqs train --until-step``, to see how it begins: ``vitnqs.starts``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from vitnqs import io
from vitnqs.failed import failed_outcome, read_failed_run
from vitnqs.probes import RunRecord
from vitnqs.trained import read_run_config

START_PROBE_REASON = "start probe (vitnqs train --until-step)"
"""What a run under probes/starts/ was stopped for, as the tables show it."""


def read_history(run_dir: Path) -> pd.DataFrame | None:
    """history.csv of a run folder (step and energy required), or None if it has none."""
    path = run_dir / "history.csv"
    return io.read_csv(path, required=("step", "energy")) if path.exists() else None


def read_records(configs: dict[str, dict], run_dirs: Iterable[Path | str],
                 failed_dirs: Iterable[Path | str] = (),
                 start_dirs: Iterable[Path | str] = ()) -> dict[str, RunRecord]:
    """Run id -> RunRecord of every run of the grid (``configs``: run id -> config mapping;
    ``run_dirs``: the folders of those with files, named by run id), of every folder under
    failed/ and of every start probe. A grid run without a folder gets no history."""
    folders = {Path(run_dir).name: Path(run_dir) for run_dir in run_dirs}
    records = {}
    for run_id, config in configs.items():
        run_dir = folders.get(run_id)
        summary = run_dir / "summary.json" if run_dir else None
        records[run_id] = RunRecord(config, read_history(run_dir) if run_dir else None,
                                    io.read_json(summary) if summary and summary.exists() else None)
    for failed_dir in map(Path, failed_dirs):
        failed = read_failed_run(failed_dir)
        records[failed_dir.name] = RunRecord(failed.config, failed.history, failed=failed.outcome,
                                             source="failed")
    for start_dir in map(Path, start_dirs):
        history = read_history(start_dir)
        records[start_dir.name] = RunRecord(
            read_run_config(start_dir).to_dict(), history,
            failed=failed_outcome(len(history), START_PROBE_REASON), source="probes/starts")
    return records


def read_records_from_inputs(configs: dict[str, dict], summaries: Iterable[str],
                             checkpoints: Iterable[str], failed_histories: Iterable[str] = (),
                             start_histories: Iterable[str] = ()) -> dict[str, RunRecord]:
    """``read_records`` from the files a Snakemake rule takes as input: the summary.json of the
    finished runs, the checkpoint/state.msgpack of the runs in training, and the history.csv of
    the folders under failed/ and probes/starts/."""
    run_dirs = {Path(path).parent for path in summaries} | {
        Path(path).parent.parent for path in checkpoints}
    return read_records(configs, run_dirs,
                        failed_dirs=[Path(path).parent for path in failed_histories],
                        start_dirs=[Path(path).parent for path in start_histories])
