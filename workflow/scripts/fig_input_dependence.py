"""Adapter: input-dependence index vs optimization step -> figure."""
import sys

import pandas as pd

from vitnqs import io
from vitnqs.attention_plots import fig_input_dependence

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
frames = [io.read_csv(path) for path in snakemake.input.frames]  # noqa: F821
figure = fig_input_dependence(pd.concat(frames, ignore_index=True))
for path in snakemake.output:  # noqa: F821
    figure.savefig(path)
