"""Snakemake adapter: each probe run beside every run of its start (seed, system, mechanism),
configured or kept under failed/ -> results/tables/probes.{csv,md}."""

from pathlib import Path

from vitnqs import io
from vitnqs.failed import read_failed_run
from vitnqs.probes import RunRecord, format_probes, table_probes

inputs, params = snakemake.input, snakemake.params  # noqa: F821


def history_of(run_dir: Path):
    path = run_dir / "history.csv"
    return io.read_csv(path, required=("step", "energy")) if path.exists() else None


# the folders of the runs with files: finished (a summary) or in training (a checkpoint)
run_dirs = {Path(path).parent for path in inputs.summaries} | {
    Path(path).parent.parent for path in inputs.checkpoints}
folders = {run_dir.name: run_dir for run_dir in run_dirs}
records = {}
for run_id, config in params.configs.items():
    run_dir = folders.get(run_id)
    summary = run_dir / "summary.json" if run_dir else None
    records[run_id] = RunRecord(config, history_of(run_dir) if run_dir else None,
                                io.read_json(summary) if summary and summary.exists() else None)
for path in inputs.failed:
    failed = read_failed_run(Path(path).parent)
    records[Path(path).parent.name] = RunRecord(failed.config, failed.history,
                                                failed=failed.outcome)

table = table_probes(params.probes, records)
io.write_csv(snakemake.output.csv, table)  # noqa: F821
io.write_atomic(snakemake.output.md, format_probes(table).encode())  # noqa: F821
io.write_atomic(snakemake.log[0], f"table_probes: {len(table)} runs\n".encode())  # noqa: F821
