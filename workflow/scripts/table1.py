"""Snakemake adapter: Table 1 (csv, md, tex) from the summaries of finished runs."""

from vitnqs import io
from vitnqs.tables import format_latex, format_markdown, summary_frame, table_energies

TITLE = ("Table 1: energy per site, ours beside the paper's (which is at J2/J1 = 0.5, n_l = 4, "
         "d = 60, h = 10)")

table = table_energies(summary_frame([io.read_json(p) for p in snakemake.input.summaries]))
io.write_csv(snakemake.output.csv, table)
io.write_atomic(snakemake.output.md, format_markdown(table, TITLE).encode())
io.write_atomic(snakemake.output.tex, format_latex(table, TITLE).encode())
io.write_atomic(snakemake.log[0], f"table1: {len(table)} runs\n".encode())
