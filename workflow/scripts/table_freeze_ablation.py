"""Adapter: one row per run of the freeze ablation -> .csv."""
import sys

import pandas as pd

from vitnqs import io

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
rows = [io.read_json(path) for path in snakemake.input.ablations]  # noqa: F821
io.write_csv(snakemake.output[0], pd.DataFrame(rows))  # noqa: F821
