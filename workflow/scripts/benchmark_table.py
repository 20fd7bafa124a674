"""Snakemake adapter: one table of step times from the per-config benchmark files."""

import pandas as pd

from vitnqs import io

io.write_csv(snakemake.output[0], pd.concat([io.read_csv(p) for p in snakemake.input],
                                            ignore_index=True))
