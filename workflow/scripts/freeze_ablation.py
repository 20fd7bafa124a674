"""Adapter: energy of one run with its attention frozen to the sample average -> .json."""
import sys
from pathlib import Path

from vitnqs import io
from vitnqs.analysis import Sampling
from vitnqs.frozen_attention import freeze_ablation
from vitnqs.trained import load_run

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
state = load_run(Path(snakemake.input.summary).parent)  # noqa: F821
sampling = Sampling(**snakemake.params.sampling)  # noqa: F821
result = freeze_ablation(state, sampling, snakemake.params.n_samples_energy)  # noqa: F821
io.write_json(snakemake.output[0], result)  # noqa: F821
