"""Adapter: index at initialization and after optimization, per run and layer -> .csv."""
import sys

import pandas as pd

from vitnqs import io
from vitnqs.analysis_tables import index_summary

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
frames = [io.read_csv(path) for path in snakemake.input.frames]  # noqa: F821
io.write_csv(snakemake.output[0], index_summary(pd.concat(frames, ignore_index=True)))  # noqa: F821
