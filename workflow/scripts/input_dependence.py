"""Adapter: input-dependence index at every snapshot of one run -> .csv."""
import sys
from pathlib import Path

from vitnqs import io, provenance
from vitnqs.analysis import Sampling, input_dependence

sys.stdout = sys.stderr = open(snakemake.log[0], "w")  # noqa: F821
sampling = snakemake.params.sampling  # noqa: F821
with provenance.recorded(snakemake.output.provenance, run=snakemake.input.summary,  # noqa: F821
                         sampling=sampling):
    run_dir = Path(snakemake.input.summary).parent  # noqa: F821
    io.write_csv(snakemake.output[0], input_dependence(run_dir, Sampling(**sampling)))  # noqa: F821
