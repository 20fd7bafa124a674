"""Adapter: energy of one run with its attention frozen to the sample average -> .json."""
import sys
from pathlib import Path

from vitnqs import io, provenance
from vitnqs.analysis import Sampling
from vitnqs.frozen_attention import freeze_ablation
from vitnqs.trained import load_run

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
params = snakemake.params  # noqa: F821
with provenance.recorded(snakemake.output.provenance, run=snakemake.input.summary,  # noqa: F821
                         sampling=params.sampling, n_samples_energy=params.n_samples_energy):
    state = load_run(Path(snakemake.input.summary).parent)  # noqa: F821
    result = freeze_ablation(state, Sampling(**params.sampling), params.n_samples_energy)
    io.write_json(snakemake.output[0], result)  # noqa: F821
