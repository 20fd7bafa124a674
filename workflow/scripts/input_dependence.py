"""Adapter: input-dependence index at every snapshot of one run -> .csv (vitnqs.analysis_jobs)."""
import sys

from vitnqs.analysis_jobs import write_input_dependence

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
write_input_dependence(snakemake.input.summary, snakemake.output[0],  # noqa: F821
                       snakemake.params.sampling)  # noqa: F821
