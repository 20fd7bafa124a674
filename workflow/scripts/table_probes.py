"""Snakemake adapter: each probe run beside every run of its start (seed, system, mechanism),
configured or kept under failed/ -> results/tables/probes.{csv,md}."""

from vitnqs import io
from vitnqs.probes import format_probes, table_probes
from vitnqs.records import read_records_from_inputs

inputs, params = snakemake.input, snakemake.params  # noqa: F821
# the runs with files: finished (a summary) or in training (a checkpoint), and failed/
records = read_records_from_inputs(params.configs, inputs.summaries, inputs.checkpoints,
                                   inputs.failed)
table = table_probes(params.probes, records)
io.write_csv(snakemake.output.csv, table)  # noqa: F821
io.write_atomic(snakemake.output.md, format_probes(table).encode())  # noqa: F821
io.write_atomic(snakemake.log[0], f"table_probes: {len(table)} runs\n".encode())  # noqa: F821
