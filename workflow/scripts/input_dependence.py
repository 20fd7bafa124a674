"""Adapter: input-dependence index at every snapshot of one run -> .csv (vitnqs.analysis_jobs),
on a free GPU (the rule's gpu resource; the CPU without GPUs)."""
import sys

from vitnqs.analysis_jobs import write_input_dependence
from vitnqs.gpus import claim_gpus

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
with claim_gpus(int(snakemake.resources.gpu)):  # noqa: F821  (JAX is imported inside)
    write_input_dependence(snakemake.input.summary, snakemake.output[0],  # noqa: F821
                           snakemake.params.sampling)  # noqa: F821
