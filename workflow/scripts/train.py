"""Snakemake adapter: train one run on a free GPU (or the CPU) with vitnqs.train.run."""

import sys
from pathlib import Path

from vitnqs.gpus import claim_gpu

with claim_gpu():  # sets CUDA_VISIBLE_DEVICES before JAX is imported
    from vitnqs.train import TrainingStopped, run

    try:
        run(snakemake.params.config, Path(snakemake.output.summary).parent, quiet=True)
    except TrainingStopped as stop:  # SIGTERM (a cluster's time limit): the job fails, resumable
        sys.exit(f"vitnqs: training {stop}")
