"""Snakemake adapter: train one run on a free GPU (or the CPU) with vitnqs.train.run."""

from pathlib import Path

from vitnqs.gpus import claim_gpu

with claim_gpu():  # sets CUDA_VISIBLE_DEVICES before JAX is imported
    from vitnqs.train import run

    run(snakemake.params.config, Path(snakemake.output.summary).parent, quiet=True)
