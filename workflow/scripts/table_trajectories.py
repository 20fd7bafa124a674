"""Snakemake adapter: every run with a history (runs of the grid, failed/), its relative error
over fixed windows of steps -> results/tables/trajectories.{csv,md}."""

from vitnqs import io
from vitnqs.records import read_records_from_inputs
from vitnqs.trajectories import format_trajectories, table_trajectories

inputs, params = snakemake.input, snakemake.params  # noqa: F821
records = read_records_from_inputs(params.configs, inputs.summaries, inputs.checkpoints,
                                   inputs.failed)
table = table_trajectories(records)
io.write_csv(snakemake.output.csv, table)  # noqa: F821
io.write_atomic(snakemake.output.md, format_trajectories(table).encode())  # noqa: F821
io.write_atomic(snakemake.log[0], f"table_trajectories: {len(table)} runs\n".encode())  # noqa: F821
