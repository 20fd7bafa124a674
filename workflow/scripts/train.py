"""Snakemake adapter: train one run on free GPUs (the rule's gpu resource, one unless
`--set-resources train:gpu=N`; the CPU without GPUs) with vitnqs.train.run."""

import sys
from pathlib import Path

from vitnqs.gpus import claim_gpus

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821  (this attempt's log)
with claim_gpus(int(snakemake.resources.gpu)):  # sets CUDA_VISIBLE_DEVICES before JAX is imported
    from vitnqs.train import TrainingStopped, run

    try:  # progress to the run's train.log (every attempt) and to this attempt's log
        run(snakemake.params.config, Path(snakemake.output.summary).parent)
    except TrainingStopped as stop:  # SIGTERM (a cluster's time limit): the job fails, resumable
        sys.exit(f"vitnqs: training {stop}")
