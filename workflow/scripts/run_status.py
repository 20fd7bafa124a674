"""Snakemake adapter: every configured run and how far it is ->
results/tables/run_status.{csv,md}."""

from pathlib import Path

from vitnqs import io
from vitnqs.failed import read_failed_run
from vitnqs.tables import (format_failed_runs, format_run_status, table_failed_runs,
                           table_run_status, training_progress)

inputs, params = snakemake.input, snakemake.params  # noqa: F821
summaries = {s["run_id"]: s for s in map(io.read_json, inputs.summaries)}
progress = {  # an unfinished run's history.csv is rewritten with every checkpoint
    run_dir.name: training_progress(
        io.read_csv(run_dir / "history.csv", required=("step", "seconds")),
        io.read_csv(run_dir / "segments.csv") if (run_dir / "segments.csv").exists() else None)
    for run_dir in (Path(path).parent.parent for path in inputs.checkpoints)
    if (run_dir / "history.csv").exists()
}
table = table_run_status(params.configs, params.groups, summaries, progress)
failed = table_failed_runs({Path(path).parent.name: read_failed_run(Path(path).parent)
                           for path in inputs.failed})
io.write_csv(snakemake.output.csv, table)  # noqa: F821
markdown = format_run_status(table) + format_failed_runs(failed)
io.write_atomic(snakemake.output.md, markdown.encode())  # noqa: F821
log_line = f"run_status: {len(table)} runs, {len(failed)} failed\n"
io.write_atomic(snakemake.log[0], log_line.encode())  # noqa: F821
