"""Snakemake adapter: every start with a history (runs of the grid, failed/, probes/starts/),
fast or slow -> results/tables/starts.{csv,md} and the per-mechanism counts starts_summary.csv."""

from vitnqs import io
from vitnqs.records import read_records_from_inputs
from vitnqs.starts import format_starts, summary_starts, table_starts

inputs, params = snakemake.input, snakemake.params  # noqa: F821
records = read_records_from_inputs(params.configs, inputs.summaries, inputs.checkpoints,
                                   inputs.failed, inputs.start_probes)
table = table_starts(records)
summary = summary_starts(table)
io.write_csv(snakemake.output.csv, table)  # noqa: F821
io.write_csv(snakemake.output.summary, summary)  # noqa: F821
io.write_atomic(snakemake.output.md, format_starts(table, summary).encode())  # noqa: F821
io.write_atomic(snakemake.log[0], f"table_starts: {len(table)} starts\n".encode())  # noqa: F821
