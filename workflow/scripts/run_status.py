"""Snakemake adapter: every configured run and how far it is -> results/tables/run_status.{csv,md}."""

from pathlib import Path

from vitnqs import io
from vitnqs.tables import format_run_status, table_run_status

params = snakemake.params  # noqa: F821
runs = Path(snakemake.output.csv).parent.parent / "runs"  # noqa: F821  (RESULTS/tables -> RESULTS/runs)
summaries, steps_done = {}, {}
for run_id in params.configs:
    run_dir = runs / run_id
    if (run_dir / "summary.json").exists():
        summaries[run_id] = io.read_json(run_dir / "summary.json")
    elif (run_dir / "history.csv").exists():  # written with every checkpoint
        steps_done[run_id] = len(io.read_csv(run_dir / "history.csv", required=("step",)))
table = table_run_status(params.configs, params.groups, summaries, steps_done)
io.write_csv(snakemake.output.csv, table)  # noqa: F821
io.write_atomic(snakemake.output.md, format_run_status(table).encode())  # noqa: F821
io.write_atomic(snakemake.log[0], f"run_status: {len(table)} runs\n".encode())  # noqa: F821
