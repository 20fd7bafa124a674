"""Adapter: energy of one run with its attention frozen to the sample average -> .json
(vitnqs.analysis_jobs), on a free GPU (the rule's gpu resource; the CPU without GPUs)."""
import sys

from vitnqs.analysis_jobs import write_freeze_ablation
from vitnqs.gpus import claim_gpus

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
params = snakemake.params  # noqa: F821
with claim_gpus(int(snakemake.resources.gpu)):  # noqa: F821  (JAX is imported inside)
    write_freeze_ablation(snakemake.input.summary, snakemake.output[0],  # noqa: F821
                          params.sampling, params.n_samples_energy)
