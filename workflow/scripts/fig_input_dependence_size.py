"""Adapter: input-dependence index after optimization vs L -> figure."""
import sys

from vitnqs import io
from vitnqs.attention_plots import fig_input_dependence_size

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
table = io.read_csv(snakemake.input.table)  # noqa: F821
figure = fig_input_dependence_size(table, **snakemake.params.runs)  # noqa: F821
for path in snakemake.output:  # noqa: F821
    figure.savefig(path)
