"""Snakemake adapter: each probe run beside every run of its start (seed, system, mechanism),
configured or kept under failed/ -> results/tables/probes.{csv,md}."""

from pathlib import Path

from vitnqs import io
from vitnqs.probes import format_probes, table_probes
from vitnqs.records import read_records

inputs, params = snakemake.input, snakemake.params  # noqa: F821

# the folders of the runs with files: finished (a summary) or in training (a checkpoint)
run_dirs = {Path(path).parent for path in inputs.summaries} | {
    Path(path).parent.parent for path in inputs.checkpoints}
records = read_records(params.configs, run_dirs,
                       failed_dirs=[Path(path).parent for path in inputs.failed])
table = table_probes(params.probes, records)
io.write_csv(snakemake.output.csv, table)  # noqa: F821
io.write_atomic(snakemake.output.md, format_probes(table).encode())  # noqa: F821
io.write_atomic(snakemake.log[0], f"table_probes: {len(table)} runs\n".encode())  # noqa: F821
