"""Snakemake adapter: do the mechanisms agree? -> results/tables/mechanism_agreement.{csv,md}."""

from vitnqs import io
from vitnqs.agreement import format_agreement, of_the_three_mechanisms, table_agreement
from vitnqs.tables import summary_frame

summaries = [io.read_json(path) for path in snakemake.input.summaries]  # noqa: F821
table = table_agreement(summary_frame(of_the_three_mechanisms(summaries)))
io.write_csv(snakemake.output.csv, table)  # noqa: F821
io.write_atomic(snakemake.output.md, format_agreement(table).encode())  # noqa: F821
io.write_atomic(snakemake.log[0], f"mechanism_agreement: {len(table)} rows\n".encode())  # noqa: F821
