"""Snakemake adapter: one table of step times from the per-config benchmark files."""

import pandas as pd

from vitnqs import io

table = pd.concat([io.read_csv(p) for p in snakemake.input], ignore_index=True)
io.write_csv(snakemake.output[0], table)
io.write_atomic(snakemake.log[0], f"{len(table)} rows from {len(snakemake.input)} files\n".encode())
