"""Snakemake adapter: train one run on free GPUs (the rule's gpu resource, one unless
`--set-resources train:gpu=N`; the CPU without GPUs) with vitnqs.train.run."""

import sys
from pathlib import Path

from vitnqs.gpus import claim_gpus

with claim_gpus(int(snakemake.resources.gpu)):  # sets CUDA_VISIBLE_DEVICES before JAX is imported
    from vitnqs.train import TrainingStopped, run

    try:
        run(snakemake.params.config, Path(snakemake.output.summary).parent, quiet=True)
    except TrainingStopped as stop:  # SIGTERM (a cluster's time limit): the job fails, resumable
        sys.exit(f"vitnqs: training {stop}")
