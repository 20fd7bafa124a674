"""Adapter: attention maps of one run at initialization and after optimization -> .npz, on a
free GPU (the rule's gpu resource; the CPU without GPUs)."""
import sys
from pathlib import Path

from vitnqs.gpus import claim_gpus

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sampling = snakemake.params.sampling  # noqa: F821
with claim_gpus(int(snakemake.resources.gpu)):  # noqa: F821  (before JAX is imported)
    from vitnqs import io, provenance
    from vitnqs.analysis import Sampling, run_attention_maps

    with provenance.recorded(snakemake.output.provenance, run=snakemake.input.summary,  # noqa: F821
                             sampling=sampling):
        run_dir = Path(snakemake.input.summary).parent  # noqa: F821
        io.write_npz(snakemake.output[0], run_attention_maps(run_dir, Sampling(**sampling)))  # noqa: F821
